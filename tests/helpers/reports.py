"""The reports' scripted dataset: a few days at both demo stores, made through the real services at fixed
times (comanda.clock), with golden figures the tests check by hand-worked arithmetic.

Mexico City is UTC−6. The report day is Friday 2026-11-20 (local):

- Ana (centro): bought on the 10th (CONCHA, 18.00); on the 20th at 09:15 (2 CONCHA + CAFE-AMER = 76.00, card,
  ready 12 min later, 18.00 refunded at 18:00) and at 23:30 local, which is the 21st in UTC (CHURROS 45.00).
- Beto (centro): 12:00 a cash CONCHA he cancelled before it was made (not a sale); 13:40 a delivery
  (CAFE-GRANO-250 + 2 COCA-600 = 240.00 + 35.00 fee = 275.00, card, ready 20 min later); a handoff
  ("requested") at 12:10, still open.
- Carla (centro): bought at 23:50 local on the 19th, the 20th in UTC (COCA-600, 30.00): the previous day.
- Dani (roma): 10:05 cash, 3 CONCHA = 54.00.
- Eva (centro): wrote on the 20th, never bought; a "complaint" handoff 11:00–11:30.
- Stock at centro on the 20th: 7 CAFE-GRANO-250 written off as "waste" (it falls to 4, under its reorder
  point of 5, with an open alert), 2 COCA-600 as "breakage", 3 CONCHA counted up; three purchase orders due
  that day: Chiapas delivered on the day (on time), La Perla the next day (late), La Perla never.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Dict, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select

from comanda import clock
from comanda import models as m
from comanda.db import transaction
from comanda.enums import (
    HandoffReason,
    HandoffStatus,
    MovementReason,
    OrderPaymentStatus,
    OrderStatus,
    PurchaseOrderStatus,
    RefundStatus,
)
from comanda.services import orders
from comanda.services.customers import conversation_for
from tests.helpers.console import queued_order
from tests.helpers.stock import item_id

DAY = date(2026, 11, 20)
ANA = "centro:whatsapp:+525511110001"
BETO = "centro:whatsapp:+525511110002"
CARLA = "centro:whatsapp:+525511110003"
DANI = "roma:whatsapp:+525511110004"
EVA = "centro:whatsapp:+525511110005"
LATER = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # "now" while the reports are read


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A Mexico City local time (UTC−6) as aware UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo("America/Mexico_City")).astimezone(timezone.utc)


def _at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


def _ready(order_id: int, moment: datetime) -> None:
    _at(moment)
    with transaction() as session:
        orders.set_status(session, session.get(m.Order, order_id), OrderStatus.READY.value, "test")


def _move(
    store: str,
    code: str,
    delta: str,
    reason: str,
    moment: datetime,
    note: Optional[str] = None,
    reference: Optional[int] = None,
) -> None:
    """A ledger movement with its level, as the stock services keep them together."""
    _at(moment)
    with transaction() as session:
        item = item_id(session, code)
        level = session.get(m.StockLevel, (store, item))
        level.on_hand += Decimal(delta)
        session.add(
            m.StockMovement(
                store_id=store,
                stock_item_id=item,
                reason=reason,
                on_hand_delta=Decimal(delta),
                reference_type="purchase_order" if reference else "staff",
                reference_id=str(reference) if reference else "test",
                note=note,
                created_at=moment,
            )
        )


def _message(conversation: str, store: str, moment: datetime, n: int) -> None:
    with transaction() as session:
        session.add(
            m.InboundMessage(
                channel="whatsapp",
                external_id=f"wamid.report{n}",
                store_id=store,
                conversation_id=conversation,
                sender=conversation.split(":")[-1],
                message_type="text",
                payload={"text": {"body": "hola"}},
                status="processed",
                received_at=moment,
            )
        )


def _handoff(
    conversation: str, reason: str, opened: datetime, closed: Optional[datetime], answered: Optional[datetime] = None
) -> None:
    _at(opened)
    with transaction() as session:
        talk = conversation_for(session, conversation)
        session.add(
            m.HandoffTicket(
                store_id=talk.store_id,
                customer_id=talk.customer_id,
                conversation_id=talk.id,
                reason=reason,
                status=HandoffStatus.RESOLVED.value if closed else HandoffStatus.WAITING.value,
                created_at=opened,
                first_response_at=answered,
                resolved_at=closed,
            )
        )


def _purchase_order(supplier: str, expected: date, sent: datetime) -> int:
    with transaction() as session:
        po = m.PurchaseOrder(
            store_id="centro",
            supplier_id=supplier,
            status=PurchaseOrderStatus.SENT.value,
            expected_on=expected,
            created_by="test",
            created_at=sent,
            sent_at=sent,
        )
        session.add(po)
        session.flush()
        return po.id


def scripted_dataset() -> Dict[str, int]:
    """Write the dataset into the test's database (the demo business); the ids of its orders."""
    ids: Dict[str, int] = {}
    try:
        _at(at(10, 12))
        ids["ana_first"] = queued_order(ANA, (("CONCHA", 1),), name="Ana")
        _at(at(19, 23, 50))
        ids["carla"] = queued_order(CARLA, (("COCA-600", 1),), name="Carla")
        _message(ANA, "centro", at(20, 9, 10), 1)
        _at(at(20, 9, 15))
        ids["ana"] = queued_order(ANA, (("CONCHA", 2), ("CAFE-AMER", 1)), name="Ana")
        _ready(ids["ana"], at(20, 9, 27))
        _at(at(20, 10, 5))
        ids["dani"] = queued_order(DANI, (("CONCHA", 3),), method="cash", name="Dani")
        _message(EVA, "centro", at(20, 10, 50), 2)
        _handoff(EVA, HandoffReason.COMPLAINT.value, at(20, 11), at(20, 11, 30), answered=at(20, 11, 4))
        _at(at(20, 12))
        ids["beto_cancelled"] = queued_order(BETO, (("CONCHA", 1),), method="cash", name="Beto")
        _at(at(20, 12, 5))
        with transaction() as session:
            orders.cancel_order(session, session.get(m.Order, ids["beto_cancelled"]), "test")
        _handoff(BETO, HandoffReason.REQUESTED.value, at(20, 12, 10), None)
        _at(at(20, 13, 40))
        ids["beto"] = queued_order(
            BETO,
            (("CAFE-GRANO-250", 1), ("COCA-600", 2)),
            name="Beto",
            fulfilment="delivery",
            address="Madero 1",
            postal_code="06000",
        )
        _ready(ids["beto"], at(20, 14))
        _at(at(20, 18))
        with transaction() as session:
            payment = session.execute(select(m.Payment).where(m.Payment.order_id == ids["ana"])).scalar_one()
            session.add(
                m.Refund(
                    payment_id=payment.id,
                    amount=Decimal("18.00"),
                    status=RefundStatus.SUCCEEDED.value,
                    idempotency_key="report-refund-1",
                    reason="concha aplastada",
                    actor="test",
                    created_at=at(20, 17, 55),
                    completed_at=at(20, 18),
                )
            )
            session.get(m.Order, ids["ana"]).payment_status = OrderPaymentStatus.PARTIALLY_REFUNDED.value
        _at(at(20, 23, 30))
        ids["ana_late"] = queued_order(ANA, (("CHURROS", 1),), name="Ana")
        _stock_day()
    finally:
        clock.set_clock(None)
    return ids


