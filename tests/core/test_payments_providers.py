"""Stripe and Mercado Pago through their official SDKs, against local fake servers that speak the
documented HTTP shapes (Stripe: form-encoded bodies, Bearer key, Idempotency-Key, error objects;
Mercado Pago: JSON bodies, Bearer token, x-idempotency-key), with real signatures both ways."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Dict, Iterator, Optional

import pytest
import stripe
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.errors import ConfigError
from comanda.services import payments
from comanda.services.payment_provider import ProviderError, WebhookRejected
from comanda.services.payments import refunds
from integrations.payments import payment_provider
from tests.helpers.net import free_port
from tests.helpers.payment_fakes import (
    DEEP,
    NESTED,
    STRIPE_WHSEC,
    FakeMercadoPago,
    FakeStripe,
    mp_notification,
    serve_mercadopago,
    serve_stripe,
    stripe_event,
)
from tests.helpers.payments import ANA, order, place
from tests.helpers.payments import payment as payment_row
from tests.helpers.threads import run_together

BEA = "centro:whatsapp:+525599990000"


@pytest.fixture
def fake_stripe(monkeypatch) -> Iterator[FakeStripe]:
    yield from serve_stripe(monkeypatch)


@pytest.fixture
def fake_mercadopago(monkeypatch) -> Iterator[FakeMercadoPago]:
    yield from serve_mercadopago(monkeypatch)


def start_with(order_id: int) -> payments.PaymentInstructions:
    with transaction() as session:
        return payments.start_payment(session, session.get(m.Order, order_id), payment_provider())


def apply(provider, body: bytes, headers: Dict[str, str], query: Optional[Dict[str, str]] = None) -> str:
    event = provider.parse_webhook(body, headers, query or {})
    if event is None:
        return "not acted on"
    with transaction() as session:
        return payments.apply_event(session, event)


def link_id(payment_id: int) -> str:
    with new_session() as session:
        return session.get(m.Payment, payment_id).provider_link_id


# --- Stripe --------------------------------------------------------------------------------------


def test_stripe_card_session_in_mxn_is_paid_once_by_its_signed_webhook(demo, fake_stripe):
    order_id = place(sku="COCA-600", quantity=3)
    link = start_with(order_id)
    session = fake_stripe.sessions[link_id(link.payment_id)]
    sent = session["request"]
    assert link.link_url == session["url"] and session["amount_total"] == 9000 and session["currency"] == "mxn"
    assert (sent["mode"], sent["payment_method_types"], sent["client_reference_id"]) == (
        "payment",
        {"0": "card"},
        str(order_id),
    )
    assert sent["line_items"]["0"]["price_data"]["product_data"]["name"] == "Coca-Cola 600 ml"
    assert int(sent["expires_at"]) >= time.time() + 30 * 60  # Stripe's minimum, though the hold is 15 minutes
    assert link.expires_at < datetime.now(timezone.utc) + timedelta(minutes=16)  # Comanda keeps the hold's
    provider = payment_provider()
    body, headers = stripe_event("checkout.session.completed", fake_stripe.complete(session["id"]))
    assert apply(provider, body, headers) == "paid"
    assert apply(provider, body, headers) == "duplicate"
    assert (order(order_id).status, order(order_id).ticket_code) == ("received", "C-001")
    with new_session() as db:
        assert db.get(m.Payment, link.payment_id).card_funding == "debit"  # for the invoice's FormaPago
    fetched = provider.fetch_payment(session["payment_intent"])
    assert (fetched.status, fetched.amount, fetched.order_reference) == ("paid", Decimal("90.00"), str(order_id))


def test_stripe_oxxo_is_pending_until_the_voucher_is_paid_or_fails(demo, fake_stripe):
    paid_later, never_paid = place(method="oxxo"), place("centro:whatsapp:+525599990000", method="oxxo")
    provider = payment_provider()
    sessions = {o: fake_stripe.sessions[link_id(start_with(o).payment_id)] for o in (paid_later, never_paid)}
    assert sessions[paid_later]["request"]["payment_method_options"] == {"oxxo": {"expires_after_days": "1"}}
    for _order_id, session in sessions.items():
        assert (
            apply(
                provider, *stripe_event("checkout.session.completed", fake_stripe.complete(session["id"], paid=False))
            )
            == "pending"
        )
    assert order(paid_later).status == "pending_payment"
    assert (
        apply(
            provider,
            *stripe_event(
                "checkout.session.async_payment_succeeded", fake_stripe.pay_voucher(sessions[paid_later]["id"])
            ),
        )
        == "paid"
    )
    assert apply(provider, *stripe_event("checkout.session.async_payment_failed", sessions[never_paid])) == "declined"
    assert (order(paid_later).status, order(never_paid).status) == ("received", "pending_payment")
    assert apply(provider, *stripe_event("customer.created", sessions[never_paid])) == "not acted on"


def test_stripe_refuses_forged_tampered_stale_and_unsigned_webhooks(demo, fake_stripe):
    link = start_with(place())
    session = fake_stripe.complete(link_id(link.payment_id))
    provider = payment_provider()
    body, headers = stripe_event("checkout.session.completed", session)
    cases = [
        (body, stripe_event("checkout.session.completed", session, secret="whsec_other")[1], 403),
        (body.replace(b'"amount_total": 3600', b'"amount_total": 360'), headers, 403),
        (body, stripe_event("checkout.session.completed", session, timestamp=int(time.time()) - 301)[1], 403),
        (body, {}, 401),
    ]
    for raw, signed, status in cases:
        with pytest.raises(WebhookRejected) as refused:
            provider.parse_webhook(raw, signed, {})
        assert refused.value.status == status
    with new_session() as session_:
        assert session_.execute(select(m.PaymentEvent)).first() is None


def test_stripe_refunds_expiry_and_listing(demo, fake_stripe):
    paid_id, open_id = place(sku="COCA-600", quantity=2), place("centro:whatsapp:+525599990000")
    provider = payment_provider()
    paid = start_with(paid_id)
    apply(provider, *stripe_event("checkout.session.completed", fake_stripe.complete(link_id(paid.payment_id))))
    first = payments.refund(payment_provider, paid.payment_id, Decimal("30.00"), "warm", "staff:1", "ret:7")
    again = payments.refund(payment_provider, paid.payment_id, Decimal("30.00"), "warm", "staff:1", "ret:7")
    assert first.provider_refund_id == again.provider_refund_id and first.status == "succeeded"
    keys = [r.headers.get("Idempotency-Key") for r in fake_stripe.requests if r.path == "/v1/refunds"]
    assert keys == ["ret:7"]  # the second ask never reached Stripe: the row had succeeded
    with pytest.raises(payments.RefundRefused):
        payments.refund(payment_provider, paid.payment_id, Decimal("30.01"), "too much", "staff:1", "ret:8")
    opened = start_with(open_id)
    assert provider.expire_link(link_id(opened.payment_id)) is True
    assert provider.expire_link(link_id(opened.payment_id)) is False  # expired already
    now = datetime.now(timezone.utc)
    listed = {p.link_id: p for p in provider.list_payments(now - timedelta(hours=1), now + timedelta(hours=1))}
    assert listed[link_id(paid.payment_id)].status == "paid" and listed[link_id(opened.payment_id)].status == "declined"


def test_stripe_refuses_a_body_that_is_not_utf8_or_not_an_event(demo, fake_stripe):
    provider = payment_provider()
    garbage = b"\xff\xfe not text"
    header = stripe.WebhookSignature.generate_signature_header("anything", STRIPE_WHSEC)
    with pytest.raises(WebhookRejected) as refused:
        provider.parse_webhook(garbage, {"Stripe-Signature": header}, {})
    assert refused.value.status == 403
    body = json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": {"object": "cs_1"}}).encode()
    signed = {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_WHSEC)}
    with pytest.raises(WebhookRejected) as refused:
        provider.parse_webhook(body, signed, {})
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "fields, literals",
    [
        ({"amount_total": 3600.5}, None),  # half a centavo
        ({"amount_total": "3600"}, None),
        ({"amount_total": -3600}, None),
        ({}, {"amount_total": "Infinity"}),
        ({}, {"amount_total": "1e999999"}),
        ({}, {"amount_total": "NaN"}),
        ({}, {"metadata": DEEP}),
        ({}, {"metadata": NESTED}),
    ],
)
def test_stripe_refuses_a_signed_event_that_is_not_money_or_nested_too_deep(demo, fake_stripe, fields, literals):
    link = start_with(place())
    session = fake_stripe.complete(link_id(link.payment_id))
    provider = payment_provider()
    assert provider.parse_webhook(*stripe_event("checkout.session.completed", session), {}) is not None
    body, headers = stripe_event("checkout.session.completed", {**session, **fields}, literals=literals)
    with pytest.raises(WebhookRejected) as refused:
        provider.parse_webhook(body, headers, {})
    assert refused.value.status == 400
    assert order(link.order_id).status == "pending_payment"


def test_stripe_with_a_wrong_key_is_a_provider_error(demo, fake_stripe, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_wrong")
    with pytest.raises(ProviderError) as failed:
        start_with(place())
    assert "sk_test_wrong" not in failed.value.message and "401" in failed.value.message


def paid_with_stripe(fake: FakeStripe, conversation: str, quantity: int = 2) -> payments.PaymentInstructions:
    link = start_with(place(conversation, sku="COCA-600", quantity=quantity))
    session = fake.complete(link_id(link.payment_id))
    assert apply(payment_provider(), *stripe_event("checkout.session.completed", session)) == "paid"
    return link


def refund_rows() -> list:
    with new_session() as session:
        return session.execute(select(m.Refund.idempotency_key, m.Refund.status).order_by(m.Refund.id)).all()


def test_stripe_refund_webhooks_settle_pending_refunds_once_and_a_failure_goes_to_staff(demo, fake_stripe):
    ana, bea = paid_with_stripe(fake_stripe, ANA), paid_with_stripe(fake_stripe, BEA)
    provider = payment_provider()
    fake_stripe.refund_status = "pending"  # Stripe settles these later
    first = payments.refund(payment_provider, ana.payment_id, Decimal("60.00"), "warm", "staff:1", "ret:a")
    second = payments.refund(payment_provider, bea.payment_id, Decimal("30.00"), "one warm", "staff:1", "ret:b")
    assert refund_rows() == [("ret:a", "pending"), ("ret:b", "pending")]
    assert payment_row(ana.payment_id).status == "paid"  # nothing given back yet
    done = stripe_event("refund.updated", fake_stripe.settle_refund(first.provider_refund_id, "succeeded"))
    assert apply(provider, *done) == "refund_succeeded"
    assert apply(provider, *done) == "duplicate"  # Stripe's replay
    intent = payment_row(ana.payment_id).provider_payment_id
    assert apply(provider, *stripe_event("charge.refunded", fake_stripe.charge_of(intent))) == "duplicate"  # known
    bounced = fake_stripe.settle_refund(second.provider_refund_id, "failed", "expired_or_canceled_card")
    assert apply(provider, *stripe_event("refund.failed", bounced)) == "refund_failed"
    assert apply(provider, *stripe_event("refund.updated", bounced)) == "duplicate"  # the same news again
    assert refund_rows() == [("ret:a", "succeeded"), ("ret:b", "failed")]
    assert (payment_row(ana.payment_id).status, order(ana.order_id).payment_status) == ("refunded", "refunded")
    assert (payment_row(bea.payment_id).status, order(bea.order_id).payment_status) == ("paid", "paid")
    with new_session() as session:
        tickets = session.execute(select(m.HandoffTicket.conversation_id, m.HandoffTicket.reason)).all()
        summary = session.execute(select(m.HandoffTicket.summary)).scalar_one()
        settled = session.execute(
            select(m.AuditEvent.action).where(m.AuditEvent.action.in_(("refund.succeeded", "refund.failed")))
        ).scalars()
        assert sorted(settled) == ["refund.failed", "refund.succeeded"]  # each move once
    assert tickets == [(BEA, "refund_failed")] and "expired_or_canceled_card" in summary
    dashboard = {
        "id": "re_dashboard",
        "object": "refund",
        "amount": 100,
        "payment_intent": intent,
        "status": "succeeded",
    }
    assert apply(provider, *stripe_event("refund.created", dashboard)) == "ignored"  # not one Comanda made


def test_a_stripe_refund_webhook_that_overtakes_the_refunds_answer_is_matched_by_its_key(demo, fake_stripe):
    link = paid_with_stripe(fake_stripe, ANA)
    fake_stripe.refund_status = "pending"
    asked = payments.refund(payment_provider, link.payment_id, Decimal("30.00"), "warm", "staff:1", "ret:early")
    with transaction() as session:  # as if Stripe's webhook came before Comanda recorded Stripe's answer
        session.get(m.Refund, asked.id).provider_refund_id = None
    done = stripe_event("refund.updated", fake_stripe.settle_refund(asked.provider_refund_id, "succeeded"))
    assert apply(payment_provider(), *done) == "refund_succeeded"
    with transaction() as session:  # the answer, recorded late ("pending"), does not undo what Stripe said since
        refunds._finish_refund(session, asked.id, "pending", asked.provider_refund_id, "staff:1")
    with new_session() as session:
        row = session.get(m.Refund, asked.id)
        assert (row.status, row.provider_refund_id) == ("succeeded", asked.provider_refund_id)
    assert payment_row(link.payment_id).status == "partially_refunded"


# --- Mercado Pago --------------------------------------------------------------------------------


def test_mercadopago_preference_is_paid_once_after_fetching_the_payment(demo, fake_mercadopago):
    order_id = place(sku="COCA-600", quantity=2)
    link = start_with(order_id)
    preference = fake_mercadopago.preferences[link_id(link.payment_id)]
    assert link.link_url == preference["init_point"] and preference["external_reference"] == str(order_id)
    assert preference["items"] == [
        {"title": "Coca-Cola 600 ml", "quantity": 2, "unit_price": 30.0, "currency_id": "MXN"}
    ]
    assert preference["expires"] is True and {"id": "ticket"} in preference["payment_methods"]["excluded_payment_types"]
    assert abs(datetime.fromisoformat(preference["expiration_date_to"]) - link.expires_at) < timedelta(milliseconds=1)
    provider = payment_provider()
    payment_id = fake_mercadopago.pay(preference["id"])
    notification = mp_notification(payment_id)
    assert apply(provider, *notification) == "paid"
    assert apply(provider, *mp_notification(payment_id)) == "duplicate"  # a second notification, same state
    assert (order(order_id).status, order(order_id).ticket_code) == ("received", "C-001")
    with new_session() as session:
        assert session.get(m.Payment, link.payment_id).card_funding == "debit"
    fetches = [r.path for r in fake_mercadopago.requests if r.method == "GET"]
    assert fetches == [f"/v1/payments/{payment_id}"] * 2  # the notification itself is never trusted


def test_mercadopago_refuses_forged_tampered_stale_and_unsigned_notifications(demo, fake_mercadopago):
    link = start_with(place())
    provider = payment_provider()
    payment_id = fake_mercadopago.pay(link_id(link.payment_id))
    body, headers, query = mp_notification(payment_id)
    cases = [
        (mp_notification(payment_id, secret="other")[1], query, 403),
        (headers, {**query, "data.id": "999"}, 403),  # the signature is for another payment
        (mp_notification(payment_id, ts=int(time.time()) - 301)[1], query, 403),
        ({}, query, 401),
    ]
    for signed, asked, status in cases:
        with pytest.raises(WebhookRejected) as refused:
            provider.parse_webhook(body, signed, asked)
        assert refused.value.status == status
    assert order(link.order_id).status == "pending_payment"
    merchant_order = mp_notification("777")
    assert (
        provider.parse_webhook(merchant_order[0], merchant_order[1], {"data.id": "777", "type": "merchant_order"})
        is None
    )


def test_mercadopago_amount_mismatch_rejection_refund_and_listing(demo, fake_mercadopago):
    short, rejected = place(sku="COCA-600", quantity=2), place("centro:whatsapp:+525599990000")
    provider = payment_provider()
    links = {o: start_with(o) for o in (short, rejected)}
    assert (
        apply(provider, *mp_notification(fake_mercadopago.pay(link_id(links[short].payment_id), amount=59.0)))
        == "amount_mismatch"
    )
    assert (
        apply(provider, *mp_notification(fake_mercadopago.pay(link_id(links[rejected].payment_id), status="rejected")))
        == "declined"
    )
    refund = payments.refund(
        payment_provider, links[short].payment_id, Decimal("59.00"), "wrong amount", "staff:1", "flag:short"
    )
    assert refund.status == "succeeded"
    keys = [r.headers.get("x-idempotency-key") for r in fake_mercadopago.requests if r.path.endswith("/refunds")]
    assert keys == ["flag:short"]
    assert provider.expire_link(link_id(links[rejected].payment_id)) is True
    assert provider.expire_link("123456789-404") is False
    now = datetime.now(timezone.utc)
    listed = provider.list_payments(now - timedelta(hours=1), now + timedelta(hours=1))
    assert sorted(p.status for p in listed) == ["declined", "refunded"]  # the short payment was given back


def test_mercadopago_a_second_payment_for_a_paid_order_is_flagged_not_dropped(demo, fake_mercadopago):
    """Mercado Pago's notifications name the order, not the preference: the customer who paid the old
    link and the new one paid twice, and the second payment is flagged for a refund."""
    order_id = place()
    first = start_with(order_id)
    with transaction() as session:
        second = payments.new_link(session, order_id, payment_provider())
    provider = payment_provider()
    assert apply(provider, *mp_notification(fake_mercadopago.pay(link_id(first.payment_id)))) == "paid"
    assert apply(provider, *mp_notification(fake_mercadopago.pay(link_id(second.payment_id)))) == "already_paid"
    with new_session() as session:
        rows = session.execute(
            select(m.Payment.status, m.Payment.flag_reason).where(m.Payment.order_id == order_id).order_by(m.Payment.id)
        ).all()
    assert rows == [("flagged", "already_paid"), ("paid", None)]  # the notification named no link: the open one
    assert (order(order_id).payment_status, order(order_id).ticket_code) == ("paid", "C-001")


def test_mercadopago_two_approved_payments_on_one_preference_are_a_second_charge(demo, fake_mercadopago):
    """Mercado Pago approves two payments on one preference and notifies both at the same moment: one
    sells the order, the other is flagged ``already_paid`` (not dropped as a duplicate), and staff refund
    it in one step, with Mercado Pago's mandatory idempotency key."""
    order_id = place()
    link = start_with(order_id)
    provider = payment_provider()
    paid_ids = [fake_mercadopago.pay(link_id(link.payment_id)) for _ in range(2)]
    outcomes = run_together(2, lambda n: apply(provider, *mp_notification(paid_ids[n])))
    assert sorted(outcomes) == ["already_paid", "paid"], outcomes
    for paid_id in paid_ids:  # Mercado Pago notifies again: the same payment, the same state
        assert apply(provider, *mp_notification(paid_id)) == "duplicate"
    with new_session() as session:
        rows = session.execute(select(m.Payment).where(m.Payment.order_id == order_id).order_by(m.Payment.id))
        original, extra = rows.scalars().all()
        ticket = session.execute(select(m.HandoffTicket)).scalar_one()
    assert (original.status, extra.status, extra.flag_reason) == ("paid", "flagged", "already_paid")
    assert {original.provider_payment_id, extra.provider_payment_id} == set(paid_ids)
    assert ticket.reason == "payment_flag" and "paid twice" in ticket.summary
    assert (order(order_id).payment_status, order(order_id).ticket_code) == ("paid", "C-001")
    refunded = payments.refund_extra_charge(payment_provider, extra.id, "staff:1")
    assert payments.refund_extra_charge(payment_provider, extra.id, "staff:1").id == refunded.id
    assert (refunded.status, refunded.amount) == ("succeeded", Decimal("36.00"))
    asked = [(r.path, r.headers.get("x-idempotency-key")) for r in fake_mercadopago.requests if "/refunds" in r.path]
    assert asked == [(f"/v1/payments/{extra.provider_payment_id}/refunds", f"extra-charge:{extra.id}")]
    assert order(order_id).payment_status == "paid"


