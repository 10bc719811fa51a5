"""Carts: one open cart per conversation, kept in the database so it survives sessions and restarts.

A cart holds lines (product or variant, quantity, options). Adding checks what the store can sell
now against what the cart already needs, so "solo quedan 3" is said when the customer asks, not at
checkout; the stock itself is only held when the order is placed (comanda.services.reservations).
A cart untouched for ``CART_IDLE_HOURS`` is left behind: the customer's next message starts anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.enums import CartStatus
from comanda.money import money
from comanda.services.customers import conversation_for
from comanda.services.products import (
    ModifierChoice,
    alternatives,
    chosen_codes,
    complete_modifiers,
    find_sku,
    line_label,
    stores_selling,
    unit_price,
    variant_label,
)
from comanda.services.reservations import needs_for, needs_for_cart
from comanda.services.stock import available_by_item

CART_IDLE_HOURS = 24


MAX_NOTE_LENGTH = 200  # cart_lines.note / order_lines.note


@dataclass(frozen=True)
class Wanted:
    """One order line as the customer put it: a product or variant SKU, how many, which options, and
    a note for the kitchen that no option says ("bien fría")."""

    sku: str
    quantity: int = 1
    modifiers: Mapping[str, ModifierChoice] = field(default_factory=dict)  # a code, or codes (taco extras)
    variant: Mapping[str, str] = field(default_factory=dict)
    quantity_stated: bool = True
    note: Optional[str] = None

    @classmethod
    def from_entity(cls, value: Mapping[str, Any]) -> Wanted:
        """From an ``order_line`` entity value (nlu_components.order_lines) or a button payload."""
        modifiers: Dict[str, ModifierChoice] = {}
        for group, choice in (value.get("modifiers") or {}).items():
            codes = chosen_codes(choice)
            modifiers[str(group)] = codes if isinstance(choice, (list, tuple)) else codes[0]
        return cls(
            sku=str(value.get("variant_sku") or value["sku"]),
            quantity=int(value.get("quantity") or 1),
            modifiers=modifiers,
            variant={str(k): str(v) for k, v in (value.get("variant") or {}).items()},
            quantity_stated=bool(value.get("quantity_stated", True)),
            note=clean_note(value.get("note")),
        )


def clean_note(note: Any) -> Optional[str]:
    """A line note as stored: one line of text, at most MAX_NOTE_LENGTH characters, or None."""
    text = " ".join(str(note or "").split())
    return text[:MAX_NOTE_LENGTH] or None


@dataclass(frozen=True)
class CartLineView:
    id: int
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class Shortage:
    """A line the store cannot fill: how many are left (0: none), where else it is, what else to take."""

    sku: str
    name: str
    wanted: Wanted
    left: int
    elsewhere: List[str]  # names of the business's stores that have it
    alternatives: List[Tuple[str, str]]  # (SKU, name) in the same category, in stock here
    carried: bool = True  # False: this store never sells it (Roma has no kitchen), as opposed to sold out


@dataclass(frozen=True)
class VariantQuestion:
    """A product sold by variant (size × colour) named without every axis: the customer must pick one."""

    sku: str
    name: str
    quantity: int
    options: List[Tuple[str, str]]  # (variant SKU, label) of the variants in stock that match what was said


@dataclass
class AddResult:
    added: List[str] = field(default_factory=list)  # labels of the lines added
    unknown: List[str] = field(default_factory=list)  # SKUs this business does not sell
    short: List[Shortage] = field(default_factory=list)
    ask_variant: List[VariantQuestion] = field(default_factory=list)


def find_open_cart(session: Session, conversation_id: str) -> Optional[m.Cart]:
    """The conversation's open cart, read only: None when it has none or the last one sat idle too long
    (open_cart leaves that one behind)."""
    cart = _latest_open(session, conversation_id)
    return None if cart is None or _idle(cart) else cart


def open_cart(session: Session, conversation_id: str) -> m.Cart:
    """The conversation's open cart, created when it has none or when the last one sat idle too long
    (that one is left behind as ``abandoned``). It writes: call it in a transaction that commits."""
    cart = _latest_open(session, conversation_id)
    if cart is not None and _idle(cart):
        cart.status = CartStatus.ABANDONED
        cart = None
    if cart is None:
        conversation = conversation_for(session, conversation_id)
        cart = m.Cart(
            store_id=conversation.store_id,
            customer_id=conversation.customer_id,
            conversation_id=conversation_id,
            status=CartStatus.OPEN,
        )
        session.add(cart)
    session.flush()
    return cart


def _latest_open(session: Session, conversation_id: str) -> Optional[m.Cart]:
    return session.execute(
        select(m.Cart)
        .where(m.Cart.conversation_id == conversation_id, m.Cart.status == CartStatus.OPEN)
        .order_by(m.Cart.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _idle(cart: m.Cart) -> bool:
    return cart.updated_at < clock.now() - timedelta(hours=CART_IDLE_HOURS)


def _touch(session: Session, cart: m.Cart) -> None:
    cart.updated_at = clock.now()
    session.flush()


def add_items(session: Session, cart: m.Cart, items: Iterable[Wanted], language: str) -> AddResult:
    """Add what the customer asked for, as far as the store can sell it now.

    A line the store cannot fill is not added: it comes back as a Shortage (units left, other
    stores, alternatives) for the bot to offer. A variant product without every axis comes back as a
    VariantQuestion. Lines with the same product, variant and options add up.
    """
    business_id = session.get(m.Store, cart.store_id).business_id
    result = AddResult()
    for wanted in items:
        product, variant = find_sku(session, business_id, wanted.sku)
        if product is None or wanted.quantity <= 0:
            result.unknown.append(wanted.sku)
            continue
        if variant is None and product.variants:
            question = _variant_question(session, cart.store_id, product, wanted, language)
            if question.options:
                result.ask_variant.append(question)
            else:
                result.short.append(_shortage(session, cart, product, None, wanted, language))
            continue
        modifiers = complete_modifiers(product, wanted.modifiers)
        note = clean_note(wanted.note)
        left = _units_left(session, cart, product, variant, modifiers)
        if left < wanted.quantity:
            result.short.append(_shortage(session, cart, product, variant, wanted, language, left))
            continue
        line = next(
            (
                cl
                for cl in cart.lines
                if cl.product_id == product.id
                and cl.variant_id == (variant.id if variant else None)
                and (cl.modifiers or {}) == modifiers
                and cl.note == note
            ),
            None,
        )
        if line is None:
            cart.lines.append(
                m.CartLine(
                    product_id=product.id,
                    variant_id=variant.id if variant else None,
                    quantity=wanted.quantity,
                    modifiers=modifiers,
                    note=note,
                )
            )
        else:
            line.quantity += wanted.quantity
        result.added.append(f"{wanted.quantity} × {line_label(product, variant, modifiers, language, note)}")
    _touch(session, cart)
    return result


def add_skus(session: Session, cart: m.Cart, items: Iterable[Tuple[str, int]], language: str = "es") -> AddResult:
    """(SKU, quantity) pairs, e.g. from a WhatsApp catalog order."""
    return add_items(session, cart, [Wanted(str(sku), int(quantity)) for sku, quantity in items], language)


def remove_items(session: Session, cart: m.Cart, items: Iterable[Wanted]) -> Tuple[List[str], List[str]]:
    """Take lines out: "quita una coca" takes one, "quita la coca" all of them.

    A SKU matches its lines whatever their options; a product SKU also matches its variants' lines.
    Returns (SKUs removed, SKUs that were not in the cart).
    """
    removed, missing = [], []
    for wanted in items:
        lines = [cl for cl in cart.lines if _line_matches(cl, wanted.sku)]
        if not lines:
            missing.append(wanted.sku)
            continue
        to_remove = wanted.quantity if wanted.quantity_stated else sum(cl.quantity for cl in lines)
        for line in reversed(lines):  # the latest line goes first
            take = min(line.quantity, to_remove)
            line.quantity -= take
            to_remove -= take
            if line.quantity == 0:
                cart.lines.remove(line)
            if to_remove == 0:
                break
        removed.append(wanted.sku)
    _touch(session, cart)
    return removed, missing


def set_quantity(session: Session, cart: m.Cart, wanted: Wanted, language: str) -> AddResult:
    """ "Mejor que sean 3": the cart holds exactly ``wanted.quantity`` of that product from now on.

    The product's lines become one (the first, with its options); a product not in the cart is added."""
    lines = [cl for cl in cart.lines if _line_matches(cl, wanted.sku)]
    if not lines:
        return add_items(session, cart, [wanted], language)
    keep = lines[0]
    label = line_label(keep.product, keep.variant, keep.modifiers or {}, language, keep.note)
    held = sum(cl.quantity for cl in lines)
    if wanted.quantity > held:
        left = _units_left(session, cart, keep.product, keep.variant, keep.modifiers or {})
        if left < wanted.quantity - held:
            return AddResult(
                short=[_shortage(session, cart, keep.product, keep.variant, wanted, language, left + held)]
            )
    for line in lines[1:]:
        cart.lines.remove(line)
    keep.quantity = wanted.quantity
    _touch(session, cart)
    return AddResult(added=[f"{wanted.quantity} × {label}"])


