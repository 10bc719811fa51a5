"""What Comanda needs from a payment provider, and what it understands back.

One small interface for every provider (the sandbox, Stripe, Mercado Pago): create a link for an
order with an expiry, expire it, verify and parse a webhook (a payment's news, or its refunds'), fetch
and list payments, refund. The core (comanda.services.payments) only speaks these types; the adapters
in integrations/payments/ implement them, and vendor SDKs stay there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Protocol, Tuple

from comanda.enums import PaymentEventKind, RefundStatus
from comanda.errors import ComandaError

# What a verified webhook says happened. pending: the customer started (an OXXO voucher was issued);
# refund: what became of refunds of the payment (``ProviderEvent.refunds``).
EVENT_KINDS = PaymentEventKind.values()


class WebhookRejected(ComandaError):
    """A webhook that must change nothing: ``status`` is the HTTP answer (400 malformed, 401 unsigned,
    403 forged, tampered or stale)."""

    code = "webhook_rejected"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status=status)
        self.status = status


class ProviderError(ComandaError):
    """The provider could not do what was asked (network, credentials, a refusal); nothing was charged."""

    code = "payment_provider"


@dataclass(frozen=True)
class LinkLine:
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class LinkRequest:
    """A hosted checkout for one payment of one order, open until ``expires_at``."""

    order_reference: str  # the order id: Stripe's client_reference_id, Mercado Pago's external_reference
    method: str  # card | oxxo
    amount: Decimal
    currency: str
    title: str  # "Pedido 42 · Café Esquina Centro"
    lines: Tuple[LinkLine, ...]  # they add up to ``amount`` (the delivery fee is a line)
    language: str
    expires_at: datetime


@dataclass(frozen=True)
class Link:
    link_id: str  # checkout session / preference / sandbox token
    url: str


@dataclass(frozen=True)
class RefundUpdate:
    """Where one refund stands at the provider, as a refund webhook says."""

    refund_id: str  # the provider's refund id
    status: RefundStatus
    amount: Optional[Decimal] = None
    reference: Optional[str] = None  # the idempotency key Comanda sent, when the provider gives it back
    failure: Optional[str] = None  # why it failed, in the provider's words


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook, parsed: the one shape the core applies."""

    provider: str
    event_id: str  # unique per provider: replays carry the same one
    event_type: str  # the provider's own name for it
    kind: str  # PaymentEventKind: paid | declined | expired | pending | refund
    order_reference: Optional[str]
    link_id: Optional[str]
    payment_id: Optional[str]  # the provider's payment (payment intent, Mercado Pago payment)
    amount: Optional[Decimal]
    currency: Optional[str]
    card_funding: Optional[str] = None  # credit | debit | prepaid, when the provider tells
    payload: Dict[str, Any] = field(default_factory=dict)
    refunds: Tuple[RefundUpdate, ...] = ()  # for a refund event


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as the provider's books have it, for reconciliation."""

    payment_id: str
    link_id: Optional[str]
    order_reference: Optional[str]
    status: str  # ProviderPaymentStatus: paid | pending | declined | refunded
    amount: Decimal
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class ProviderRefund:
    refund_id: str
    status: RefundStatus


class PaymentProvider(Protocol):
    name: str

    def create_link(self, request: LinkRequest) -> Link:
        """Raises ProviderError."""

    def expire_link(self, link_id: str) -> bool:
        """Close a link nobody may pay any more; False when it was closed already (paid, expired)."""

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> Optional[ProviderEvent]:
        """The verified event, or None for an authentic event Comanda does not act on; raises
        WebhookRejected for anything forged, tampered, stale or malformed."""

    def fetch_payment(self, payment_id: str) -> ProviderPayment:
        """Raises ProviderError."""

    def list_payments(self, start: datetime, end: datetime) -> List[ProviderPayment]:
        """Payments created in [start, end); raises ProviderError."""

    def refund(self, payment_id: str, amount: Decimal, idempotency_key: str) -> ProviderRefund:
        """Give back ``amount`` of a payment; the same key never refunds twice (and is given back in refund
        webhooks where the provider can carry it). Raises ProviderError."""
