"""A read-only copy of what customers can order, for readers that must not query per message.

The NLU reads every message against the catalog (names, synonyms, modifiers, variants). It takes a
snapshot once, keeps it in memory, and asks ``catalog_version`` — a few small queries — whether the
catalog changed since; a product added in the back office is understood without retraining.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Dict, List

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from comanda import models as m


@dataclass
class ModifierOptionSnapshot:
    code: str
    name_es: str
    name_en: str
    synonyms: List[str]
    is_default: bool


@dataclass
class ModifierGroupSnapshot:
    id: str
    options: List[ModifierOptionSnapshot]
    max_choices: int = 1  # more than one: a line may take several of its options ("sin cebolla y con piña")


@dataclass
class VariantOptionSnapshot:
    """One value of a variant axis ("M", "negro") with the words customers use for it."""

    id: str
    es: str
    en: str
    synonyms: List[str]


@dataclass
class VariantSnapshot:
    sku: str
    attributes: Dict[str, str]  # {"size": "M", "color": "negro"}


@dataclass
class ProductSnapshot:
    business_id: str
    sku: str
    name_es: str
    name_en: str
    category: str
    synonyms: List[str] = field(default_factory=list)
    modifier_groups: List[ModifierGroupSnapshot] = field(default_factory=list)
    variant_axes: Dict[str, List[VariantOptionSnapshot]] = field(default_factory=dict)
    variants: List[VariantSnapshot] = field(default_factory=list)


@dataclass
class CategorySnapshot:
    id: str
    name_es: str
    name_en: str


@dataclass
class CatalogSnapshot:
    """Every active product of every business (SKUs are unique per business).

    ``shop_names`` (businesses and stores: "Café Esquina Roma") let readers tell the shop's own name
    from a product in it ("hola café esquina" orders no café). ``categories`` let them read "una de
    cada sabor de agua" or "uno de cada taco".
    """

    products: List[ProductSnapshot]
    shop_names: List[str]
    categories: List[CategorySnapshot] = field(default_factory=list)


def catalog_snapshot(session: Session) -> CatalogSnapshot:
    products = (
        session.execute(
            select(m.Product)
            .where(m.Product.active.is_(True))
            .order_by(m.Product.business_id, m.Product.id)
            .options(
                selectinload(m.Product.synonyms),
                selectinload(m.Product.variants),
                selectinload(m.Product.modifier_groups)
                .selectinload(m.ProductModifierGroup.group)
                .selectinload(m.ModifierGroup.options),
            )
        )
        .scalars()
        .all()
    )
    groups: Dict[str, ModifierGroupSnapshot] = {}
    categories = [
        CategorySnapshot(c.id, c.name_es, c.name_en)
        for c in session.execute(select(m.Category).order_by(m.Category.position, m.Category.id)).scalars()
    ]
    return CatalogSnapshot([_product(p, groups) for p in products], _shop_names(session), categories)


def _shop_names(session: Session) -> List[str]:
    return list(session.execute(select(m.Business.name).union_all(select(m.Store.name))).scalars())


def _product(product: m.Product, groups: Dict[str, ModifierGroupSnapshot]) -> ProductSnapshot:
    return ProductSnapshot(
        business_id=product.business_id,
        sku=product.sku,
        name_es=product.name_es,
        name_en=product.name_en,
        category=product.category_id,
        synonyms=[s.text for s in product.synonyms],
        modifier_groups=[_group(link.group, groups) for link in product.modifier_groups],
        variant_axes={
            axis: [
                VariantOptionSnapshot(
                    str(o["id"]), str(o.get("es", o["id"])), str(o.get("en", o["id"])), list(o.get("synonyms", []))
                )
                for o in options
            ]
            for axis, options in (product.variant_axes or {}).items()
        },
        variants=[VariantSnapshot(v.sku, dict(v.attributes)) for v in product.variants if v.active],
    )


def _group(group: m.ModifierGroup, groups: Dict[str, ModifierGroupSnapshot]) -> ModifierGroupSnapshot:
    """Groups are shared by many products: one snapshot object each."""
    if group.id not in groups:
        groups[group.id] = ModifierGroupSnapshot(
            group.id,
            [
                ModifierOptionSnapshot(o.code, o.name_es, o.name_en, list(o.synonyms or []), bool(o.is_default))
                for o in group.options
            ],
            group.max_choices or 1,
        )
    return groups[group.id]


def catalog_version(session: Session) -> str:
    """A token that changes whenever anything ``catalog_snapshot`` reads changes.

    Products carry ``updated_at``, so count, highest id and newest update tell every insert, edit and
    deletion. Synonym rows are only inserted or deleted (their text is part of their unique key):
    count and highest id. Modifier groups and options, product-modifier links, variants, categories
    and shop names are edited in place and have no ``updated_at``; they are small, so their content
    goes in itself.
    """
    queries = [
        select(func.count(m.Product.id), func.max(m.Product.id), func.max(m.Product.updated_at)),
        select(func.count(m.ProductSynonym.id), func.max(m.ProductSynonym.id)),
        select(
            m.ModifierOption.id,
            m.ModifierOption.group_id,
            m.ModifierOption.code,
            m.ModifierOption.name_es,
            m.ModifierOption.name_en,
            m.ModifierOption.synonyms,
            m.ModifierOption.is_default,
        ).order_by(m.ModifierOption.id),
        select(
            m.ProductModifierGroup.product_id, m.ProductModifierGroup.group_id, m.ProductModifierGroup.position
        ).order_by(m.ProductModifierGroup.product_id, m.ProductModifierGroup.group_id),
        select(
            m.ProductVariant.id,
            m.ProductVariant.product_id,
            m.ProductVariant.sku,
            m.ProductVariant.attributes,
            m.ProductVariant.active,
        ).order_by(m.ProductVariant.id),
        select(m.ModifierGroup.id, m.ModifierGroup.max_choices).order_by(m.ModifierGroup.id),
        select(m.Category.id, m.Category.name_es, m.Category.name_en, m.Category.position).order_by(m.Category.id),
        select(m.Business.id, m.Business.name).order_by(m.Business.id),
        select(m.Store.id, m.Store.name).order_by(m.Store.id),
    ]
    rows = [session.execute(query).all() for query in queries]
    return hashlib.sha1(repr(rows).encode()).hexdigest()