def clear_cart(session: Session, cart: m.Cart) -> int:
    """Empty the cart; returns how many lines it had."""
    count = len(cart.lines)
    cart.lines.clear()
    _touch(session, cart)
    return count


def fit_to_stock(session: Session, cart: m.Cart, left: Mapping[str, int], language: str) -> List[str]:
    """Cut the cart down to what is left ({SKU: units}, from OutOfStock): the SKU's lines keep at most
    that many units, oldest lines first. Returns the labels of the lines that changed."""
    changed = []
    for sku, units in left.items():
        for line in [cl for cl in cart.lines if _line_matches(cl, sku)]:
            keep = min(line.quantity, units)
            units -= keep
            if keep < line.quantity:
                changed.append(line_label(line.product, line.variant, line.modifiers or {}, language, line.note))
                line.quantity = keep
            if line.quantity == 0:
                cart.lines.remove(line)
    _touch(session, cart)
    return changed


def set_delivery_location(session: Session, cart: m.Cart, latitude: float, longitude: float) -> None:
    """A location shared in the chat becomes where the order is delivered."""
    cart.delivery_latitude = Decimal(str(round(latitude, 6)))
    cart.delivery_longitude = Decimal(str(round(longitude, 6)))
    _touch(session, cart)


def forget_delivery_location(session: Session, cart: m.Cart) -> None:
    """A shared location the store does not deliver to is not where the order goes."""
    cart.delivery_latitude = cart.delivery_longitude = None
    _touch(session, cart)


