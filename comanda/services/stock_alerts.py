"""Low-stock alerts: a sale that leaves a stock item at or below its reorder point opens an alert for
purchasing, one open alert per store and item (a unique index over the open ones says so: an alert
that is ordered or resolved makes room for the next by its status alone). New alerts go straight onto
their supplier's draft purchase order (comanda.services.purchasing)."""

from __future__ import annotations

from typing import Iterable, List

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.db import insert_unless_duplicate
from comanda.enums import LowStockAlertStatus
from comanda.services import purchasing


def check_after_sale(session: Session, store_id: str, stock_item_ids: Iterable[int]) -> List[int]:
    """Open an alert for every sold item now at or below its reorder point; the ids of new alerts."""
    low = session.execute(
        select(m.StockLevel.stock_item_id, m.StockLevel.on_hand)
        .join(m.StockItem)
        .where(
            m.StockLevel.store_id == store_id,
            m.StockLevel.stock_item_id.in_(list(stock_item_ids)),
            m.StockItem.reorder_point.is_not(None),
            m.StockLevel.on_hand <= m.StockItem.reorder_point,
        )
        .order_by(m.StockLevel.stock_item_id)
    ).all()
    opened = [
        insert_unless_duplicate(
            session,
            m.LowStockAlert(
                store_id=store_id, stock_item_id=item_id, on_hand=on_hand, status=LowStockAlertStatus.OPEN.value
            ),
        )
        for item_id, on_hand in low
    ]
    new = [alert_id for alert_id in opened if alert_id is not None]
    if new:
        purchasing.draft_for_alerts(session, store_id)
    return new
