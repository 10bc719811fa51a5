"""Stripe and Mercado Pago through their official SDKs, against local fake servers that speak the
documented HTTP shapes (Stripe: form-encoded bodies, Bearer key, Idempotency-Key, error objects;
Mercado Pago: JSON bodies, Bearer token, x-idempotency-key), with real signatures both ways."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.errors import ConfigError
from comanda.services import payments
from comanda.services.payment_provider import ProviderError, WebhookRejected
from integrations.payments import payment_provider
from tests.conftest import free_port
from tests.core.test_payments import order, place

STRIPE_KEY, STRIPE_WHSEC = "sk_test_fake_key", "whsec_fake_secret"
MP_TOKEN, MP_SECRET = "TEST-fake-access-token", "fake-mp-signature-secret"


class FakeServer:
    """A threaded HTTP server whose handler calls ``self.handle(method, path, query, headers, body)``."""

    def __init__(self) -> None:
        fake = self
        self.lock = threading.Lock()
        self.requests: List[Tuple[str, str, Dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                with fake.lock:
                    fake.requests.append((self.command, url.path, dict(self.headers), body))
                    status, answer = fake.handle(self.command, url.path, dict(parse_qsl(url.query)), self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, method: str, path: str, query: Dict[str, str], headers: Any, body: bytes) -> Tuple[int, Any]:
        raise NotImplementedError


def nested_form(body: bytes) -> Dict[str, Any]:
    """Stripe's form encoding (``line_items[0][price_data][currency]=mxn``) as nested dicts."""
    root: Dict[str, Any] = {}
    for key, value in parse_qsl(body.decode()):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


class FakeStripe(FakeServer):
    def __init__(self) -> None:
        self.sessions: Dict[str, Dict[str, Any]] = {}
        self.intents: Dict[str, Dict[str, Any]] = {}
        self.refunds: Dict[str, Dict[str, Any]] = {}  # by idempotency key
        self.ids = itertools.count(1)
        super().__init__()

    @staticmethod
    def error(status: int, message: str, kind: str = "invalid_request_error") -> Tuple[int, Any]:
        return status, {"error": {"type": kind, "message": message}}

    def handle(self, method, path, query, headers, body):
        if headers.get("Authorization") != f"Bearer {STRIPE_KEY}":
            return self.error(401, "Invalid API Key provided", "authentication_error")
        form = nested_form(body) if method == "POST" else {}
        if method == "POST" and path == "/v1/checkout/sessions":
            return self.create_session(form)
        if method == "GET" and path == "/v1/checkout/sessions":
            low, high = int(query["created[gte]"]), int(query["created[lt]"])
            found = [s for s in self.sessions.values() if low <= s["created"] < high]
            return 200, {"object": "list", "data": found, "has_more": False, "url": "/v1/checkout/sessions"}
        expire = re.fullmatch(r"/v1/checkout/sessions/(cs_\w+)/expire", path)
        if method == "POST" and expire:
            session = self.sessions.get(expire.group(1))
            if session is None or session["status"] != "open":
                return self.error(400, "Only Checkout Sessions with a status of open can be expired.")
            session["status"] = "expired"
            return 200, session
        intent = re.fullmatch(r"/v1/payment_intents/(pi_\w+)", path)
        if method == "GET" and intent and intent.group(1) in self.intents:
            found = self.intents[intent.group(1)]
            charge = {
                "id": f"ch_{found['id']}",
                "object": "charge",
                "payment_method_details": {"type": "card", "card": {"funding": "debit"}},
            }
            return 200, {
                **found,
                "latest_charge": charge if query.get("expand[0]") == "latest_charge" else charge["id"],
            }
        if method == "POST" and path == "/v1/refunds":
            return self.refund(form, headers.get("Idempotency-Key"))
        return self.error(404, f"Unrecognized request URL ({method}: {path})")

    def create_session(self, form: Dict[str, Any]) -> Tuple[int, Any]:
        now = int(time.time())
        if int(form["expires_at"]) < now + 30 * 60:
            return self.error(
                400, "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation."
            )
        lines = [form["line_items"][key] for key in sorted(form["line_items"], key=int)]
        session_id = f"cs_test_{next(self.ids)}"
        self.sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "amount_total": sum(int(cl["price_data"]["unit_amount"]) * int(cl["quantity"]) for cl in lines),
            "currency": lines[0]["price_data"]["currency"],
            "client_reference_id": form["client_reference_id"],
            "payment_status": "unpaid",
            "status": "open",
            "expires_at": int(form["expires_at"]),
            "created": now,
            "payment_intent": None,
            "metadata": form.get("metadata", {}),
            "mode": form["mode"],
            "payment_method_types": list(form["payment_method_types"].values()),
            "request": form,
        }
        return 200, self.sessions[session_id]

    def refund(self, form: Dict[str, Any], key: Optional[str]) -> Tuple[int, Any]:
        if key in self.refunds:
            return 200, self.refunds[key]
        intent = self.intents.get(form.get("payment_intent"))
        if intent is None:
            return self.error(400, "No such payment_intent")
        amount = int(form["amount"])
        if amount > intent["amount_received"] - intent["refunded"]:
            return self.error(400, "Refund amount is greater than the unrefunded amount")
        intent["refunded"] += amount
        self.refunds[key] = {
            "id": f"re_{next(self.ids)}",
            "object": "refund",
            "amount": amount,
            "payment_intent": intent["id"],
            "status": "succeeded",
        }
        return 200, self.refunds[key]

    def complete(self, session_id: str, paid: bool = True) -> Dict[str, Any]:
        """The customer finished checkout: card paid, or an OXXO voucher issued (unpaid)."""
        session = self.sessions[session_id]
        intent_id = f"pi_test_{next(self.ids)}"
        self.intents[intent_id] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": session["amount_total"] if paid else 0,
            "refunded": 0,
            "currency": session["currency"],
            "status": "succeeded" if paid else "requires_action",
            "created": int(time.time()),
            "metadata": session["metadata"],
        }
        session.update(status="complete", payment_status="paid" if paid else "unpaid", payment_intent=intent_id)
        return session

    def pay_voucher(self, session_id: str) -> Dict[str, Any]:
        session = self.sessions[session_id]
        intent = self.intents[session["payment_intent"]]
        intent.update(status="succeeded", amount_received=intent["amount"])
        session["payment_status"] = "paid"
        return session