def cart_view(session: Session, cart: m.Cart, language: str) -> Tuple[List[CartLineView], Decimal]:
    """The cart's lines with their prices, and the subtotal."""
    lines = []
    for line in cart.lines:
        price = unit_price(line.product, line.modifiers or {})
        sku = line.variant.sku if line.variant else line.product.sku
        lines.append(
            CartLineView(
                line.id,
                sku,
                line_label(line.product, line.variant, line.modifiers or {}, language, line.note),
                line.quantity,
                price,
                money(price * line.quantity),
            )
        )
    return lines, money(sum((cl.line_total for cl in lines), Decimal(0)))


def _line_matches(line: m.CartLine, sku: str) -> bool:
    return line.product.sku == sku or (line.variant is not None and line.variant.sku == sku)


def _units_left(
    session: Session,
    cart: m.Cart,
    product: m.Product,
    variant: Optional[m.ProductVariant],
    modifiers: Mapping[str, ModifierChoice],
) -> int:
    """Whole units of this product, made with these options ("sin perlas" needs no tapioca), the store
    can still sell on top of what the cart already holds."""
    available = available_by_item(session, cart.store_id)
    held = needs_for_cart(session, cart)
    per_unit = needs_for(product, variant, 1, modifiers)
    return max(
        min(
            int((available.get(item, Decimal(0)) - held.get(item, Decimal(0))) // quantity)
            for item, quantity in per_unit.items()
        ),
        0,
    )


def _shortage(
    session: Session,
    cart: m.Cart,
    product: m.Product,
    variant: Optional[m.ProductVariant],
    wanted: Wanted,
    language: str,
    left: int = 0,
) -> Shortage:
    name = line_label(product, variant, {}, language)
    others = [] if left else stores_selling(session, cart.store_id, product)
    return Shortage(
        variant.sku if variant else product.sku,
        name,
        wanted,
        left,
        others,
        [] if left else alternatives(session, cart.store_id, product, language),
        carried=_carried(session, cart.store_id, product, variant),
    )


def _carried(session: Session, store_id: str, product: m.Product, variant: Optional[m.ProductVariant]) -> bool:
    """Whether the store sells this at all: it has had every stock item the product needs (sold out now,
    maybe), unlike a branch that never stocks them (Roma has no kitchen: no tortillas ever came in)."""
    if variant is None and product.variants:
        items = {v.stock_item_id for v in product.variants}
        return bool(_ever_stocked(session, store_id, items))
    items = set(needs_for(product, variant, 1))
    return _ever_stocked(session, store_id, items) == items


def _ever_stocked(session: Session, store_id: str, items: Set[int]) -> Set[int]:
    rows = session.execute(
        select(m.StockMovement.stock_item_id)
        .where(
            m.StockMovement.store_id == store_id,
            m.StockMovement.stock_item_id.in_(items),
            m.StockMovement.on_hand_delta > 0,
        )
        .distinct()
    )
    return set(rows.scalars())


def _variant_question(
    session: Session, store_id: str, product: m.Product, wanted: Wanted, language: str
) -> VariantQuestion:
    available: Dict[int, Decimal] = available_by_item(session, store_id)
    options = [
        (v.sku, variant_label(product, v, language))
        for v in product.variants
        if v.active
        and all(v.attributes.get(axis) == value for axis, value in wanted.variant.items())
        and available.get(v.stock_item_id, Decimal(0)) >= wanted.quantity
    ]
    return VariantQuestion(product.sku, product.name(language), wanted.quantity, options)
