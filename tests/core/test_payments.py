"""Payments on real SQL (SQLite, and PostgreSQL when configured), with the sandbox provider's real
HMAC-signed webhooks: links that expire with the hold, paid exactly once (replays, duplicates,
concurrent duplicates), mismatches flagged, declines, the expiry sweep, late payments, SPEI, refunds,
reconciliation (through the `comanda` command) and low-stock alerts."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from comanda import clock
from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.errors import ConfigError, InvalidInput, OutOfStock
from comanda.services import orders, payments
from comanda.services.payment_provider import ProviderError, ProviderEvent, WebhookRejected
from comanda.settings import DEMO_SPEI_CLABE
from integrations.payments import payment_provider, sandbox_webhooks
from integrations.payments.sandbox import SIGNATURE_HEADER, SandboxProvider, record_charge, sign
from tests.helpers.paths import ROOT
from tests.helpers.payment_fakes import DEEP, NESTED
from tests.helpers.payments import (
    ANA,
    SECRET,
    T0,
    again,
    assert_ledger_balanced,
    available,
    deliver,
    notices,
    order,
    pay,
    payment,
    place,
    provider,
    sandbox_event,
    signed,
    start,
    webhook,
)
from tests.helpers.stock import set_on_hand
from tests.helpers.threads import run_together

pytestmark = pytest.mark.usefixtures("sandbox_settings")

# --- links and paying once -----------------------------------------------------------------------


def test_a_card_link_expires_with_the_hold_and_pays_once_with_the_days_ticket(demo):
    set_clock(lambda: T0)
    order_id = place()
    link = start(order_id)
    assert link.link_url.startswith("http://bo.test/pay/") and len(link.link_url) > 40
    assert link.expires_at == T0 + timedelta(minutes=15) and link.amount == Decimal("36.00")
    assert start(order_id) == link  # asking again returns the open link
    assert available("CONCHA") == Decimal("28")  # 30 on hand, 2 held
    body, headers = webhook(link.payment_id)
    assert deliver(body, headers) == "paid"
    assert deliver(body, headers) == "duplicate"  # the provider's replay
    assert deliver(*again(body)) == "duplicate"  # another event for the same payment
    paid = order(order_id)
    assert (paid.status, paid.payment_status, paid.ticket_code) == ("received", "paid", "C-001")
    assert payment(link.payment_id).status == "paid" and payment(link.payment_id).paid_at == T0
    with new_session() as session:
        sold = session.execute(
            select(func.sum(m.StockMovement.on_hand_delta)).where(
                m.StockMovement.reason == "sale", m.StockMovement.reference_id == str(order_id)
            )
        ).scalar()
        outcomes = session.execute(select(m.PaymentEvent.outcome).order_by(m.PaymentEvent.id)).scalars().all()
    assert sold == Decimal("-2") and outcomes == ["paid", "duplicate"]
    assert notices(order_id) == [f"order:{order_id}:paid"]
    assert available("CONCHA") == Decimal("28")
    assert_ledger_balanced()


def test_forged_tampered_stale_and_unsigned_webhooks_change_nothing(demo):
    link = start(place())
    body, headers = webhook(link.payment_id)
    forged = {SIGNATURE_HEADER: sign(body, "not-the-secret", int(clock.now().timestamp()))}
    tampered = body.replace(b'"36.00"', b'"3.60"')
    stale_body, stale_headers = webhook(link.payment_id, age_seconds=301)
    garbage = b"not json"
    cases = [
        (body, forged, 403),
        (tampered, headers, 403),
        (stale_body, stale_headers, 403),
        (body, {}, 401),
        (body, {SIGNATURE_HEADER: "t=abc"}, 403),
        (garbage, {SIGNATURE_HEADER: sign(garbage, SECRET, int(clock.now().timestamp()))}, 400),
    ]
    for raw, signature, status in cases:
        with pytest.raises(WebhookRejected) as refused:
            provider().parse_webhook(raw, signature, {})
        assert refused.value.status == status
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.PaymentEvent)).scalar() == 0
    assert payment(link.payment_id).status == "pending"


@pytest.mark.parametrize(
    "data, literals",
    [
        ({"amount": "36.001"}, None),  # more than two decimals: never rounded to 36.00
        ({"amount": 36.0}, None),  # a JSON number: the sandbox writes amounts as text
        ({"amount": "NaN"}, None),
        ({"amount": "Infinity"}, None),
        ({"amount": "1e999999"}, None),
        ({"amount": "-36.00"}, None),
        ({}, {"amount": "Infinity"}),
        ({}, {"amount": "1e999999"}),
        ({}, {"amount": "NaN"}),
        ({}, {"extra": "-Infinity"}),  # anywhere in the body, not only in the amount
        ({}, {"extra": DEEP}),
        ({}, {"extra": NESTED}),
    ],
)
def test_a_signed_event_with_an_amount_that_is_not_money_or_nested_too_deep_is_refused(demo, data, literals):
    link = start(place())
    well_formed = sandbox_event(link.payment_id, {})
    assert provider().parse_webhook(well_formed, signed(well_formed), {}) is not None
    body = sandbox_event(link.payment_id, data, literals)
    with pytest.raises(WebhookRejected) as refused:
        provider().parse_webhook(body, signed(body), {})
    assert refused.value.status == 400
    assert payment(link.payment_id).status == "pending"


@pytest.mark.parametrize(
    "amount, currency, reason", [("35.99", "MXN", "amount_mismatch"), ("36.00", "USD", "currency_mismatch")]
)
def test_a_mismatched_amount_or_currency_is_flagged_for_staff_and_not_sold(demo, amount, currency, reason):
    order_id = place()
    link = start(order_id)
    body, headers = webhook(link.payment_id, amount=amount, currency=currency)
    assert deliver(body, headers) == reason
    assert deliver(*again(body)) == "duplicate"  # the same payment again: flagged is final, a person decides
    flagged, row = order(order_id), payment(link.payment_id)
    assert (flagged.status, flagged.payment_status, flagged.ticket_code) == ("pending_payment", "flagged", None)
    assert (row.status, row.flag_reason) == ("flagged", reason)
    assert available("CONCHA") == Decimal("28")  # still only held: nothing was sold
    with new_session() as session:
        ticket = session.execute(select(m.HandoffTicket)).scalar_one()
        audit = session.execute(select(m.AuditEvent.action).where(m.AuditEvent.entity_id == str(row.id))).scalars()
        assert ticket.reason == "payment_flag" and ticket.conversation_id == ANA and amount in ticket.summary
        assert "payment.flagged" in list(audit)
    assert notices(order_id) == [f"order:{order_id}:flagged:{link.payment_id}"]


def test_concurrent_duplicates_pay_once_with_one_ticket(demo):
    """Twelve deliveries at the same moment: four replays of one event and eight other events for the
    same payment. One pays; the ticket counter moves once."""
    order_id = place()
    link = start(order_id)
    first = webhook(link.payment_id)
    deliveries = [first] * 4 + [again(first[0]) for _ in range(8)]
    outcomes = run_together(len(deliveries), lambda n: deliver(*deliveries[n]))
    assert sorted(outcomes) == ["duplicate"] * 11 + ["paid"], outcomes
    with new_session() as session:
        assert session.execute(select(m.TicketCounter.last_number)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(m.PaymentEvent)).scalar() == 9
    assert order(order_id).ticket_code == "C-001"
    assert_ledger_balanced()


def test_many_orders_paid_concurrently_get_gap_free_tickets(demo):
    links = [start(place(f"centro:whatsapp:+5255100000{n:02d}")) for n in range(12)]
    events = [webhook(link.payment_id) for link in links]
    outcomes = run_together(len(events), lambda n: deliver(*events[n]))
    assert outcomes == ["paid"] * 12
    with new_session() as session:
        tickets = session.execute(select(m.Order.ticket_number).order_by(m.Order.ticket_number)).scalars().all()
    assert tickets == list(range(1, 13))


# --- declines, expiry, late payments, new links --------------------------------------------------


def test_a_decline_releases_the_hold_and_a_new_link_holds_it_again(demo):
    set_clock(lambda: T0)
    order_id = place(method="card")
    first = start(order_id)
    assert pay(first.payment_id, kind="declined") == "declined"
    assert available("CONCHA") == Decimal("30") and order(order_id).status == "pending_payment"
    assert notices(order_id) == [f"order:{order_id}:declined:{first.payment_id}"]
    set_clock(lambda: T0 + timedelta(minutes=5))
    with transaction() as session:
        second = payments.new_link(session, order_id, provider(), method="oxxo")
    assert second.link_url != first.link_url and second.method == "oxxo"
    assert second.expires_at == T0 + timedelta(minutes=20) and available("CONCHA") == Decimal("28")
    assert pay(first.payment_id, kind="declined") == "ignored"  # a late copy of the old decline
    assert pay(second.payment_id) == "paid"
    assert (order(order_id).status, order(order_id).payment_method) == ("received", "oxxo")
    assert_ledger_balanced()


def test_the_sweep_expires_unpaid_orders_and_tells_the_customer(demo):
    set_clock(lambda: T0)
    due, fresh = place(), place("centro:whatsapp:+525599990000")
    link = start(due)
    set_clock(lambda: T0 + timedelta(minutes=10))
    start(fresh)
    with transaction() as session:
        reservation = orders.order_reservation(session, fresh)
        reservation.expires_at = T0 + timedelta(minutes=25)
    set_clock(lambda: T0 + timedelta(minutes=16))
    assert payments.expire_due(payment_provider) == [due]
    assert payments.expire_due(payment_provider) == []  # once
    expired = order(due)
    assert (expired.status, payment(link.payment_id).status) == ("expired", "expired")
    assert order(fresh).status == "pending_payment"
    assert available("CONCHA") == Decimal("28")  # only the fresh order still holds 2
    assert notices(due) == [f"order:{due}:expired:{link.payment_id}"]
    assert_ledger_balanced()


def test_a_payment_after_expiry_sells_if_the_stock_is_there_else_staff_refund_it(demo):
    set_clock(lambda: T0)
    lucky, unlucky = (
        place(sku="COCA-600", quantity=2),
        place("centro:whatsapp:+525599990000", sku="COCA-600", quantity=2),
    )
    links = {lucky: start(lucky), unlucky: start(unlucky)}
    set_clock(lambda: T0 + timedelta(minutes=20))
    assert sorted(payments.expire_due(payment_provider)) == sorted([lucky, unlucky])
    assert pay(links[lucky].payment_id) == "paid"
    assert (order(lucky).status, order(lucky).ticket_code) == ("received", "C-001")
    set_on_hand("COCA-600", "0")
    assert pay(links[unlucky].payment_id) == "stock_gone"
    gone = order(unlucky)
    assert (gone.status, gone.payment_status, gone.ticket_code) == ("expired", "flagged", None)
    assert payment(links[unlucky].payment_id).flag_reason == "stock_gone"
    refund = payments.refund(
        payment_provider,
        links[unlucky].payment_id,
        Decimal("60.00"),
        "stock gone",
        "staff:1",
        idempotency_key=f"flag:{links[unlucky].payment_id}",
    )
    assert (refund.status, refund.amount) == ("succeeded", Decimal("60.00"))
    assert (order(unlucky).payment_status, payment(links[unlucky].payment_id).status) == ("refunded", "refunded")
    with new_session() as session:
        charge = session.execute(
            select(m.SandboxCharge).where(
                m.SandboxCharge.link_id == payment(links[unlucky].payment_id).provider_link_id
            )
        ).scalar_one()
        assert charge.refunded == Decimal("60.00")
    assert_ledger_balanced()


def test_a_new_link_reopens_an_expired_order_unless_the_stock_went(demo):
    set_clock(lambda: T0)
    order_id = place(sku="COCA-600", quantity=2)
    start(order_id)
    set_clock(lambda: T0 + timedelta(minutes=20))
    payments.expire_due(payment_provider)
    with transaction() as session:
        reopened = payments.new_link(session, order_id, provider())
    assert order(order_id).status == "pending_payment" and reopened.expires_at == T0 + timedelta(minutes=35)
    set_clock(lambda: T0 + timedelta(minutes=40))
    payments.expire_due(payment_provider)
    set_on_hand("COCA-600", "1")
    with pytest.raises(OutOfStock):
        with transaction() as session:
            payments.new_link(session, order_id, provider())
    assert order(order_id).status == "expired"


class RecordingProvider(SandboxProvider):
    """The sandbox, with the links it was asked to close recorded, and link making that can fail."""

    def __init__(self, failing: bool = False) -> None:
        super().__init__("http://bo.test", SECRET, 300)
        self.failing, self.closed, self.requests = failing, [], []

    def create_link(self, request):
        if self.failing:
            raise ProviderError("the provider is down")
        self.requests.append(request)
        return super().create_link(request)

    def expire_link(self, link_id: str) -> bool:
        self.closed.append(link_id)
        return True


def test_a_new_link_closes_the_old_one_only_once_it_exists(demo):
    order_id = place()
    first = start(order_id)
    old_link = payment(first.payment_id).provider_link_id
    down = RecordingProvider(failing=True)
    with pytest.raises(ProviderError):
        with transaction() as session:
            payments.new_link(session, order_id, down)
    assert down.closed == [] and payment(first.payment_id).status == "pending"  # the old link still pays
    up = RecordingProvider()
    with transaction() as session:
        second = payments.new_link(session, order_id, up)
    assert up.closed == [old_link] and payment(first.payment_id).status == "expired"
    assert pay(second.payment_id) == "paid"


def test_a_link_names_the_lines_in_the_customers_language(demo):
    order_id = place(sku="AGUA-1L", quantity=1)
    with transaction() as session:
        session.get(m.Order, order_id).language = "en"
    recording = RecordingProvider()
    with transaction() as session:
        payments.start_payment(session, session.get(m.Order, order_id), recording)
    [request] = recording.requests
    assert [line.name for line in request.lines] == ["Bottled water 1 L"] and request.title.startswith("Order ")
    with new_session() as session:  # what the invoice and the ticket print stays in the business's language
        assert session.get(m.Order, order_id).lines[0].description == "Agua natural 1 L"


def test_a_hold_that_ran_out_before_the_sweep_gets_no_link(demo):
    set_clock(lambda: T0)
    order_id = place()
    set_clock(lambda: T0 + timedelta(minutes=16))  # the sweep has not been round yet
    with pytest.raises(payments.NotPayable):
        start(order_id)
    with transaction() as session:  # "send me the link" holds the stock again
        assert payments.new_link(session, order_id, provider()).expires_at == T0 + timedelta(minutes=31)


def test_the_sweep_goes_on_past_an_order_that_moved_meanwhile(demo, monkeypatch):
    set_clock(lambda: T0)
    moved, due = place(), place("centro:whatsapp:+525599990000")
    for order_id in (moved, due):
        start(order_id)
    set_clock(lambda: T0 + timedelta(minutes=16))
    expire_if_due = payments.sweep._expire_if_due

    def paid_meanwhile(session, order_id, now):  # what SQLite, which locks no row, can let happen
        if order_id == moved:
            raise orders.StatusConflict(f"order {order_id} was paid while the sweep read it")
        return expire_if_due(session, order_id, now)

    monkeypatch.setattr(payments.sweep, "_expire_if_due", paid_meanwhile)
    assert payments.expire_due(payment_provider) == [due]
    assert (order(moved).status, order(due).status) == ("pending_payment", "expired")


def test_cash_needs_no_payment_and_paid_orders_get_no_new_link(demo):
    cash = place(method="cash")
    with pytest.raises(payments.NotPayable):
        start(cash)
    card = place("centro:whatsapp:+525599990000")
    pay(start(card).payment_id)
    with pytest.raises(payments.NotPayable):
        with transaction() as session:
            payments.new_link(session, card, provider())


# --- SPEI and refunds ----------------------------------------------------------------------------


def test_spei_gives_a_reference_and_staff_confirm_the_amount(demo):
    wrong, right = place(method="spei"), place("centro:whatsapp:+525599990000", method="spei")
    instructions = start(right)
    assert instructions.link_url is None and instructions.spei.clabe == DEMO_SPEI_CLABE
    assert instructions.spei.reference == f"{right:07d}" and instructions.spei.beneficiary == "Café Esquina"
    start(wrong)
    with transaction() as session:
        assert payments.mark_spei_received(session, wrong, Decimal("30.00"), "staff:1") == "amount_mismatch"
    with transaction() as session:
        assert payments.mark_spei_received(session, right, Decimal("36.00"), "staff:1", "BNET123") == "paid"
    with transaction() as session:
        assert payments.mark_spei_received(session, right, Decimal("36.00"), "staff:1") == "duplicate"
    assert (order(right).status, order(right).ticket_code) == ("received", "C-001")
    assert order(wrong).payment_status == "flagged"


def test_a_bank_reference_pays_one_order_only(demo):
    first, second = place(method="spei"), place("centro:whatsapp:+525599990000", method="spei")
    for order_id in (first, second):
        start(order_id)
    with transaction() as session:
        assert payments.mark_spei_received(session, first, Decimal("36.00"), "staff:1", "BNET0042") == "paid"
    with pytest.raises(InvalidInput):  # a typo: that transfer paid the first order
        with transaction() as session:
            payments.mark_spei_received(session, second, Decimal("36.00"), "staff:1", "BNET0042")
    assert (order(first).ticket_code, order(second).payment_status) == ("C-001", "unpaid")
    with transaction() as session:  # the right reference still pays the second order
        assert payments.mark_spei_received(session, second, Decimal("36.00"), "staff:1", "BNET0043") == "paid"
    assert order(second).ticket_code == "C-002"


@pytest.mark.parametrize("amount", ["36.001", "NaN", "Infinity", "1e999999", "-36.00", "0", Decimal("36.004")])
def test_a_staff_amount_that_is_not_money_is_refused_never_rounded(demo, amount):
    order_id = place(method="spei")
    start(order_id)
    with pytest.raises(InvalidInput) as refused:
        with transaction() as session:
            payments.mark_spei_received(session, order_id, amount, "staff:1")
    assert str(amount) in refused.value.message
    assert (order(order_id).payment_status, order(order_id).ticket_code) == ("unpaid", None)
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.PaymentEvent)).scalar() == 0


def test_a_refund_amount_that_is_not_money_is_refused_never_rounded(demo):
    link = start(place(sku="COCA-600", quantity=3))  # 90.00
    pay(link.payment_id)
    for n, amount in enumerate(("30.001", "NaN", "Infinity", "-5.00", "0", Decimal("0.001"))):
        with pytest.raises(InvalidInput):
            payments.refund(payment_provider, link.payment_id, amount, "bad amount", "staff:1", f"bad:{n}")
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.Refund)).scalar() == 0
        assert session.execute(select(m.SandboxCharge.refunded)).scalar_one() == Decimal("0.00")
    assert payment(link.payment_id).status == "paid"


def test_a_real_provider_without_a_clabe_offers_no_spei(demo, monkeypatch):
    order_id = place(method="spei")
    monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", "stripe")
    with pytest.raises(ConfigError):
        start(order_id)


def test_refunds_are_idempotent_and_never_exceed_the_payment(demo):
    link = start(place(sku="COCA-600", quantity=3))  # 90.00
    pay(link.payment_id)
    first = payments.refund(payment_provider, link.payment_id, Decimal("30.00"), "one was warm", "staff:1", "ret:1")
    again = payments.refund(payment_provider, link.payment_id, Decimal("30.00"), "one was warm", "staff:1", "ret:1")
    assert first.id == again.id and first.provider_refund_id.startswith("sbxre_")
    assert payment(link.payment_id).status == "partially_refunded"
    assert order(link.order_id).payment_status == "partially_refunded"
    with pytest.raises(payments.RefundRefused):
        payments.refund(payment_provider, link.payment_id, Decimal("60.01"), "too much", "staff:1", "ret:2")
    with pytest.raises(payments.RefundRefused):
        payments.refund(payment_provider, link.payment_id, Decimal("10.00"), "key reuse", "staff:1", "ret:1")
    payments.refund(payment_provider, link.payment_id, Decimal("60.00"), "the rest", "staff:1", "ret:3")
    assert (payment(link.payment_id).status, order(link.order_id).payment_status) == ("refunded", "refunded")
    with new_session() as session:
        rows = session.execute(select(m.Refund.idempotency_key, m.Refund.status).order_by(m.Refund.id)).all()
        actions = (
            session.execute(select(m.AuditEvent.action).where(m.AuditEvent.action.like("refund.%"))).scalars().all()
        )
    assert rows == [("ret:1", "succeeded"), ("ret:3", "succeeded")]
    assert sorted(actions) == ["refund.requested", "refund.requested", "refund.succeeded", "refund.succeeded"]


def test_a_second_payment_for_a_paid_order_is_flagged_for_a_refund(demo):
    order_id = place()
    first = start(order_id)
    with transaction() as session:
        second = payments.new_link(session, order_id, provider())
    assert pay(second.payment_id) == "paid"
    assert pay(first.payment_id) == "already_paid"  # the customer also paid the old link
    assert (payment(first.payment_id).status, payment(first.payment_id).flag_reason) == ("flagged", "already_paid")
    payments.refund(payment_provider, first.payment_id, Decimal("36.00"), "paid twice", "staff:1", "dup:1")
    assert order(order_id).payment_status == "paid"  # the order's own payment stands


def test_two_pay_clicks_at_once_are_a_second_charge_flagged_told_and_refunded_in_one_step(demo):
    """Two Pay presses on one sandbox link book two charges; their webhooks arrive at the same moment.
    One sells the order; the other is a second real charge: flagged ``already_paid`` on a payment row of
    its own, a ticket for staff, the customer told; staff refund it in one step, once."""
    order_id = place()
    link = start(order_id)
    clicks = [webhook(link.payment_id) for _ in range(2)]
    outcomes = run_together(2, lambda n: deliver(*clicks[n]))
    assert sorted(outcomes) == ["already_paid", "paid"], outcomes
    for body, headers in clicks:
        assert deliver(body, headers) == "duplicate"  # a replay of either charge's event
        assert deliver(*again(body)) == "duplicate"  # another event for either charge
    with new_session() as session:
        rows = (
            session.execute(select(m.Payment).where(m.Payment.order_id == order_id).order_by(m.Payment.id))
            .scalars()
            .all()
        )
        charges = set(session.execute(select(m.SandboxCharge.id)).scalars())
        ticket = session.execute(select(m.HandoffTicket)).scalar_one()
    assert [(p.status, p.flag_reason) for p in rows] == [("paid", None), ("flagged", "already_paid")]
    original, extra = rows
    assert {original.provider_payment_id, extra.provider_payment_id} == charges
    assert (extra.amount, extra.method, extra.provider) == (Decimal("36.00"), "card", "sandbox")
    sold = order(order_id)
    assert (sold.status, sold.payment_status, sold.ticket_code) == ("received", "paid", "C-001")
    assert ticket.reason == "payment_flag" and "paid twice" in ticket.summary and str(extra.id) in ticket.summary
    assert notices(order_id) == [f"order:{order_id}:paid", f"order:{order_id}:paid_twice:{extra.id}"]
    assert available("CONCHA") == Decimal("28")  # sold once
    assert_ledger_balanced()
    with pytest.raises(payments.RefundRefused):  # the order's own payment is not an extra charge
        payments.refund_extra_charge(payment_provider, original.id, "staff:1")
    refunded = payments.refund_extra_charge(payment_provider, extra.id, "staff:1")
    assert payments.refund_extra_charge(payment_provider, extra.id, "staff:1").id == refunded.id
    assert (refunded.status, refunded.amount, refunded.idempotency_key) == (
        "succeeded",
        Decimal("36.00"),
        f"extra-charge:{extra.id}",
    )
    with new_session() as session:
        given_back = dict(session.execute(select(m.SandboxCharge.id, m.SandboxCharge.refunded)).all())
    assert given_back == {extra.provider_payment_id: Decimal("36.00"), original.provider_payment_id: Decimal("0.00")}
    assert (payment(extra.id).status, payment(original.id).status) == ("refunded", "paid")
    assert order(order_id).payment_status == "paid"  # the order's own payment stands


def test_a_new_charge_after_a_mismatched_one_pays_the_order_and_the_odd_one_stays_flagged(demo):
    order_id = place()
    link = start(order_id)
    assert pay(link.payment_id, amount="35.99") == "amount_mismatch"
    assert pay(link.payment_id) == "paid"  # the customer paid again, the right amount
    with new_session() as session:
        rows = session.execute(
            select(m.Payment.status, m.Payment.flag_reason).where(m.Payment.order_id == order_id).order_by(m.Payment.id)
        ).all()
    assert rows == [("flagged", "amount_mismatch"), ("paid", None)]
    assert (order(order_id).payment_status, order(order_id).ticket_code) == ("paid", "C-001")


# --- the sandbox's webhook outbox ----------------------------------------------------------------


class FlakyBackOffice(SandboxProvider):
    """The sandbox posting its webhooks to a back office that fails ``failures`` times, then verifies and
    applies them as the real endpoint does; what it answered each time is kept."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__("http://bo.test", SECRET, 300)
        self.failures, self.outcomes = failures, []

    def send_webhook(self, body: bytes) -> None:
        if self.failures:
            self.failures -= 1
            self.outcomes.append("503")
            raise ProviderError("the back office answered 503: restarting")
        self.outcomes.append(deliver(body, signed(body)))