def stripe_event(
    event_type: str, session: Dict[str, Any], secret: str = STRIPE_WHSEC, timestamp: Optional[int] = None
) -> Tuple[bytes, Dict[str, str]]:
    """A webhook as Stripe sends it: the event JSON and its Stripe-Signature over the exact bytes."""
    shown = {k: v for k, v in session.items() if k != "request"}
    body = json.dumps(
        {
            "id": f"evt_{hashlib.sha1(f'{event_type}{session}'.encode()).hexdigest()[:20]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": shown},
        }
    ).encode()
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)
    return body, {"Stripe-Signature": header}


class FakeMercadoPago(FakeServer):
    def __init__(self) -> None:
        self.preferences: Dict[str, Dict[str, Any]] = {}
        self.payments: Dict[str, Dict[str, Any]] = {}
        self.refunds: Dict[str, Dict[str, Any]] = {}  # by idempotency key
        self.ids = itertools.count(1_000_001)
        super().__init__()

    def handle(self, method, path, query, headers, body):
        if headers.get("Authorization") != f"Bearer {MP_TOKEN}":
            return 401, {"message": "invalid access token", "error": "unauthorized", "status": 401}
        data = json.loads(body) if body else {}
        if method == "POST" and path == "/checkout/preferences":
            pref_id = f"123456789-{next(self.ids)}"
            self.preferences[pref_id] = {
                **data,
                "id": pref_id,
                "init_point": f"https://www.mercadopago.test/checkout/v1/redirect?pref_id={pref_id}",
            }
            return 201, self.preferences[pref_id]
        preference = re.fullmatch(r"/checkout/preferences/([\w-]+)", path)
        if method == "PUT" and preference:
            if preference.group(1) not in self.preferences:
                return 404, {"message": "preference not found", "status": 404}
            self.preferences[preference.group(1)].update(data)
            return 200, self.preferences[preference.group(1)]
        if method == "GET" and path == "/v1/payments/search":
            low, high = (datetime.fromisoformat(query[key]) for key in ("begin_date", "end_date"))
            found = [p for p in self.payments.values() if low <= datetime.fromisoformat(p["date_created"]) <= high]
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 30))
            return 200, {
                "results": found[offset : offset + limit],
                "paging": {"total": len(found), "limit": limit, "offset": offset},
            }
        payment = re.fullmatch(r"/v1/payments/(\d+)(/refunds)?", path)
        if payment and payment.group(1) in self.payments:
            found = self.payments[payment.group(1)]
            if method == "GET" and not payment.group(2):
                return 200, found
            if method == "POST" and payment.group(2):
                key = headers.get("x-idempotency-key")
                if key not in self.refunds:
                    self.refunds[key] = {
                        "id": next(self.ids),
                        "payment_id": found["id"],
                        "amount": data["amount"],
                        "status": "approved",
                    }
                return 201, self.refunds[key]
        return 404, {"message": "resource not found", "status": 404}

    def pay(self, preference_id: str, status: str = "approved", amount: Optional[float] = None) -> str:
        """The buyer paid (or was rejected) in Checkout Pro: a payment exists, the notification follows."""
        preference = self.preferences[preference_id]
        payment_id = str(next(self.ids))
        self.payments[payment_id] = {
            "id": int(payment_id),
            "status": status,
            "external_reference": preference["external_reference"],
            "transaction_amount": amount
            if amount is not None
            else sum(i["unit_price"] * i["quantity"] for i in preference["items"]),
            "currency_id": "MXN",
            "payment_type_id": "debit_card",
            "date_created": datetime.now(timezone(timedelta(hours=-6))).isoformat(timespec="milliseconds"),
        }
        return payment_id


