"""Store credit on SQLite and PostgreSQL, split with another way to pay: the balance goes first, a link (or cash
at the counter) pays the rest, the ledger sums, and an order cancelled or expired gives the credit back once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Iterator

import pytest
from sqlalchemy import select

from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.services import carts, orders, payments, store_credit
from comanda.services.cfdi.sales import payment_form
from comanda.services.checkout import CheckoutDetails, CheckoutProblem
from tests.helpers.payments import ANA, T0, assert_ledger_balanced, order, pay, provider, start
from tests.helpers.returns import ask, settle, sold, staff_step

pytestmark = pytest.mark.usefixtures("sandbox_settings")


@pytest.fixture
def credit(demo) -> Iterator[int]:
    """Ana's $150 of store credit (a mug returned for credit): her customer id."""
    set_clock(lambda: T0)
    return_id = ask(sold("TAZA"), outcome="credit", declared_condition="unused")
    staff_step(return_id, "receive", "good")
    assert settle(return_id).status == "credited"
    with new_session() as session:
        customer = session.execute(select(m.Conversation.customer_id).where(m.Conversation.id == ANA)).scalar()
    yield customer
    set_clock(None)


def checkout(method: str = "card", sku: str = "TERMO", quantity: int = 1, use_credit: bool = True) -> int:
    with transaction() as session:
        carts.add_items(session, carts.open_cart(session, ANA), [carts.Wanted(sku, quantity)], "es")
    with transaction() as session:
        details = CheckoutDetails("pickup", "Ana", method, use_store_credit=use_credit)
        return orders.place_order(session, ANA, details, actor="test").id


def balance(customer: int) -> Decimal:
    with new_session() as session:
        return store_credit.balance(session, "cafe-esquina", customer)


def ledger() -> list:
    with new_session() as session:
        return session.execute(
            select(m.StoreCreditMovement.kind, m.StoreCreditMovement.amount).order_by(m.StoreCreditMovement.id)
        ).all()


def paid_with(order_id: int) -> list:
    with new_session() as session:
        return session.execute(
            select(m.Payment.provider, m.Payment.amount, m.Payment.status)
            .where(m.Payment.order_id == order_id)
            .order_by(m.Payment.id)
        ).all()


def test_credit_short_of_the_total_pays_its_part_and_a_link_the_rest(credit):
    order_id = checkout()  # a $320 tumbler, $150 of credit
    placed = order(order_id)
    assert (placed.status, placed.payment_status, placed.payment_method) == ("pending_payment", "unpaid", "card")
    assert balance(credit) == 0
    link = start(order_id)
    assert link.amount == Decimal("170.00")
    with new_session() as session:
        assert orders.amount_due(session, placed) == Decimal("170.00")
    assert pay(link.payment_id) == "paid"
    paid = order(order_id)
    assert (paid.status, paid.payment_status, paid.ticket_code) == ("received", "paid", "C-002")
    assert paid_with(order_id) == [
        ("store_credit", Decimal("150.00"), "paid"),
        ("sandbox", Decimal("170.00"), "paid"),
    ]
    assert ledger() == [("return", Decimal("150.00")), ("checkout", Decimal("-150.00"))]
    with new_session() as session:
        assert payment_form(session, paid) == "04"  # the larger part, by card
    assert_ledger_balanced()


def test_credit_and_cash_for_the_rest_goes_to_the_queue_and_the_counter_collects_only_the_rest(credit):
    order_id = checkout("cash", "TAZA", 2)  # $300
    with transaction() as session:
        placed = session.get(m.Order, order_id)
        assert (placed.status, placed.ticket_code) == ("received", "C-002")
        for status in ("ready", "picked_up"):
            orders.set_status(session, placed, status, "test")
        assert payments.collect_cash(session, placed, "test").amount == Decimal("150.00")
    assert balance(credit) == 0


def test_credit_that_covers_the_total_pays_it_all_and_none_is_refused(credit):
    order_id = checkout(sku="CAFE-GRANO-250", use_credit=True, method="card")  # $180: $150 + a $30 link
    assert start(order_id).amount == Decimal("30.00")
    with transaction() as session:
        orders.cancel_order(session, session.get(m.Order, order_id), "test")
    whole = checkout(sku="TAZA")  # $150: the credit pays it all, whatever the rest's method
    assert (order(whole).payment_method, order(whole).payment_status, order(whole).ticket_code) == (
        "store_credit",
        "paid",
        "C-002",
    )
    with pytest.raises(CheckoutProblem):  # nothing left to split
        checkout(sku="TAZA")
    assert balance(credit) == 0


def test_a_cancelled_order_gives_its_credit_back_once(credit):
    order_id = checkout()
    with transaction() as session:
        placed = session.get(m.Order, order_id)
        orders.cancel_order(session, placed, "conversation:test")
        assert store_credit.give_back(session, placed, "test", "again") == 0  # once
    assert balance(credit) == Decimal("150.00")
    assert ledger() == [
        ("return", Decimal("150.00")),
        ("checkout", Decimal("-150.00")),
        ("restored", Decimal("150.00")),
    ]
    assert paid_with(order_id) == [("store_credit", Decimal("150.00"), "refunded")]
    assert_ledger_balanced()


def test_an_expired_order_gives_its_credit_back_and_a_late_payment_of_the_rest_is_flagged(credit):
    order_id = checkout()
    link = start(order_id)
    set_clock(lambda: T0 + timedelta(hours=2))  # past the hold
    assert payments.expire_due(lambda name: provider()) == [order_id]
    assert payments.expire_due(lambda name: provider()) == []
    assert balance(credit) == Decimal("150.00")
    assert [kind for kind, _ in ledger()] == ["return", "checkout", "restored"]
    assert pay(link.payment_id) == "credit_returned"  # $170 of $320: a person decides
    assert (order(order_id).status, order(order_id).payment_status) == ("expired", "flagged")
    with new_session() as session:
        tickets = session.execute(select(m.HandoffTicket.reason, m.HandoffTicket.summary)).all()
    assert tickets[-1][0] == "payment_flag" and "store credit went back" in tickets[-1][1]


def test_a_new_link_after_the_credit_came_back_is_for_the_whole_total(credit):
    order_id = checkout()
    start(order_id)
    set_clock(lambda: T0 + timedelta(hours=2))
    payments.expire_due(lambda name: provider())
    with transaction() as session:
        again = payments.new_link(session, order_id, provider())
    assert again.amount == Decimal("320.00")
    assert pay(again.payment_id) == "paid"
    assert balance(credit) == Decimal("150.00")  # the customer keeps it for another order
    assert_ledger_balanced()
