""" "Lo de siempre" / "the usual": the customer's last order at this store, put in the cart again as the store can
sell it now. Each line goes through the cart like a typed order (stock checked now, shortages offered), and
what changed since is reported: lines whose price moved, products no longer sold."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.enums import OrderStatus, values_in
from comanda.services import carts
from comanda.services.carts import AddResult, Wanted
from comanda.services.customers import conversation_for
from comanda.services.products import complete_modifiers, find_sku, line_label, unit_price

# An order the customer actually got (or is getting): not one left unpaid, expired or cancelled.
REPEATABLE = values_in(
    (OrderStatus.RECEIVED, OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.DELIVERED, OrderStatus.PICKED_UP)
)


@dataclass(frozen=True)
class PriceChange:
    name: str
    before: Decimal
    now: Decimal


@dataclass
class Usual:
    order: Optional[m.Order] = None  # None: no earlier order at this store
    result: AddResult = field(default_factory=AddResult)
    price_changes: List[PriceChange] = field(default_factory=list)
    gone: List[str] = field(default_factory=list)  # descriptions of lines no longer sold as they were


def last_order(session: Session, customer_id: int, store_id: str) -> Optional[m.Order]:
    return session.execute(
        select(m.Order)
        .where(m.Order.customer_id == customer_id, m.Order.store_id == store_id, m.Order.status.in_(REPEATABLE))
        .order_by(m.Order.created_at.desc(), m.Order.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def repeat_last_order(session: Session, conversation_id: str, language: str) -> Usual:
    """Add the last order's lines to the conversation's cart (created when needed)."""
    conversation = conversation_for(session, conversation_id)
    order = last_order(session, conversation.customer_id, conversation.store_id)
    usual = Usual(order=order)
    if order is None:
        return usual
    business_id = session.get(m.Store, conversation.store_id).business_id
    cart = carts.open_cart(session, conversation_id)
    for line in order.lines:
        product, variant = find_sku(session, business_id, line.sku)
        if product is None:  # no longer sold (an option the catalog dropped falls back to its default)
            usual.gone.append(line.description)
            continue
        modifiers = complete_modifiers(product, line.modifiers or {})
        now = unit_price(product, modifiers)
        if now != line.unit_price:
            usual.price_changes.append(
                PriceChange(line_label(product, variant, modifiers, language), line.unit_price, now)
            )
        added = carts.add_items(
            session, cart, [Wanted(line.sku, line.quantity, modifiers=modifiers, note=line.note)], language
        )
        usual.result.added += added.added
        usual.result.short += added.short
        usual.result.unknown += added.unknown
        usual.result.ask_variant += added.ask_variant
    return usual