def mp_notification(
    payment_id: str, secret: str = MP_SECRET, ts: Optional[int] = None, signed_id: Optional[str] = None
) -> Tuple[bytes, Dict[str, str], Dict[str, str]]:
    """A webhook as Mercado Pago sends it: body, headers with x-signature and x-request-id, and the query."""
    request_id = f"req-{payment_id}-{time.monotonic_ns()}"
    ts = ts if ts is not None else int(time.time())
    manifest = f"id:{signed_id or payment_id};request-id:{request_id};ts:{ts};"
    digest = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    body = json.dumps(
        {
            "id": 12345678,
            "live_mode": False,
            "type": "payment",
            "action": "payment.updated",
            "api_version": "v1",
            "data": {"id": payment_id},
        }
    ).encode()
    return (
        body,
        {"x-signature": f"ts={ts},v1={digest}", "x-request-id": request_id},
        {"data.id": payment_id, "type": "payment"},
    )


def serving(fake: FakeServer, monkeypatch, provider: str, settings: Dict[str, str]) -> Iterator[Any]:
    """The fake, with Comanda's settings pointing the provider at it, closed after the test."""
    monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", provider)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    yield fake
    fake.close()


@pytest.fixture
def fake_stripe(monkeypatch) -> Iterator[FakeStripe]:
    fake = FakeStripe()
    yield from serving(
        fake,
        monkeypatch,
        "stripe",
        {"STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_WEBHOOK_SECRET": STRIPE_WHSEC, "STRIPE_API_URL": fake.url},
    )


@pytest.fixture
def fake_mercadopago(monkeypatch) -> Iterator[FakeMercadoPago]:
    fake = FakeMercadoPago()
    yield from serving(
        fake,
        monkeypatch,
        "mercadopago",
        {
            "MERCADOPAGO_ACCESS_TOKEN": MP_TOKEN,
            "MERCADOPAGO_WEBHOOK_SECRET": MP_SECRET,
            "MERCADOPAGO_API_URL": fake.url,
        },
    )


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
    keys = [
        headers.get("Idempotency-Key") for method, path, headers, _ in fake_stripe.requests if path == "/v1/refunds"
    ]
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


def test_stripe_with_a_wrong_key_is_a_provider_error(demo, fake_stripe, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_wrong")
    with pytest.raises(ProviderError) as failed:
        start_with(place())
    assert "sk_test_wrong" not in failed.value.message and "401" in failed.value.message


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
    fetches = [path for method, path, _, _ in fake_mercadopago.requests if method == "GET"]
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
    keys = [h.get("x-idempotency-key") for method, path, h, _ in fake_mercadopago.requests if path.endswith("/refunds")]
    assert keys == ["flag:short"]
    assert provider.expire_link(link_id(links[rejected].payment_id)) is True
    assert provider.expire_link("123456789-404") is False
    now = datetime.now(timezone.utc)
    listed = provider.list_payments(now - timedelta(hours=1), now + timedelta(hours=1))
    assert sorted(p.status for p in listed) == ["declined", "paid"]


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


def test_providers_without_credentials_are_a_config_error(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", "stripe")
    with pytest.raises(ConfigError):
        payment_provider()
    monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", "paypal")
    with pytest.raises(ConfigError):
        payment_provider()
