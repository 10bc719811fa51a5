"""Mercado Pago: a Checkout Pro preference (``init_point``) through the official ``mercadopago`` SDK,
``external_reference`` = the order.

Webhooks (``/webhooks/payments/mercadopago?data.id=…&type=payment``) carry ``x-signature: ts=…,v1=…``,
an HMAC-SHA256 with the webhook's secret signature over ``id:{data.id};request-id:{x-request-id};ts:{ts};``
(checked by the SDK's ``WebhookSignatureValidator``, with COMANDA_WEBHOOK_TOLERANCE_SECONDS). The
notification says only which payment changed, so the payment is fetched by id before it is trusted:
approved → paid, rejected or cancelled → declined, anything else → pending; a payment that carries
refunds (partially refunded, or ``refunded``) → where each refund stands (approved → succeeded,
in process → pending, rejected or cancelled → failed). Refunds send ``X-Idempotency-Key``. The SDK
has one fixed API base URL; ``RebasedHttpClient`` (the SDK's own ``http_client`` hook) sends its
requests to MERCADOPAGO_API_URL instead, which tests point at a fake.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Dict, List, Mapping, Optional

import mercadopago
import requests
from mercadopago.config import Config, RequestOptions
from mercadopago.errors.exceptions import MercadoPagoError
from mercadopago.http import HttpClient
from mercadopago.webhook.validator import InvalidWebhookSignatureError, WebhookSignatureValidator

from comanda import clock
from comanda.enums import (
    CardFunding,
    PaymentEventKind,
    PaymentMethod,
    PaymentProviderName,
    ProviderPaymentStatus,
    RefundStatus,
)
from comanda.errors import InvalidInput
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
from integrations.payments.parsing import amount, load_json

NAME = PaymentProviderName.MERCADOPAGO
STATUS_KINDS = {
    "approved": PaymentEventKind.PAID,
    "rejected": PaymentEventKind.DECLINED,
    "cancelled": PaymentEventKind.DECLINED,
}
NOT_ACTED_ON = ("charged_back",)  # a chargeback is the bank's, settled with Mercado Pago by a person
REFUND_STATUSES = {
    "approved": RefundStatus.SUCCEEDED,
    "in_process": RefundStatus.PENDING,
    "authorized": RefundStatus.PENDING,
    "pending": RefundStatus.PENDING,
}  # rejected, cancelled: failed
# Checkout Pro shows every method the account has; these keep the one the customer chose.
EXCLUDED_TYPES: Dict[str, List[str]] = {
    PaymentMethod.CARD: ["ticket", "atm", "bank_transfer"],
    PaymentMethod.OXXO: ["credit_card", "debit_card", "prepaid_card", "atm", "bank_transfer"],
}
FUNDING = {"credit_card": CardFunding.CREDIT, "debit_card": CardFunding.DEBIT, "prepaid_card": CardFunding.PREPAID}
PAGE = 100


class RebasedHttpClient(HttpClient):
    """The SDK's HTTP client with its fixed base URL swapped for another one."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.sdk_base = Config().api_base_url

    def request(
        self,
        method: str,
        url: str,
        maxretries: Optional[int] = None,
        retry_on: Optional[List[int]] = None,
        backoff_factor: Optional[float] = None,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        if url.startswith(self.sdk_base):
            url = self.base_url + url[len(self.sdk_base) :]
        return super().request(
            method, url, maxretries=maxretries, retry_on=retry_on, backoff_factor=backoff_factor, **kwargs
        )


def wire_amount(amount: Decimal) -> float:
    """The SDK encodes bodies with json's encoder, which takes no Decimal; a 2-place amount is exact
    as a JSON number."""
    return float(money(amount))


class MercadoPagoProvider:
    name: str = NAME

    def __init__(self, credentials: Credentials) -> None:
        self.sdk = mercadopago.SDK(
            credentials.api_key,
            http_client=RebasedHttpClient(credentials.api_url),
            request_options=RequestOptions(connection_timeout=REQUEST_TIMEOUT_SECONDS, max_retries=2),
        )
        self.credentials = credentials

    @classmethod
    def from_settings(cls) -> MercadoPagoProvider:
        return cls(
            Credentials.from_settings(
                NAME, "MERCADOPAGO_ACCESS_TOKEN", "MERCADOPAGO_WEBHOOK_SECRET", "MERCADOPAGO_API_URL"
            )
        )

    def create_link(self, request: LinkRequest) -> Link:
        back = f"{self.credentials.return_url}?lang={request.language}"
        preference = _ok(
            lambda: self.sdk.preference().create(
                {
                    "items": [
                        {
                            "title": line.name[:256],
                            "quantity": line.quantity,
                            "unit_price": wire_amount(line.unit_price),
                            "currency_id": request.currency,
                        }
                        for line in request.lines
                    ],
                    "external_reference": request.order_reference,
                    "expires": True,
                    "expiration_date_from": _iso(clock.now()),
                    "expiration_date_to": _iso(request.expires_at),
                    "payment_methods": {"excluded_payment_types": [{"id": t} for t in EXCLUDED_TYPES[request.method]]},
                    "back_urls": {"success": back, "pending": back, "failure": back},
                    "auto_return": "approved",
                }
            ),
            "create the preference",
        )
        return Link(link_id=str(preference["id"]), url=preference["init_point"])

    def expire_link(self, link_id: str) -> bool:
        """Mercado Pago has no "expire": the preference's expiration date is moved to now."""
        try:
            _ok(
                lambda: self.sdk.preference().update(
                    link_id, {"expires": True, "expiration_date_to": _iso(clock.now())}
                ),
                f"expire preference {link_id}",
            )
        except ProviderError as exc:
            if exc.params.get("status") == 404:
                return False
            raise
        return True

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> Optional[ProviderEvent]:
        data_id = query.get("data.id") or query.get("id")
        try:
            WebhookSignatureValidator.validate(
                headers.get("x-signature"),
                headers.get("x-request-id"),
                (data_id or "").lower() or None,
                self.credentials.webhook_secret,
                tolerance_seconds=self.credentials.tolerance_seconds,
                now=lambda: int(clock.now().timestamp() * 1000),
            )
        except InvalidWebhookSignatureError as exc:
            status = 401 if exc.reason.value == "MissingSignatureHeader" else 403
            raise WebhookRejected(status, f"Mercado Pago signature refused: {exc.reason.value}") from exc
        notification = load_json(body, "Mercado Pago") if body else {}
        if not isinstance(notification, dict):
            raise WebhookRejected(400, "not a Mercado Pago notification: the body is not a JSON object")
        topic = query.get("type") or query.get("topic") or notification.get("type")
        if topic != "payment" or not data_id:
            return None
        payment = self._payment(data_id)
        if payment.get("status") in NOT_ACTED_ON:
            return None
        if payment.get("refunds"):
            return _refund_event(payment, notification)
        kind = STATUS_KINDS.get(str(payment.get("status")), PaymentEventKind.PENDING)
        return ProviderEvent(
            provider=NAME,
            event_id=f"{payment['id']}:{payment.get('status')}",
            event_type=f"payment.{payment.get('status')}",
            kind=kind,
            order_reference=payment.get("external_reference"),
            link_id=None,
            payment_id=str(payment["id"]),
            amount=amount(payment.get("transaction_amount"), "Mercado Pago"),
            currency=payment.get("currency_id"),
            card_funding=FUNDING.get(str(payment.get("payment_type_id"))),
            payload={"notification": notification, "payment": payment},
        )

    def fetch_payment(self, payment_id: str) -> ProviderPayment:
        return _as_payment(self._payment(payment_id))

    def list_payments(self, start: datetime, end: datetime) -> List[ProviderPayment]:
        found: List[ProviderPayment] = []
        while True:
            offset = len(found)
            page = _ok(
                lambda: self.sdk.payment().search(
                    {
                        "range": "date_created",
                        "begin_date": _iso(start),
                        "end_date": _iso(end - timedelta(milliseconds=1)),
                        "sort": "date_created",
                        "criteria": "asc",
                        "limit": PAGE,
                        "offset": offset,  # noqa: B023 - called at once
                    }
                ),
                "search payments",
            )
            found += [_as_payment(p) for p in page.get("results", [])]
            if not page.get("results") or len(found) >= page.get("paging", {}).get("total", 0):
                return found

    def refund(self, payment_id: str, amount: Decimal, idempotency_key: str) -> ProviderRefund:
        options = RequestOptions(custom_headers={"x-idempotency-key": idempotency_key[:64]})
        refund = _ok(
            lambda: self.sdk.refund().create(payment_id, {"amount": wire_amount(amount)}, request_options=options),
            f"refund payment {payment_id}",
        )
        status = REFUND_STATUSES.get(str(refund.get("status")), RefundStatus.FAILED)
        return ProviderRefund(refund_id=str(refund["id"]), status=status)

    def _payment(self, payment_id: str) -> Dict[str, Any]:
        return _ok(lambda: self.sdk.payment().get(payment_id), f"fetch payment {payment_id}")


def _ok(call: Callable[[], Mapping[str, Any]], what: str) -> Dict[str, Any]:
    """The SDK call's body on a 2xx; else ProviderError with Mercado Pago's message and HTTP status
    (never the token): also when Mercado Pago cannot be reached or answers what is not JSON."""
    try:
        answer = call()
    except (requests.RequestException, MercadoPagoError) as exc:
        raise ProviderError(f"Mercado Pago did not {what}: {type(exc).__name__}") from exc
    body = answer.get("response") or {}
    status = answer.get("status", 0)
    if not 200 <= status < 300:
        message = body.get("message") if isinstance(body, dict) else None
        raise ProviderError(f"Mercado Pago did not {what}: HTTP {status} {message or ''}".strip(), status=status)
    return body


def _refund_event(payment: Dict[str, Any], notification: Dict[str, Any]) -> ProviderEvent:
    """A payment that carries refunds: where each stands. The event id names that state, so a notification
    repeated for the same state is a replay, and one for a refund that moved is news."""
    refunds = payment["refunds"]
    if not isinstance(refunds, list) or not all(isinstance(r, dict) and "id" in r for r in refunds):
        raise WebhookRejected(400, "Mercado Pago sent refunds Comanda cannot read")
    updates = tuple(
        RefundUpdate(
            refund_id=str(refund["id"]),
            status=REFUND_STATUSES.get(str(refund.get("status")), RefundStatus.FAILED),
            amount=amount(refund.get("amount"), "Mercado Pago") if refund.get("amount") is not None else None,
            failure=refund.get("status_detail") or refund.get("status"),
        )
        for refund in refunds
    )
    state = ",".join(sorted(f"{update.refund_id}={update.status}" for update in updates))
    return ProviderEvent(
        provider=NAME,
        event_id=f"{payment['id']}:refunds:{hashlib.sha256(state.encode()).hexdigest()[:20]}",
        event_type=f"payment.{payment.get('status')}",
        kind=PaymentEventKind.REFUND,
        order_reference=payment.get("external_reference"),
        link_id=None,
        payment_id=str(payment["id"]),
        amount=None,
        currency=payment.get("currency_id"),
        payload={"notification": notification, "payment": payment},
        refunds=updates,
    )


def _as_payment(payment: Mapping[str, Any]) -> ProviderPayment:
    status = {
        "approved": ProviderPaymentStatus.PAID,
        "refunded": ProviderPaymentStatus.REFUNDED,
        "rejected": ProviderPaymentStatus.DECLINED,
        "cancelled": ProviderPaymentStatus.DECLINED,
    }.get(str(payment.get("status")), ProviderPaymentStatus.PENDING)
    return ProviderPayment(
        payment_id=str(payment["id"]),
        link_id=None,
        order_reference=payment.get("external_reference"),
        status=status,
        amount=_api_amount(payment),
        currency=payment.get("currency_id") or "",
        created_at=datetime.fromisoformat(payment["date_created"]),
    )


def _api_amount(payment: Mapping[str, Any]) -> Decimal:
    """The payment's amount as Mercado Pago's API gave it (a JSON number), exact; ProviderError if it is not money."""
    value = payment.get("transaction_amount")
    try:
        return money(repr(value) if isinstance(value, float) else value)
    except InvalidInput as exc:
        raise ProviderError(
            f"Mercado Pago gave payment {payment.get('id')} an amount that is not money: {exc.message}"
        ) from None


def _iso(moment: datetime) -> str:
    """Mercado Pago's dates: ISO 8601 with milliseconds and offset."""
    return moment.isoformat(timespec="milliseconds")
