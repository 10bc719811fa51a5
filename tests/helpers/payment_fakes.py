"""Local fake Stripe and Mercado Pago servers that speak the documented HTTP shapes (Stripe: form-encoded
bodies, Bearer key, Idempotency-Key, error objects; Mercado Pago: JSON bodies, Bearer token,
x-idempotency-key), webhooks signed as each provider signs them, and fixtures pointing Comanda at them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import parse_qsl

import stripe

from tests.helpers.fake_http import Answer, FakeHTTP, Request

STRIPE_KEY, STRIPE_WHSEC = "sk_test_fake_key", "whsec_fake_secret"
MP_TOKEN, MP_SECRET = "TEST-fake-access-token", "fake-mp-signature-secret"


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


class FakeStripe(FakeHTTP):
    def __init__(self) -> None:
        self.sessions: Dict[str, Dict[str, Any]] = {}
        self.intents: Dict[str, Dict[str, Any]] = {}
        self.refunds: Dict[str, Dict[str, Any]] = {}  # by idempotency key
        self.refund_status = "succeeded"  # what a new refund is: "pending" for one that settles later
        self.ids = itertools.count(1)
        super().__init__()

    @staticmethod
    def error(status: int, message: str, kind: str = "invalid_request_error") -> Tuple[int, Any]:
        return status, {"error": {"type": kind, "message": message}}

    def respond(self, request: Request) -> Answer:
        method, path, query, headers, body = request.method, request.path, request.params, request.headers, request.body
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
        if method == "GET" and path == "/v1/refunds":
            found = [r for r in self.refunds.values() if r["payment_intent"] == query.get("payment_intent")]
            return 200, {"object": "list", "data": found, "has_more": False, "url": "/v1/refunds"}
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
            "currency": intent["currency"],
            "charge": f"ch_{intent['id']}",
            "payment_intent": intent["id"],
            "metadata": form.get("metadata", {}),
            "status": self.refund_status,
            "failure_reason": None,
        }
        return 200, self.refunds[key]

    def settle_refund(self, refund_id: str, status: str, failure_reason: Optional[str] = None) -> Dict[str, Any]:
        """Stripe finishes a refund later (or a card refund bounces): the refund object as it is now."""
        refund = next(r for r in self.refunds.values() if r["id"] == refund_id)
        refund.update(status=status, failure_reason=failure_reason)
        return refund

    def charge_of(self, intent_id: str) -> Dict[str, Any]:
        """The charge a ``charge.refunded`` event carries (its refunds are not included, as in Stripe's API)."""
        intent = self.intents[intent_id]
        return {
            "id": f"ch_{intent_id}",
            "object": "charge",
            "payment_intent": intent_id,
            "amount": intent["amount_received"],
            "amount_refunded": intent["refunded"],
            "refunded": intent["refunded"] >= intent["amount_received"],
        }

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
    event_type: str,
    session: Dict[str, Any],
    secret: str = STRIPE_WHSEC,
    timestamp: Optional[int] = None,
    literals: Optional[Dict[str, str]] = None,
) -> Tuple[bytes, Dict[str, str]]:
    """A webhook as Stripe sends it: the event JSON and its Stripe-Signature over the exact bytes.
    ``literals`` puts raw JSON text (``Infinity``, deep nesting) in the object's fields of those names."""
    shown = {k: v for k, v in session.items() if k != "request"}
    shown.update({name: f"@{name}@" for name in literals or {}})
    text = json.dumps(
        {
            "id": f"evt_{hashlib.sha1(f'{event_type}{session}'.encode()).hexdigest()[:20]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": shown},
        }
    )
    for name, literal in (literals or {}).items():
        text = text.replace(f'"@{name}@"', literal)
    header = stripe.WebhookSignature.generate_signature_header(text, secret, timestamp)
    return text.encode(), {"Stripe-Signature": header}


DEEP = "[" * 5000 + "]" * 5000  # past json's recursion limit
NESTED = "[" * 100 + "]" * 100  # within it, far deeper than any provider's event


class FakeMercadoPago(FakeHTTP):
    def __init__(self) -> None:
        self.preferences: Dict[str, Dict[str, Any]] = {}
        self.payments: Dict[str, Dict[str, Any]] = {}
        self.refunds: Dict[str, Dict[str, Any]] = {}  # by idempotency key
        self.refund_status = "approved"  # what a new refund is: "in_process" for one that settles later
        self.ids = itertools.count(1_000_001)
        super().__init__()

    def respond(self, request: Request) -> Answer:
        method, path, query, headers, body = request.method, request.path, request.params, request.headers, request.body
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
                        "status": self.refund_status,
                    }
                    found.setdefault("refunds", []).append(self.refunds[key])
                    self._restate(found)
                return 201, self.refunds[key]
        return 404, {"message": "resource not found", "status": 404}

    def settle_refund(self, refund_id: int, status: str) -> None:
        """Mercado Pago finishes a refund (approved) or gives up on it (rejected); a notification follows."""
        for payment in self.payments.values():
            for refund in payment.get("refunds", []):
                if refund["id"] == refund_id:
                    refund["status"] = status
                    self._restate(payment)

    @staticmethod
    def _restate(payment: Dict[str, Any]) -> None:
        """A payment whose approved refunds add up to it is ``refunded``; partially, ``approved`` still."""
        given_back = sum(r["amount"] for r in payment.get("refunds", []) if r["status"] == "approved")
        payment["transaction_amount_refunded"] = given_back
        if payment["status"] in ("approved", "refunded"):
            whole = given_back >= payment["transaction_amount"]
            payment["status"] = "refunded" if whole else "approved"
            payment["status_detail"] = "refunded" if whole else ("partially_refunded" if given_back else "accredited")

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


def serving(fake: FakeHTTP, monkeypatch, provider: str, settings: Dict[str, str]) -> Iterator[Any]:
    """The fake, with Comanda's settings pointing the provider at it, closed after the test."""
    monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", provider)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    yield fake
    fake.close()


def serve_stripe(monkeypatch) -> Iterator[FakeStripe]:
    """A fake Stripe with Comanda pointed at it (a fixture's body: ``yield from serve_stripe(monkeypatch)``)."""
    fake = FakeStripe()
    yield from serving(
        fake,
        monkeypatch,
        "stripe",
        {"STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_WEBHOOK_SECRET": STRIPE_WHSEC, "STRIPE_API_URL": fake.url},
    )


def serve_mercadopago(monkeypatch) -> Iterator[FakeMercadoPago]:
    """A fake Mercado Pago with Comanda pointed at it."""
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
