"""What the catalog says about a product to a customer: its name with the options chosen, its price,
how many a store can sell, what to offer instead, and which products a misspelt name may mean."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from comanda import models as m
from comanda.i18n import t
from comanda.money import money
from comanda.services.stock import available_by_item, sellable_units

SUGGESTION_CUTOFF = 75  # rapidfuzz ratio of two words: below this a word is no longer a plausible misspelling
# Words of an order that name no product, whatever they resemble.
GENERIC_WORDS = frozenset(
    {
        "quiero",
        "quisiera",
        "dame",
        "damelo",
        "mandame",
        "manda",
        "ponme",
        "agrega",
        "agregame",
        "tienen",
        "tienes",
        "venden",
        "porfa",
        "favor",
        "gracias",
        "hola",
        "buenas",
        "please",
        "want",
        "would",
        "like",
        "have",
        "give",
        "some",
        "could",
        "with",
        "para",
        "llevar",
        "also",
        "tambien",
    }
)
MAX_ALTERNATIVES = 3


def fold(text: str) -> str:
    """Lower case without accents, for comparing what customers type with catalog names."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def find_sku(session: Session, business_id: str, sku: str) -> Tuple[Optional[m.Product], Optional[m.ProductVariant]]:
    """The active product, or the product and variant, that a SKU names in a business."""
    product = session.execute(
        select(m.Product).where(m.Product.business_id == business_id, m.Product.sku == sku, m.Product.active.is_(True))
    ).scalar_one_or_none()
    if product is not None:
        return product, None
    variant = session.execute(select(m.ProductVariant).where(m.ProductVariant.sku == sku)).scalar_one_or_none()
    if variant is not None and variant.active and variant.product.active and variant.product.business_id == business_id:
        return variant.product, variant
    return None, None


ModifierChoice = Union[str, Sequence[str]]  # one option code, or several for a group that takes several


def modifier_options(product: m.Product) -> Dict[str, Dict[str, m.ModifierOption]]:
    """The product's modifier groups and their options: {group: {code: option}}."""
    return {link.group_id: {o.code: o for o in link.group.options} for link in product.modifier_groups}


def chosen_codes(choice: Any) -> List[str]:
    """The option codes of one group's choice, whether stored as a code or a list of codes."""
    if choice is None:
        return []
    return [str(code) for code in choice] if isinstance(choice, (list, tuple)) else [str(choice)]


def complete_modifiers(product: m.Product, chosen: Mapping[str, Any]) -> Dict[str, ModifierChoice]:
    """The options the customer chose that the product takes, plus each group's default for the rest,
    so a line's price and its label never leave a choice implicit ("mediano" costs more than "chico").

    A group that takes one option keeps a code; a group that takes several (taco extras) keeps a list
    of codes in the catalog's order, at most its ``max_choices``, and no default when none is chosen."""
    complete: Dict[str, ModifierChoice] = {}
    for link in product.modifier_groups:
        group = link.group
        options = {o.code: o for o in group.options}
        codes = [code for code in dict.fromkeys(chosen_codes(chosen.get(group.id))) if code in options]
        if (group.max_choices or 1) > 1:
            if codes:
                position = {o.code: i for i, o in enumerate(group.options)}
                complete[group.id] = sorted(codes, key=position.__getitem__)[: group.max_choices]
            continue
        default = next((o.code for o in group.options if o.is_default), None)
        code = codes[0] if codes else default
        if code is not None:
            complete[group.id] = code
    return complete


def chosen_options(product: m.Product, modifiers: Mapping[str, Any]) -> List[m.ModifierOption]:
    """The options a line's modifiers name, in the product's group order and each group's option order."""
    groups = modifier_options(product)
    chosen: List[m.ModifierOption] = []
    for link in product.modifier_groups:
        codes = set(chosen_codes(modifiers.get(link.group_id)))
        chosen.extend(option for code, option in groups[link.group_id].items() if code in codes)
    return chosen


