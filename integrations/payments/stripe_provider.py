"""Stripe: a Checkout Session in MXN for card or OXXO, through the official ``stripe`` SDK.

Webhooks (``/webhooks/payments/stripe``) are verified by the SDK's ``WebhookSignature.verify_header``
over the raw body (``Stripe-Signature``, HMAC-SHA256 with the endpoint's whsec_ secret, timestamp
tolerance COMANDA_WEBHOOK_TOLERANCE_SECONDS). Events acted on:

- ``checkout.session.completed``: paid when ``payment_status`` is ``paid`` (cards); an OXXO voucher was
  issued when it is ``unpaid`` (pending: the customer pays at the store later);
- ``checkout.session.async_payment_succeeded`` / ``_failed``: the OXXO voucher was paid / expired unpaid;
- ``checkout.session.expired``: the session closed unpaid;
- ``refund.created`` / ``refund.updated`` / ``refund.failed`` (and the older ``charge.refund.updated``):
  where a refund stands, with the idempotency key Comanda sent in its metadata; ``charge.refunded``
  (whose charge carries no refunds in recent API versions): the payment's refunds are listed.

Stripe refuses a session that expires sooner than 30 minutes after it is made, so a session lives
30 minutes when the stock hold is shorter; Comanda closes it (``expire``) when the hold runs out.
STRIPE_API_URL points the SDK elsewhere (tests use a local fake that speaks Stripe's HTTP API).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional

import stripe

from comanda import clock
from comanda.enums import (
    CardFunding,
    PaymentEventKind,
    PaymentMethod,
    PaymentProviderName,
    ProviderPaymentStatus,
    RefundStatus,
)
from comanda.money import money
from comanda.services.payment_provider import (
    Link,
    LinkRequest,
    ProviderError,
    ProviderEvent,
    ProviderPayment,
    ProviderRefund,
    RefundUpdate,
    WebhookRejected,
)
from integrations.payments.credentials import REQUEST_TIMEOUT_SECONDS, Credentials
from integrations.payments.parsing import cents as cents_amount
from integrations.payments.parsing import load_json

log = logging.getLogger(__name__)

NAME = PaymentProviderName.STRIPE
SIGNATURE_HEADER = "Stripe-Signature"
MIN_SESSION_MINUTES = 31  # Stripe's minimum is 30 minutes from creation; a minute of slack for clocks
OXXO_VOUCHER_DAYS = 1  # the shortest voucher Stripe issues: paid by tomorrow 23:59 Mexico City time
SESSION_KINDS = {
    "checkout.session.async_payment_succeeded": PaymentEventKind.PAID,
    "checkout.session.async_payment_failed": PaymentEventKind.DECLINED,
    "checkout.session.expired": PaymentEventKind.EXPIRED,
}
REFUND_EVENTS = ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
CHARGE_REFUNDED = "charge.refunded"
CARD_FUNDING = (CardFunding.CREDIT, CardFunding.DEBIT, CardFunding.PREPAID)
# Stripe's refund statuses; anything else (failed, canceled) is a refund that did not happen
REFUND_STATUSES = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
}
METADATA_KEY = "idempotency_key"  # the refund's key, given back in its webhooks


def cents(amount: Decimal) -> int:
    """Stripe counts MXN in centavos."""
    return int(money(amount) * 100)


def from_cents(value: int) -> Decimal:
    return money(Decimal(value) / 100)


class StripeProvider:
    name: str = NAME

    def __init__(self, credentials: Credentials) -> None:
        self.client = stripe.StripeClient(
            credentials.api_key,
            base_addresses={"api": credentials.api_url},
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT_SECONDS),
        )
        self.credentials = credentials

    @classmethod
    def from_settings(cls) -> StripeProvider:
        return cls(Credentials.from_settings(NAME, "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_URL"))

    def create_link(self, request: LinkRequest) -> Link:
        closes = max(request.expires_at, clock.now() + timedelta(minutes=MIN_SESSION_MINUTES))
        params: Dict[str, Any] = {
            "mode": "payment",
            "payment_method_types": [request.method],
            "line_items": [
                {
                    "quantity": line.quantity,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": cents(line.unit_price),
                        "product_data": {"name": line.name[:250]},
                    },
                }
                for line in request.lines
            ],
            "client_reference_id": request.order_reference,
            "metadata": {"order_id": request.order_reference},
            "payment_intent_data": {
                "metadata": {"order_id": request.order_reference},
                "description": request.title[:500],
            },
            "expires_at": int(closes.timestamp()),
            "locale": request.language,
            "success_url": f"{self.credentials.return_url}?lang={request.language}",
            "cancel_url": f"{self.credentials.return_url}?lang={request.language}",
        }
        if request.method == PaymentMethod.OXXO:
            params["payment_method_options"] = {"oxxo": {"expires_after_days": OXXO_VOUCHER_DAYS}}
        session = self._call(self.client.v1.checkout.sessions.create, params)
        return Link(link_id=session["id"], url=session["url"])

    def expire_link(self, link_id: str) -> bool:
        try:
            self.client.v1.checkout.sessions.expire(link_id)
        except stripe.InvalidRequestError:
            return False  # completed or expired already: nothing to close
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe did not expire {link_id}: {_describe(exc)}") from exc
        return True

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> Optional[ProviderEvent]:
        header = headers.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookRejected(401, f"no {SIGNATURE_HEADER} header")
        try:
            stripe.WebhookSignature.verify_header(
                body, header, self.credentials.webhook_secret, self.credentials.tolerance_seconds
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookRejected(403, f"Stripe signature refused: {exc.user_message or 'mismatch'}") from exc
        except UnicodeDecodeError:  # Stripe signs UTF-8 text: these bytes were never signed by it
            raise WebhookRejected(403, "Stripe signature refused: the body is not UTF-8") from None
        event = load_json(body, "Stripe")
        try:
            event_type, session = event["type"], event["data"]["object"]
            event_id = str(event["id"])
            if not isinstance(session, dict):
                raise TypeError("data.object is not an object")
        except (KeyError, TypeError) as exc:
            raise WebhookRejected(400, f"not a Stripe event: {type(exc).__name__}") from exc
        if event_type in REFUND_EVENTS or event_type == CHARGE_REFUNDED:
            return self._refund_event(event, event_type, session)
        if event_type == "checkout.session.completed":
            kind = PaymentEventKind.PAID if session.get("payment_status") == "paid" else PaymentEventKind.PENDING
        elif event_type in SESSION_KINDS:
            kind = SESSION_KINDS[event_type]
        else:
            return None
        total = session.get("amount_total")
        intent = session.get("payment_intent")
        paid_by_card = (
            kind == PaymentEventKind.PAID and intent and "card" in (session.get("payment_method_types") or [])
        )
        return ProviderEvent(
            provider=NAME,
            event_id=event_id,
            event_type=event_type,
            kind=kind,
            order_reference=session.get("client_reference_id"),
            link_id=session.get("id"),
            payment_id=session.get("payment_intent"),
            amount=cents_amount(total, "Stripe") if total is not None else None,
            currency=(session.get("currency") or "").upper() or None,
            card_funding=self._card_funding(intent) if paid_by_card and isinstance(intent, str) else None,
            payload=event,
        )

    def _refund_event(self, event: Dict[str, Any], event_type: str, found: Dict[str, Any]) -> ProviderEvent:
        """A refund's news: the refund itself, or for ``charge.refunded`` every refund of the payment
        (asked of Stripe: ProviderError, and Stripe retries, when it cannot be asked now)."""
        intent = found.get("payment_intent")
        if event_type != CHARGE_REFUNDED:
            refunds = [found]
        elif isinstance((found.get("refunds") or {}).get("data"), list):
            refunds = found["refunds"]["data"]
        elif intent:
            listed = self._call(self.client.v1.refunds.list, {"payment_intent": intent, "limit": 100})
            refunds = [refund.to_dict() for refund in listed.data]
        else:
            refunds = []
        return ProviderEvent(
            provider=NAME,
            event_id=str(event["id"]),
            event_type=event_type,
            kind=PaymentEventKind.REFUND,
            order_reference=None,
            link_id=None,
            payment_id=intent if isinstance(intent, str) else None,
            amount=None,
            currency=None,
            payload=event,
            refunds=tuple(_refund_update(refund) for refund in refunds),
        )

    def _card_funding(self, intent_id: str) -> Optional[str]:
        """Credit, debit or prepaid (the invoice's FormaPago 04 or 28), from the payment's charge; None
        when Stripe does not say or cannot be asked now (the payment itself is not held up for it)."""
        try:
            intent = self.client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]}).to_dict()
        except stripe.StripeError as exc:
            log.warning("Stripe did not say how %s was funded: %s", intent_id, _describe(exc))
            return None
        charge = intent.get("latest_charge")
        card = (charge.get("payment_method_details") or {}).get("card") or {} if isinstance(charge, dict) else {}
        return card.get("funding") if card.get("funding") in CARD_FUNDING else None

    def fetch_payment(self, payment_id: str) -> ProviderPayment:
        intent = self._call(self.client.v1.payment_intents.retrieve, payment_id)
        status = {"succeeded": ProviderPaymentStatus.PAID, "canceled": ProviderPaymentStatus.DECLINED}.get(
            intent["status"], ProviderPaymentStatus.PENDING
        )
        return ProviderPayment(
            payment_id=intent["id"],
            link_id=None,
            order_reference=(intent.get("metadata") or {}).get("order_id"),
            status=status,
            amount=from_cents(intent["amount_received"] or intent["amount"]),
            currency=intent["currency"].upper(),
            created_at=datetime.fromtimestamp(intent["created"], timezone.utc),
        )

    def list_payments(self, start: datetime, end: datetime) -> List[ProviderPayment]:
        """Checkout Sessions made in the window: their payment status says whether Stripe took the money."""
        sessions = self._call(
            self.client.v1.checkout.sessions.list,
            {"created": {"gte": int(start.timestamp()), "lt": int(end.timestamp())}, "limit": 100},
        )
        try:
            found = [session.to_dict() for session in sessions.auto_paging_iter()]
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe did not list sessions: {_describe(exc)}") from exc
        return [
            ProviderPayment(
                payment_id=s.get("payment_intent") or s["id"],
                link_id=s["id"],
                order_reference=s.get("client_reference_id"),
                status=ProviderPaymentStatus.PAID
                if s.get("payment_status") == "paid"
                else (
                    ProviderPaymentStatus.DECLINED if s.get("status") == "expired" else ProviderPaymentStatus.PENDING
                ),
                amount=from_cents(s.get("amount_total") or 0),
                currency=(s.get("currency") or "").upper(),
                created_at=datetime.fromtimestamp(s["created"], timezone.utc),
            )
            for s in found
        ]

    def refund(self, payment_id: str, amount: Decimal, idempotency_key: str) -> ProviderRefund:
        refund = self._call(
            self.client.v1.refunds.create,
            {"payment_intent": payment_id, "amount": cents(amount), "metadata": {METADATA_KEY: idempotency_key}},
            options={"idempotency_key": idempotency_key},
        )
        return ProviderRefund(refund_id=refund["id"], status=REFUND_STATUSES.get(refund["status"], RefundStatus.FAILED))

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
        """The SDK call's result (a plain dict for one object), or ProviderError."""
        try:
            result = method(*args, **kwargs)
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe refused the request: {_describe(exc)}") from exc
        return result if isinstance(result, stripe.ListObject) else result.to_dict()


def _refund_update(refund: Any) -> RefundUpdate:
    if not isinstance(refund, dict) or not isinstance(refund.get("id"), str):
        raise WebhookRejected(400, "not a Stripe refund")
    return RefundUpdate(
        refund_id=refund["id"],
        status=REFUND_STATUSES.get(str(refund.get("status")), RefundStatus.FAILED),
        amount=cents_amount(refund["amount"], "Stripe") if "amount" in refund else None,
        reference=(refund.get("metadata") or {}).get(METADATA_KEY),
        failure=refund.get("failure_reason"),
    )


def _describe(exc: stripe.StripeError) -> str:
    """Stripe's own message and code, never the request (it carries the key in its headers)."""
    return f"{exc.user_message or type(exc).__name__} (HTTP {exc.http_status}, code {exc.code})"