def test_mercadopago_unreachable_is_a_provider_error_and_a_signed_non_object_is_refused(
    demo, fake_mercadopago, monkeypatch
):
    link = start_with(place())
    provider = payment_provider()
    body, headers, query = mp_notification("1000001")
    with pytest.raises(WebhookRejected) as refused:
        provider.parse_webhook(b"[1, 2]", headers, query)
    assert refused.value.status == 400
    monkeypatch.setenv("MERCADOPAGO_API_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    down = payment_provider()
    for call in (
        lambda: down.expire_link(link_id(link.payment_id)),
        lambda: down.fetch_payment("1000001"),
        lambda: down.parse_webhook(body, headers, query),
    ):
        with pytest.raises(ProviderError):
            call()
    with pytest.raises(ProviderError):
        start_with(place("centro:whatsapp:+525599990000"))


@pytest.mark.parametrize("body", [b'{"type": "payment", "data": ' + DEEP.encode() + b"}", b'{"id": Infinity}'])
def test_mercadopago_refuses_a_signed_notification_that_is_not_json_it_can_read(demo, fake_mercadopago, body):
    link = start_with(place())
    _, headers, query = mp_notification(fake_mercadopago.pay(link_id(link.payment_id)))
    with pytest.raises(WebhookRejected) as refused:
        payment_provider().parse_webhook(body, headers, query)
    assert refused.value.status == 400
    assert order(link.order_id).status == "pending_payment"


@pytest.mark.parametrize("amount", [36.001, float("inf"), float("nan"), -36.0, 1e16])
def test_mercadopago_refuses_a_payment_whose_amount_is_not_money(demo, fake_mercadopago, amount):
    link = start_with(place())
    notification = mp_notification(fake_mercadopago.pay(link_id(link.payment_id), amount=amount))
    with pytest.raises(WebhookRejected) as refused:
        payment_provider().parse_webhook(*notification)
    assert refused.value.status == 400 and "not money" in refused.value.message
    assert order(link.order_id).status == "pending_payment"


def paid_with_mercadopago(fake: FakeMercadoPago, conversation: str) -> payments.PaymentInstructions:
    link = start_with(place(conversation, sku="COCA-600", quantity=2))
    assert apply(payment_provider(), *mp_notification(fake.pay(link_id(link.payment_id)))) == "paid"
    return link


def test_mercadopago_refund_notifications_settle_pending_refunds_once(demo, fake_mercadopago):
    ana, bea = paid_with_mercadopago(fake_mercadopago, ANA), paid_with_mercadopago(fake_mercadopago, BEA)
    provider = payment_provider()
    fake_mercadopago.refund_status = "in_process"
    whole = payments.refund(payment_provider, ana.payment_id, Decimal("60.00"), "warm", "staff:1", "ret:a")
    part = payments.refund(payment_provider, bea.payment_id, Decimal("30.00"), "one warm", "staff:1", "ret:b")
    assert (whole.status, part.status) == ("pending", "pending")
    ana_mp, bea_mp = (payment_row(link.payment_id).provider_payment_id for link in (ana, bea))
    assert apply(provider, *mp_notification(ana_mp)) == "duplicate"  # in process: nothing new
    fake_mercadopago.settle_refund(int(whole.provider_refund_id), "approved")
    assert apply(provider, *mp_notification(ana_mp)) == "refund_succeeded"
    assert apply(provider, *mp_notification(ana_mp)) == "duplicate"  # notified again for the same state
    fake_mercadopago.settle_refund(int(part.provider_refund_id), "rejected")
    assert apply(provider, *mp_notification(bea_mp)) == "refund_failed"
    assert apply(provider, *mp_notification(bea_mp)) == "duplicate"
    assert refund_rows() == [("ret:a", "succeeded"), ("ret:b", "failed")]
    assert (payment_row(ana.payment_id).status, order(ana.order_id).payment_status) == ("refunded", "refunded")
    assert (payment_row(bea.payment_id).status, order(bea.order_id).payment_status) == ("paid", "paid")
    with new_session() as session:
        assert session.execute(select(m.HandoffTicket.conversation_id, m.HandoffTicket.reason)).all() == [
            (BEA, "refund_failed")
        ]


def test_a_mercadopago_refund_notification_before_comanda_recorded_the_refund_is_asked_again(demo, fake_mercadopago):
    link = paid_with_mercadopago(fake_mercadopago, ANA)
    fake_mercadopago.refund_status = "in_process"
    asked = payments.refund(payment_provider, link.payment_id, Decimal("30.00"), "warm", "staff:1", "ret:early")
    with transaction() as session:  # Mercado Pago answered; Comanda has not recorded the answer yet
        session.get(m.Refund, asked.id).provider_refund_id = None
    fake_mercadopago.settle_refund(int(asked.provider_refund_id), "approved")
    with pytest.raises(payments.RetryLater):
        apply(payment_provider(), *mp_notification(payment_row(link.payment_id).provider_payment_id))
    with new_session() as session:
        assert (
            session.execute(select(m.PaymentEvent.outcome).where(m.PaymentEvent.event_type.like("%refund%"))).all()
            == []
        )
        assert session.get(m.Refund, asked.id).status == "pending"


def test_providers_without_credentials_are_a_config_error(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", "stripe")
    with pytest.raises(ConfigError):
        payment_provider()
    monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", "paypal")
    with pytest.raises(ConfigError):
        payment_provider()