def unit_price(product: m.Product, modifiers: Mapping[str, Any]) -> Decimal:
    """The product's price plus its chosen options' price deltas (IVA included, like every price)."""
    price = product.price
    for option in chosen_options(product, modifiers):
        price += option.price_delta
    return money(price)


def variant_label(product: m.Product, variant: m.ProductVariant, language: str) -> str:
    """ "G / negro" in Spanish, "L / black" in English, from the product's variant labels."""
    axes = product.variant_axes or {}
    labels = []
    for axis, code in variant.attributes.items():
        option = next((o for o in axes.get(axis, []) if o["id"] == code), None)
        labels.append(option[language] if option else str(code))
    return " / ".join(labels)


def line_label(
    product: m.Product,
    variant: Optional[m.ProductVariant],
    modifiers: Mapping[str, Any],
    language: str,
    note: Optional[str] = None,
) -> str:
    """ "Té de taro con leche (grande, sin azúcar)": the name with the options that set it apart, and
    the customer's note for the kitchen: "Agua de horchata (500 ml) — nota: bien fría".

    Options are named unless they are the free default ("leche entera" goes without saying)."""
    details = [variant_label(product, variant, language)] if variant is not None else []
    for option in chosen_options(product, modifiers):
        if not option.is_default or option.price_delta:
            details.append(option.name_en if language == "en" else option.name_es)
    name = product.name(language)
    label = f"{name} ({', '.join(details)})" if details else name
    return f"{label} — {t('line.note', language, note=note)}" if note else label


def business_products(session: Session, business_id: str) -> List[m.Product]:
    return (
        session.execute(
            select(m.Product)
            .where(m.Product.business_id == business_id, m.Product.active.is_(True))
            .order_by(m.Product.id)
            .options(selectinload(m.Product.recipe), selectinload(m.Product.variants), selectinload(m.Product.synonyms))
        )
        .scalars()
        .all()
    )


def alternatives(session: Session, store_id: str, product: m.Product, language: str) -> List[Tuple[str, str]]:
    """(SKU, name) of up to three products of the same category the store can sell now, to offer instead."""
    available = available_by_item(session, store_id)
    return [
        (p.sku, p.name(language))
        for p in business_products(session, product.business_id)
        if p.category_id == product.category_id and p.id != product.id and sellable_units(p, available) > 0
    ][:MAX_ALTERNATIVES]


def stores_selling(session: Session, store_id: str, product: m.Product) -> List[str]:
    """Names of the business's other stores that can sell the product now ("en Centro sí hay")."""
    others = (
        session.execute(
            select(m.Store)
            .where(m.Store.business_id == product.business_id, m.Store.id != store_id, m.Store.active.is_(True))
            .order_by(m.Store.id)
        )
        .scalars()
        .all()
    )
    return [s.name for s in others if sellable_units(product, available_by_item(session, s.id)) > 0]


def suggestions(session: Session, business_id: str, text: str, limit: int = 3) -> List[m.Product]:
    """Products a name the order reader did not recognise may mean: any word of the text close to a
    word of a product's names or synonyms ("capuchinno" → latte, "horchatta" → horchata)."""
    wanted = [w for w in _words(text) if w not in GENERIC_WORDS]
    scores: Dict[int, Tuple[float, m.Product]] = {}
    for product in business_products(session, business_id):
        names = {product.name_es, product.name_en, *(s.text for s in product.synonyms)}
        name_words = {w for name in names for w in _words(name)}
        best = max((fuzz.ratio(w, n) for w in wanted for n in name_words), default=0.0)
        if best >= SUGGESTION_CUTOFF:
            scores[product.id] = (best, product)
    ranked = sorted(scores.values(), key=lambda pair: (-pair[0], pair[1].id))
    return [product for _, product in ranked[:limit]]


def _words(text: str) -> List[str]:
    return [w for w in re.findall(r"[^\W\d_]+", fold(text)) if len(w) >= 4]
