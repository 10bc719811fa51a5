"""Staff moves in the order queue on real SQL (SQLite and PostgreSQL): bump through the stages with the
customer told and an audit event with who and from where, a second tap refused, another store's order
not found, recall of the last move (a cash hand-over's payment voided), and what the display and the
public board show."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, List

import pytest
from sqlalchemy import select

from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.errors import InvalidInput, NotFound
from comanda.services import order_queue
from comanda.services.orders import StatusConflict
from tests.helpers.console import add_staff, member, order_row, queued_order

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc)
ROMA_CUSTOMER = "roma:whatsapp:+525533334444"


@pytest.fixture(autouse=True)
def people(demo):
    set_clock(lambda: T0)
    add_staff("ana@cafe.mx", stores=["centro"])
    add_staff("rosa@cafe.mx", stores=["roma"])
    yield
    set_clock(None)


def bump(order_id: int, expected: str | None = None, who: str = "ana@cafe.mx") -> str:
    someone = member(who)
    with transaction() as session:
        return order_queue.bump(session, someone, someone.actor("198.51.100.4"), order_id, expected).status


def recall(who: str = "ana@cafe.mx", **where: Any) -> m.Order:
    someone = member(who)
    with transaction() as session:
        order = order_queue.recall(session, someone, someone.actor("198.51.100.4"), **where)
        session.refresh(order)
        return order


def notified(order_id: int) -> List[str]:
    with new_session() as session:
        return list(
            session.execute(
                select(m.Notification.event).where(m.Notification.order_id == order_id).order_by(m.Notification.id)
            ).scalars()
        )


def test_a_bump_moves_one_stage_tells_the_customer_and_is_audited(demo):
    order_id = queued_order(items=(("CONCHA", 2),), method="cash")
    assert [bump(order_id, "received"), bump(order_id, "preparing"), bump(order_id, "ready")] == [
        "preparing",
        "ready",
        "picked_up",
    ]
    row = order_row(order_id)
    assert (row.status, row.payment_status) == ("picked_up", "paid")  # cash collected at the hand-over
    assert notified(order_id) == ["preparing", "ready", "picked_up"]
    with new_session() as session:
        moves = session.execute(
            select(m.AuditEvent.actor, m.AuditEvent.ip, m.AuditEvent.data)
            .where(m.AuditEvent.action == "order.moved")
            .order_by(m.AuditEvent.id)
        ).all()
        actors = session.execute(
            select(m.OrderStatusChange.actor).where(m.OrderStatusChange.order_id == order_id)
        ).scalars()
        assert {a for a in actors} >= {f"staff:{member('ana@cafe.mx').id}"}
    assert [(a, ip, d["from"], d["to"]) for a, ip, d in moves] == [
        (f"staff:{member('ana@cafe.mx').id}", "198.51.100.4", "received", "preparing"),
        (f"staff:{member('ana@cafe.mx').id}", "198.51.100.4", "preparing", "ready"),
        (f"staff:{member('ana@cafe.mx').id}", "198.51.100.4", "ready", "picked_up"),
    ]
    with pytest.raises(StatusConflict):
        bump(order_id)  # handed over: out of the queue


def test_a_second_tap_on_a_card_someone_moved_is_a_conflict_not_a_second_move(demo):
    order_id = queued_order()
    assert bump(order_id, "received") == "preparing"
    with pytest.raises(StatusConflict):
        bump(order_id, "received")
    assert order_row(order_id).status == "preparing" and notified(order_id) == ["preparing"]


def test_two_screens_bumping_the_same_card_at_once_move_it_once(demo):
    order_id = queued_order()
    outcomes: List[str] = []
    start = threading.Barrier(2)

    def tap() -> None:
        start.wait()
        try:
            outcomes.append(bump(order_id, "received"))
        except StatusConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["conflict", "preparing"]
    with new_session() as session:
        moves = (
            session.execute(select(m.OrderStatusChange.to_status).where(m.OrderStatusChange.order_id == order_id))
            .scalars()
            .all()
        )
    assert moves.count("preparing") == 1 and notified(order_id) == ["preparing"]


def test_another_stores_order_is_not_found_for_every_move(demo):
    roma_order = queued_order(ROMA_CUSTOMER)
    centro_order = queued_order()
    ana = member("ana@cafe.mx")
    attempts: List[Callable[[Any], Any]] = [
        lambda s: order_queue.bump(s, ana, ana.actor(), roma_order),
        lambda s: order_queue.move(s, ana, ana.actor(), roma_order, "ready"),
        lambda s: order_queue.recall(s, ana, ana.actor(), order_id=roma_order),
        lambda s: order_queue.confirm_spei(s, ana, ana.actor(), roma_order, Decimal("36.00"), None),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            with transaction() as session:
                attempt(session)
    assert order_row(roma_order).status == "received" and notified(roma_order) == []
    with new_session() as session:
        listed = order_queue.list_orders(session, ana, None, None)
        assert [o.id for o in listed] == [centro_order]
        with pytest.raises(NotFound):
            order_queue.list_orders(session, ana, "roma", None)


def test_named_moves_check_the_fulfilment_and_the_status(demo):
    order_id = queued_order()
    ana = member("ana@cafe.mx")
    for target, error in (("delivered", InvalidInput), ("received", InvalidInput), ("sideways", InvalidInput)):
        with pytest.raises(error):
            with transaction() as session:
                order_queue.move(session, ana, ana.actor(), order_id, target)
    with transaction() as session:
        with pytest.raises(StatusConflict):
            order_queue.move(session, ana, ana.actor(), order_id, "picked_up")  # not ready yet
    with transaction() as session:
        assert order_queue.move(session, ana, ana.actor(), order_id, "ready").status == "ready"


def test_recall_undoes_the_last_move_step_by_step_and_voids_cash_taken_at_a_recalled_hand_over(demo):
    order_id = queued_order(method="cash")
    for expected in ("received", "preparing", "ready"):
        bump(order_id, expected)
    assert order_row(order_id).payment_status == "paid"
    back = recall(store_ids=["centro"])
    assert (back.id, back.status, back.payment_status, back.completed_at) == (order_id, "ready", "unpaid", None)
    with new_session() as session:
        [cash] = session.execute(select(m.Payment).where(m.Payment.order_id == order_id)).scalars()
        assert cash.status == "voided"
        recalled = session.execute(select(m.AuditEvent.action).where(m.AuditEvent.entity_id == str(order_id))).scalars()
        assert "order.recalled" in list(recalled)
    assert recall().status == "preparing"
    assert recall().status == "received"
    with pytest.raises(NotFound):
        recall()  # nothing left to undo
    assert notified(order_id) == ["preparing", "ready", "picked_up"]  # recalls tell the customer nothing
    assert bump(order_id, "received") == "preparing" and notified(order_id).count("preparing") == 1
    assert [bump(order_id), bump(order_id)] == ["ready", "picked_up"]  # handed over again: cash taken again
    with new_session() as session:
        statuses = sorted(session.execute(select(m.Payment.status).where(m.Payment.order_id == order_id)).scalars())
    assert statuses == ["paid", "voided"]


def test_recall_is_for_recent_moves_of_ones_own_stores(demo):
    centro_order = queued_order()
    roma_order = queued_order(ROMA_CUSTOMER)
    bump(roma_order, who="rosa@cafe.mx")
    bump(centro_order)
    set_clock(lambda: T0 + timedelta(minutes=14))
    assert recall(who="rosa@cafe.mx").id == roma_order  # Rosa's recall never reaches Centro's later move
    set_clock(lambda: T0 + timedelta(minutes=16))
    with pytest.raises(NotFound):
        recall()  # too old (COMANDA_QUEUE_RECALL_MINUTES = 15)
    assert order_row(centro_order).status == "preparing"


def test_an_invoiced_hand_over_cannot_be_recalled(demo):
    order_id = queued_order(method="cash")
    for _ in range(3):
        bump(order_id)
    with transaction() as session:
        order = session.get(m.Order, order_id)
        session.add(
            m.Invoice(
                business_id=order.business_id,
                store_id=order.store_id,
                order_id=order_id,
                kind="ingreso",
                status="stamped",
                receiver_rfc="XAXX010101000",
                receiver_name="PUBLICO EN GENERAL",
                receiver_postal_code="06000",
                receiver_tax_regime="616",
                cfdi_use="S01",
                subtotal=Decimal("31.03"),
                tax=Decimal("4.97"),
                total=Decimal("36.00"),
            )
        )
    with pytest.raises(StatusConflict):
        recall()
    assert (order_row(order_id).status, order_row(order_id).payment_status) == ("picked_up", "paid")


def test_the_display_shows_cards_with_what_the_kitchen_and_the_counter_need(demo):
    set_clock(lambda: T0)
    cash = queued_order(
        items=(("TARO-MT", 1),),
        modifiers={"size": "large", "sugar": "0", "boba": "no"},
        method="cash",
        name="Ana María López",
        note="sin servilletas",
        line_note="bien frío",
    )
    delivery = queued_order(
        "centro:whatsapp:+525577778888",
        items=(("TACO-PASTOR", 8),),
        name="Luis",
        fulfilment="delivery",
        address="Donceles 45 interior 2",
        postal_code="06000",
    )
    roma = queued_order(ROMA_CUSTOMER)
    bump(delivery)
    ana = member("ana@cafe.mx")
    with new_session() as session:
        columns = order_queue.queue_cards(session, ana, ["centro"], "en")
    assert [c.id for c in columns["received"]] == [cash] and [c.id for c in columns["preparing"]] == [delivery]
    assert columns["ready"] == [] and roma not in {c.id for cards in columns.values() for c in cards}
    card = columns["received"][0]
    assert (card.ticket, card.customer_first_name, card.paid, card.cash_due) == (
        "C-001",
        "Ana",
        False,
        Decimal("95.00"),
    )
    assert (card.note, card.lines[0].note, card.lines[0].quantity) == ("sin servilletas", "bien frío", 1)
    assert card.lines[0].name == "Taro milk tea (large, no sugar, no boba)" and card.next_status == "preparing"
    assert (card.warn_minutes, card.late_minutes, card.since) == (10, 20, T0)
    moving = columns["preparing"][0]
    assert (moving.paid, moving.cash_due, moving.fulfilment) == (True, None, "delivery")
    assert moving.delivery_address == "Donceles 45 interior 2" and moving.next_status == "ready"
    with new_session() as session:
        in_spanish = order_queue.queue_cards(session, ana, ["centro"], "es")["received"][0].lines[0].name
    assert in_spanish == "Té de taro con leche (grande, sin azúcar, sin perlas)"


def test_the_board_shows_ticket_numbers_only(demo):
    queued_order()
    second = queued_order("centro:whatsapp:+525500001111")
    queued_order(ROMA_CUSTOMER)
    bump(second)
    bump(second)
    with new_session() as session:
        board = order_queue.board(session, "centro")
        assert (board.store_name, board.preparing, board.ready) == ("Café Esquina Centro", ["C-001"], ["C-002"])
        assert order_queue.board(session, "roma").preparing == ["R-001"]
        with pytest.raises(NotFound):
            order_queue.board(session, "polanco")
