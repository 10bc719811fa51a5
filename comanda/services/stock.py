"""What a store can sell right now, from its stock levels (on hand minus reserved)."""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m


def available_by_item(session: Session, store_id: str) -> Dict[int, Decimal]:
    """Available quantity (on hand − reserved) of every stock item at a store."""
    rows = session.execute(
        select(m.StockLevel.stock_item_id, m.StockLevel.on_hand, m.StockLevel.reserved).where(
            m.StockLevel.store_id == store_id
        )
    )
    return {item_id: on_hand - reserved for item_id, on_hand, reserved in rows}


def sellable_units(product: m.Product, available: Dict[int, Decimal]) -> int:
    """Whole units of a product a store can sell: its own stock, its variants' or its recipe's."""
    if product.recipe:
        return min(int(available.get(line.stock_item_id, 0) // line.quantity) for line in product.recipe)
    if product.variants:
        return sum(max(int(available.get(v.stock_item_id, 0)), 0) for v in product.variants if v.active)
    if product.stock_item_id is not None:
        return max(int(available.get(product.stock_item_id, 0)), 0)
    return 0


def sellable_by_product(session: Session, store_id: str, products: Iterable[m.Product]) -> Dict[int, int]:
    available = available_by_item(session, store_id)
    return {p.id: sellable_units(p, available) for p in products}
