"""The sandbox provider: a hosted checkout served by Comanda's own back office, so the whole payment
flow runs with no account.

A link is ``{COMANDA_BACKOFFICE_URL}/pay/<token>`` (an unguessable token). Pressing Pay or Decline there
records the charge in the sandbox's own books (``sandbox_charges``) with its webhook in the sandbox's
outbox (``sandbox_webhooks``, delivered by integrations.payments.sandbox_webhooks), posted to
``/webhooks/payments/sandbox`` signed as Stripe signs its own: ``Sandbox-Signature: t=<unix
time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` with COMANDA_SANDBOX_WEBHOOK_SECRET, refused when
older than COMANDA_WEBHOOK_TOLERANCE_SECONDS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import List, Mapping, Optional

import requests
from sqlalchemy import select

from comanda import clock
from comanda import models as m
from comanda.db import transaction
from comanda.enums import (
    PaymentEventKind,
    PaymentProviderName,
    ProviderPaymentStatus,
    RefundStatus,
    SandboxChargeStatus,
    SandboxWebhookStatus,
)
from comanda.money import money
from comanda.services.payment_provider import (
    Link,
    LinkRequest,
    ProviderError,
    ProviderEvent,
    ProviderPayment,
    ProviderRefund,
    WebhookRejected,
)
from comanda.settings import setting, setting_int
from integrations.payments.parsing import amount, load_json

NAME = PaymentProviderName.SANDBOX
WEBHOOK_TIMEOUT_SECONDS = 30
# How long one delivery attempt owns a webhook: longer than a post may take. The first attempt is the
# Pay press's own; should its process die, the outbox loop takes the webhook over when this runs out.
WEBHOOK_LEASE_SECONDS = 2 * WEBHOOK_TIMEOUT_SECONDS
SIGNATURE_HEADER = "Sandbox-Signature"
EVENT_TYPES = {"payment.succeeded": PaymentEventKind.PAID, "payment.declined": PaymentEventKind.DECLINED}


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The Sandbox-Signature header for these exact bytes."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(body: bytes, header: Optional[str], secret: str, tolerance_seconds: int) -> None:
    """Raise WebhookRejected unless the header signs these bytes recently enough."""
    if not header:
        raise WebhookRejected(401, f"no {SIGNATURE_HEADER} header")
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    stamp = parts.get("t", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or "v1" not in parts:
        raise WebhookRejected(403, f"malformed {SIGNATURE_HEADER} header")
    timestamp = int(parts["t"])
    if not hmac.compare_digest(sign(body, secret, timestamp), f"t={timestamp},v1={parts['v1']}"):
        raise WebhookRejected(403, "signature does not match the body")
    if abs(clock.now().timestamp() - timestamp) > tolerance_seconds:
        raise WebhookRejected(403, f"signature timestamp {timestamp} is outside the tolerance")


def event_body(kind: str, charge: m.SandboxCharge, event_id: Optional[str] = None) -> bytes:
    """The webhook the hosted checkout posts after a Pay or Decline (a new event id unless given)."""
    event_type = next(name for name, value in EVENT_TYPES.items() if value == kind)
    return json.dumps(
        {
            "id": event_id or new_event_id(),
            "type": event_type,
            "created": int(clock.now().timestamp()),
            "data": {
                "link": charge.link_id,
                "payment": charge.id,
                "reference": charge.order_reference,
                "amount": str(charge.amount),
                "currency": charge.currency,
            },
        },
        separators=(",", ":"),
    ).encode()


def new_event_id() -> str:
    return f"evt_sbx_{secrets.token_hex(12)}"


def record_charge(link_id: str, order_reference: str, kind: str, amount: Decimal, currency: str) -> m.SandboxCharge:
    """Pay or Decline pressed: the sandbox's books get the charge and its outbox the webhook that tells
    Comanda, in one transaction, as a provider's would (a crash after the charge still delivers it)."""
    charge = m.SandboxCharge(
        id=f"sbxpay_{secrets.token_hex(10)}",
        link_id=link_id,
        order_reference=order_reference,
        status=SandboxChargeStatus.SUCCEEDED if kind == PaymentEventKind.PAID else SandboxChargeStatus.DECLINED,
        amount=money(amount),
        currency=currency,
        refunded=money(0),
        refunds={},
    )
    event_id = new_event_id()
    with transaction() as session:
        session.add(charge)
        session.flush()
        session.add(
            m.SandboxWebhook(
                charge_id=charge.id,
                event_id=event_id,
                body=event_body(kind, charge, event_id).decode(),
                status=SandboxWebhookStatus.PENDING,
                next_attempt_at=clock.now() + timedelta(seconds=WEBHOOK_LEASE_SECONDS),
            )
        )
    return charge