def outbox() -> list:
    with new_session() as session:
        return session.execute(
            select(m.SandboxWebhook.status, m.SandboxWebhook.attempts, m.SandboxWebhook.next_attempt_at)
        ).all()


def test_pay_books_the_charge_and_its_webhook_together_and_a_failed_post_is_retried_with_backoff(demo):
    set_clock(lambda: T0)
    order_id = place()
    link = start(order_id)
    charge = record_charge(payment(link.payment_id).provider_link_id, str(order_id), "paid", Decimal("36.00"), "MXN")
    lease = timedelta(seconds=sandbox_webhooks.LEASE_SECONDS)
    assert outbox() == [("pending", 0, T0 + lease)]  # written with the charge; its first attempt is Pay's own
    back_office = FlakyBackOffice(failures=2)
    assert sandbox_webhooks.deliver_due(back_office) == 0 and back_office.outcomes == []  # the loop leaves it
    assert sandbox_webhooks.deliver_due(back_office, charge_id=charge.id) == 0  # what Pay tries at once
    assert outbox() == [("pending", 1, T0 + timedelta(seconds=2))]
    assert sandbox_webhooks.deliver_due(back_office) == 0 and back_office.outcomes == ["503"]  # not due yet
    set_clock(lambda: T0 + timedelta(seconds=2))
    assert sandbox_webhooks.deliver_due(back_office) == 0
    assert outbox() == [("pending", 2, T0 + timedelta(seconds=6))]
    set_clock(lambda: T0 + timedelta(seconds=6))
    assert sandbox_webhooks.deliver_due(back_office) == 1 and back_office.outcomes == ["503", "503", "paid"]
    assert [row[:2] for row in outbox()] == [("delivered", 3)]
    set_clock(lambda: T0 + timedelta(hours=1))
    assert sandbox_webhooks.deliver_due(back_office) == 0  # delivered once
    assert (order(order_id).status, order(order_id).ticket_code) == ("received", "C-001")