def _stock_day() -> None:
    _move("centro", "CAFE-GRANO-250", "-7", MovementReason.ADJUSTMENT.value, at(20, 19), note="waste")
    _move("centro", "COCA-600", "-2", MovementReason.ADJUSTMENT.value, at(20, 19, 5), note="breakage")
    _move("centro", "CONCHA", "3", MovementReason.ADJUSTMENT.value, at(20, 19, 10), note="count_correction")
    _move("roma", "CONCHA", "-1", MovementReason.ADJUSTMENT.value, at(21, 8), note="waste")  # the next day
    with transaction() as session:
        session.add(
            m.LowStockAlert(
                store_id="centro",
                stock_item_id=item_id(session, "CAFE-GRANO-250"),
                on_hand=Decimal("4"),
                status="open",
                created_at=at(20, 19),
            )
        )
    on_time = _purchase_order("chiapas", DAY, at(15, 10))
    late = _purchase_order("perla", DAY, at(18, 10))
    _purchase_order("perla", DAY, at(18, 10, 5))  # never delivered
    _move("centro", "coffee_beans", "5000", MovementReason.PURCHASE_RECEIPT.value, at(20, 10), reference=on_time)
    _move("centro", "milk", "24000", MovementReason.PURCHASE_RECEIPT.value, at(21, 9), reference=late)