class SandboxProvider:
    name: str = NAME

    def __init__(self, base_url: str, secret: str, tolerance_seconds: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.tolerance_seconds = tolerance_seconds

    @classmethod
    def from_settings(cls) -> SandboxProvider:
        return cls(
            setting("COMANDA_BACKOFFICE_URL"),
            setting("COMANDA_SANDBOX_WEBHOOK_SECRET"),
            setting_int("COMANDA_WEBHOOK_TOLERANCE_SECONDS"),
        )

    def create_link(self, request: LinkRequest) -> Link:
        """No call to make: the page reads the order's payment by its token when the customer opens it."""
        token = secrets.token_urlsafe(24)
        return Link(link_id=token, url=f"{self.base_url}/pay/{token}")

    def expire_link(self, link_id: str) -> bool:
        """The page refuses a payment that is no longer pending, so there is nothing to close here."""
        return True

    def send_webhook(self, body: bytes) -> None:
        """What a provider does after a charge: sign the exact bytes now and post them to the webhook URL;
        ProviderError unless the back office accepted it (2xx)."""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.secret, int(clock.now().timestamp())),
        }
        url = f"{self.base_url}/webhooks/payments/{NAME}"
        answer = requests.post(url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS)
        if not answer.ok:
            raise ProviderError(f"the back office answered {answer.status_code}: {answer.text[:200]}")

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> Optional[ProviderEvent]:
        verify(body, headers.get(SIGNATURE_HEADER), self.secret, self.tolerance_seconds)
        event = load_json(body, NAME)
        try:
            data = event["data"]
            kind = EVENT_TYPES.get(event["type"])
            event_id, link, payment, reference, currency = (
                str(event["id"]),
                str(data["link"]),
                str(data["payment"]),
                str(data["reference"]),
                str(data["currency"]),
            )
            written = data["amount"]
        except (KeyError, TypeError) as exc:
            raise WebhookRejected(400, f"not a sandbox event: {type(exc).__name__}") from exc
        if not isinstance(written, str):  # the sandbox writes amounts as text, exact
            raise WebhookRejected(400, f"the sandbox writes amounts as text, not {written!r}"[:300])
        if kind is None:  # an event type the sandbox sends that Comanda does not act on
            return None
        return ProviderEvent(
            provider=NAME,
            event_id=event_id,
            event_type=event["type"],
            kind=kind,
            order_reference=reference,
            link_id=link,
            payment_id=payment,
            amount=amount(written, NAME),
            currency=currency,
            payload=event,
        )

    def fetch_payment(self, payment_id: str) -> ProviderPayment:
        with transaction() as session:
            charge = session.get(m.SandboxCharge, payment_id)
            if charge is None:
                raise ProviderError(f"the sandbox has no payment {payment_id}")
            return _as_payment(charge)

    def list_payments(self, start: datetime, end: datetime) -> List[ProviderPayment]:
        with transaction() as session:
            charges = (
                session.execute(
                    select(m.SandboxCharge)
                    .where(
                        m.SandboxCharge.created_at >= start,
                        m.SandboxCharge.created_at < end,
                    )
                    .order_by(m.SandboxCharge.created_at)
                )
                .scalars()
                .all()
            )
            return [_as_payment(charge) for charge in charges]

    def refund(self, payment_id: str, amount: Decimal, idempotency_key: str) -> ProviderRefund:
        """At most the amount charged, and a key already used gives back the same refund again."""
        refund_id = f"sbxre_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]}"
        with transaction() as session:
            charge = session.execute(
                select(m.SandboxCharge).where(m.SandboxCharge.id == payment_id).with_for_update()
            ).scalar_one_or_none()
            if charge is None or charge.status != SandboxChargeStatus.SUCCEEDED:
                raise ProviderError(f"the sandbox has no successful payment {payment_id}")
            if refund_id in charge.refunds:
                return ProviderRefund(refund_id=refund_id, status=RefundStatus.SUCCEEDED)
            if charge.refunded + amount > charge.amount:
                raise ProviderError(
                    f"the sandbox cannot refund {amount} of {payment_id}: only "
                    f"{charge.amount - charge.refunded} is left"
                )
            charge.refunded = money(charge.refunded + amount)
            charge.refunds = {**charge.refunds, refund_id: str(money(amount))}
        return ProviderRefund(refund_id=refund_id, status=RefundStatus.SUCCEEDED)


def _as_payment(charge: m.SandboxCharge) -> ProviderPayment:
    if charge.status == SandboxChargeStatus.DECLINED:
        status = ProviderPaymentStatus.DECLINED
    else:
        refunded = charge.refunded >= charge.amount
        status = ProviderPaymentStatus.REFUNDED if refunded else ProviderPaymentStatus.PAID
    return ProviderPayment(
        payment_id=charge.id,
        link_id=charge.link_id,
        order_reference=charge.order_reference,
        status=status,
        amount=charge.amount,
        currency=charge.currency,
        created_at=charge.created_at,
    )