def test_a_delivery_that_died_with_its_process_is_retried_after_its_lease_and_pays_once(demo):
    set_clock(lambda: T0)
    order_id = place()
    link = start(order_id)
    charge = record_charge(payment(link.payment_id).provider_link_id, str(order_id), "paid", Decimal("36.00"), "MXN")
    [claimed] = sandbox_webhooks.claim_due(charge_id=charge.id)  # Pay's own attempt
    back_office = FlakyBackOffice()
    back_office.send_webhook(claimed.body)  # the post went through, then the process died before recording it
    assert sandbox_webhooks.claim_due() == sandbox_webhooks.claim_due(charge_id=charge.id) == []  # leased
    set_clock(lambda: T0 + timedelta(seconds=sandbox_webhooks.LEASE_SECONDS))
    assert sandbox_webhooks.deliver_due(back_office) == 1  # at least once: the replay is a duplicate
    assert back_office.outcomes == ["paid", "duplicate"] and [row[:2] for row in outbox()] == [("delivered", 2)]
    with new_session() as session:
        assert session.execute(select(m.Payment.status).where(m.Payment.order_id == order_id)).scalars().all() == [
            "paid"
        ]
    assert notices(order_id) == [f"order:{order_id}:paid"]


def test_a_webhook_nobody_accepts_is_given_up_after_its_attempts_and_logged(demo, caplog):
    set_clock(lambda: T0)
    order_id = place()
    link = start(order_id)
    record_charge(payment(link.payment_id).provider_link_id, str(order_id), "paid", Decimal("36.00"), "MXN")
    down = FlakyBackOffice(failures=sandbox_webhooks.MAX_ATTEMPTS)
    for attempt in range(sandbox_webhooks.MAX_ATTEMPTS):
        set_clock(lambda attempt=attempt: T0 + timedelta(hours=attempt + 1))
        sandbox_webhooks.deliver_due(down)
    assert [row[:2] for row in outbox()] == [("given_up", sandbox_webhooks.MAX_ATTEMPTS)]
    assert "given up" in caplog.text and order(order_id).status == "pending_payment"


