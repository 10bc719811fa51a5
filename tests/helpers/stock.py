"""Stock in tests: a level as it is, and a count as staff set it, with the adjustment movement that explains it."""

from __future__ import annotations

from decimal import Decimal
from typing import Tuple

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session, transaction


def item_id(session, code: str) -> int:
    return session.execute(select(m.StockItem.id).where(m.StockItem.code == code)).scalar_one()


def set_on_hand(code: str, quantity: str, store: str = "centro") -> None:
    """A staff count: the level and the adjustment movement that explains it."""
    with transaction() as session:
        row = session.get(m.StockLevel, (store, item_id(session, code)))
        delta = Decimal(quantity) - row.on_hand
        row.on_hand = Decimal(quantity)
        session.add(
            m.StockMovement(
                store_id=store,
                stock_item_id=row.stock_item_id,
                reason="adjustment",
                on_hand_delta=delta,
                reference_type="staff",
                reference_id="test",
            )
        )


def level(code: str, store: str = "centro") -> Tuple[Decimal, Decimal]:
    """(on hand, reserved), read in a fresh session."""
    with new_session() as session:
        row = session.get(m.StockLevel, (store, item_id(session, code)))
        return row.on_hand, row.reserved
