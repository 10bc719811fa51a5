"""Purchasing as its tests need it: the purchase orders, alerts and stock of the database, and sales that push
items under their reorder points (the SMTP server their e-mails reach is the ``smtp`` fixture)."""

from __future__ import annotations

from typing import List, Tuple

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.payments import place
from tests.helpers.stock import set_on_hand


def purchase_orders(store: str = "centro") -> List[m.PurchaseOrder]:
    with new_session() as session:
        rows = session.execute(
            select(m.PurchaseOrder).where(m.PurchaseOrder.store_id == store).order_by(m.PurchaseOrder.id)
        ).scalars()
        found = list(rows)
        for po in found:
            for line in po.lines:
                _ = line.stock_item.code
        return found


def alerts(store: str = "centro") -> List[Tuple[str, str, object]]:
    """(item code, status, purchase order id) of every alert of a store, oldest first."""
    with new_session() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(m.StockItem.code, m.LowStockAlert.status, m.LowStockAlert.purchase_order_id)
                .join(m.StockItem, m.StockItem.id == m.LowStockAlert.stock_item_id)
                .where(m.LowStockAlert.store_id == store)
                .order_by(m.LowStockAlert.id)
            )
        ]


def on_hand(code: str, store: str = "centro"):
    with new_session() as session:
        return session.execute(
            select(m.StockLevel.on_hand)
            .join(m.StockItem, m.StockItem.id == m.StockLevel.stock_item_id)
            .where(m.StockLevel.store_id == store, m.StockItem.code == code)
        ).scalar_one()


def sell_coffee_down_to_the_reorder_points() -> None:
    set_on_hand("coffee_beans", "1520")  # reorder point 1500: two americanos (18 g each) cross it
    place("centro:whatsapp:+525500000001", method="cash", sku="CAFE-AMER", quantity=2)
    place("centro:whatsapp:+525500000002", method="cash", sku="CAFE-GRANO-250", quantity=7)  # 12 → 5, point 5