# --- reconciliation ------------------------------------------------------------------------------


def test_reconcile_lists_paid_orders_against_the_providers_books_through_the_cli(demo, tmp_path):
    set_clock(lambda: T0)
    ok, mismatch, unpaid, lost = (place(f"centro:whatsapp:+52551000000{n}") for n in range(4))
    links = {order_id: start(order_id) for order_id in (ok, mismatch, unpaid, lost)}
    pay(links[ok].payment_id)
    pay(links[mismatch].payment_id)
    with transaction() as session:  # the provider's books say it took less than Comanda recorded
        session.execute(
            m.SandboxCharge.__table__.update()
            .where(m.SandboxCharge.link_id == payment(links[mismatch].payment_id).provider_link_id)
            .values(amount=Decimal("30.00"))
        )
    webhook(links[lost].payment_id)  # charged at the sandbox, webhook never delivered
    set_clock(None)
    out = tmp_path / "recon.csv"
    env = {**os.environ, "COMANDA_SANDBOX_WEBHOOK_SECRET": SECRET, "COMANDA_PAYMENT_PROVIDER": "sandbox"}
    done = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "comanda"),
            "payments",
            "reconcile",
            "--date",
            "2026-12-01",
            "--store",
            "centro",
            "--csv",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with out.open() as file:
        rows = {int(row["order_id"]): row for row in csv.DictReader(file)}
    assert {order_id: rows[order_id]["status"] for order_id in rows} == {
        ok: "ok",
        mismatch: "amount_mismatch",
        unpaid: "unpaid_link",
        lost: "missing",
    }
    assert rows[mismatch]["ours"] == "36.00" and rows[mismatch]["theirs"] == "30.00"
    assert "3 problems" in done.stdout and "C-001" in done.stdout
    failed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "comanda"), "payments", "reconcile", "--date", "2026-13-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2 and failed.stderr.startswith("error: ") and len(failed.stderr.splitlines()) == 1


