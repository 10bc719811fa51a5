"""Stock counts: staff count some shelves and the books follow. Each difference is an ``adjustment`` movement
(reference: the count; note: the reason, which the reports group waste by); an item counted at or under its
reorder point opens its alert and joins its supplier's draft, as a sale would."""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, Mapping, Optional

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.enums import MovementReason, StockAdjustmentReason
from comanda.errors import InvalidInput
from comanda.services import audit, stock_alerts
from comanda.services.audit import Actor
from comanda.services.stores import get_store

ATTEMPTS = 5  # a sale between reading a level and writing the count: read again


def parse_reason(value: Optional[str]) -> StockAdjustmentReason:
    reason = StockAdjustmentReason.parse(value or StockAdjustmentReason.COUNT_CORRECTION.value)
    if reason is None:
        raise InvalidInput(
            f"unknown reason {value!r}: one of {', '.join(StockAdjustmentReason.values())}", reason=value
        )
    return reason


def count_stock(
    session: Session,
    store_id: str,
    counted: Mapping[str, Decimal],
    actor: Actor,
    reason: StockAdjustmentReason = StockAdjustmentReason.COUNT_CORRECTION,
    reasons: Optional[Mapping[str, StockAdjustmentReason]] = None,
    note: Optional[str] = None,
) -> m.StockCount:
    """Record counted quantities ``{stock item code: quantity}`` at a store; each line's reason is ``reasons``'
    for its code, else ``reason``. The level is set to the count with a guarded UPDATE (on hand as read), so a
    sale in between is never lost: the level is read again and the difference computed anew."""
    store = get_store(session, store_id)
    if not counted:
        raise InvalidInput("nothing counted: give at least one item and its quantity")
    items: Dict[str, m.StockItem] = {
        item.code: item
        for item in session.execute(
            select(m.StockItem).where(m.StockItem.business_id == store.business_id, m.StockItem.code.in_(list(counted)))
        ).scalars()
    }
    unknown = sorted(set(counted) - set(items))
    if unknown:
        raise InvalidInput(f"no stock item {', '.join(unknown)} at {store.business_id}", sku=unknown[0])
    for code, quantity in counted.items():
        if quantity < 0:
            raise InvalidInput(f"{code}: a counted quantity cannot be negative", sku=code)
    count = m.StockCount(store_id=store_id, actor=actor.name, note=note or None)
    session.add(count)
    session.flush()
    changed = {}
    for code in sorted(counted, key=lambda c: items[c].id):  # the ledger's lock order
        item, quantity = items[code], counted[code]
        line_reason = (reasons or {}).get(code, reason)
        expected = _set_level(session, store_id, item.id, quantity)
        count.lines.append(
            m.StockCountLine(stock_item_id=item.id, expected=expected, counted=quantity, reason=line_reason.value)
        )
        delta = quantity - expected
        if delta:
            changed[code] = str(delta)
            session.add(
                m.StockMovement(
                    store_id=store_id,
                    stock_item_id=item.id,
                    reason=MovementReason.ADJUSTMENT.value,
                    on_hand_delta=delta,
                    reserved_delta=Decimal(0),
                    reference_type="stock_count",
                    reference_id=str(count.id),
                    actor=actor.name,
                    note=line_reason.value,
                )
            )
    session.flush()
    audit.record(session, actor, "stock.counted", "stock_count", count.id, store=store_id, differences=changed or None)
    stock_alerts.check_after_sale(session, store_id, [items[code].id for code in counted])
    return count


def _set_level(session: Session, store_id: str, item_id: int, quantity: Decimal) -> Decimal:
    """Set on hand to ``quantity``; what it was. A level never stocked here is created at the count."""
    table = m.StockLevel.__table__
    for _ in range(ATTEMPTS):
        level = session.execute(
            select(table.c.on_hand).where(table.c.store_id == store_id, table.c.stock_item_id == item_id)
        ).scalar_one_or_none()
        if level is None:
            session.add(m.StockLevel(store_id=store_id, stock_item_id=item_id, on_hand=quantity, reserved=Decimal(0)))
            session.flush()
            return Decimal(0)
        done = session.execute(
            update(table)
            .where(
                table.c.store_id == store_id, table.c.stock_item_id == item_id, func.round(table.c.on_hand, 3) == level
            )
            .values(on_hand=quantity, updated_at=clock.now())
        )
        if done.rowcount == 1:
            return level
    raise InvalidInput("the stock kept changing while it was counted: count again")