# --- low stock -----------------------------------------------------------------------------------


def test_a_sale_down_to_the_reorder_point_opens_one_alert(demo):
    set_on_hand("COCA-600", "14")  # reorder point 12
    pay(start(place(sku="COCA-600", quantity=1)).payment_id)
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.LowStockAlert)).scalar() == 0
    pay(start(place("centro:whatsapp:+525599990000", sku="COCA-600", quantity=1)).payment_id)
    place("centro:whatsapp:+525599990001", method="cash", sku="COCA-600", quantity=1)  # sold at once
    with new_session() as session:
        alert = session.execute(select(m.LowStockAlert)).scalar_one()
        item = session.get(m.StockItem, alert.stock_item_id)
    assert (item.code, alert.store_id, alert.status, alert.on_hand) == ("COCA-600", "centro", "open", Decimal("12"))
    with transaction() as session:
        found = session.get(m.LowStockAlert, alert.id)
        found.status, found.open_key = "resolved", None  # purchasing dealt with it
    place("centro:whatsapp:+525599990002", method="cash", sku="COCA-600", quantity=1)
    with new_session() as session:
        assert session.execute(
            select(m.LowStockAlert.status, m.LowStockAlert.on_hand).order_by(m.LowStockAlert.id)
        ).all() == [("resolved", Decimal("12")), ("open", Decimal("10"))]


def test_events_name_their_payment_or_are_ignored(demo):
    with transaction() as session:
        outcome = payments.apply_event(
            session,
            ProviderEvent(
                provider="sandbox",
                event_id="evt_unknown",
                event_type="payment.succeeded",
                kind="paid",
                order_reference="999",
                link_id="nope",
                payment_id="sbxpay_nope",
                amount=Decimal("1.00"),
                currency="MXN",
            ),
        )
    assert outcome == "ignored"
    with new_session() as session:
        assert json.loads(json.dumps(session.execute(select(m.PaymentEvent.outcome)).scalars().all())) == ["ignored"]
