"""What every part of payments shares: the order lock, conditional moves of a payment's status, the
audit trail, and the errors callers catch."""

from __future__ import annotations

import logging
from typing import Callable, List, Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.enums import PaymentMethod, PaymentProviderName, PaymentStatus
from comanda.errors import ComandaError, NotFound
from comanda.services.payment_provider import PaymentProvider

log = logging.getLogger("comanda.services.payments")

LINK_METHODS = (PaymentMethod.CARD, PaymentMethod.OXXO)
# a payment a provider may still report as paid
PAYABLE = (PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.DECLINED)
# money received and not all given back
MONEY_IN = (PaymentStatus.PAID, PaymentStatus.FLAGGED, PaymentStatus.PARTIALLY_REFUNDED)
# staff collect and give back by hand
MANUAL_PROVIDERS = (PaymentProviderName.SPEI, PaymentProviderName.CASH)
PAYMENTS = m.Payment.__table__

ProviderFor = Callable[[str], PaymentProvider]


class NotPayable(ComandaError):
    """The order is not waiting for a payment (paid, cancelled, cash), or its method has no link."""

    code = "not_payable"


class RetryLater(ComandaError):
    """A webhook that arrived before what it reports on was recorded: nothing changed, and the provider
    is asked to send it again (it retries what is not answered 2xx)."""

    code = "retry_later"


class RefundRefused(ComandaError):
    """Nothing (or not that much) to give back, or an idempotency key already used for another refund."""

    code = "refund_refused"


def lock_order(session: Session, order_id: int) -> m.Order:
    """The order, row-locked until the transaction ends (PostgreSQL; SQLite has one writer anyway)."""
    order = session.execute(
        select(m.Order).where(m.Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id}", order_id=order_id)
    return order


def payments_of(session: Session, order_id: int, statuses: Sequence[str]) -> List[m.Payment]:
    return list(
        session.execute(
            select(m.Payment)
            .where(m.Payment.order_id == order_id, m.Payment.status.in_(statuses))
            .order_by(m.Payment.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def open_payment(session: Session, order_id: int) -> Optional[m.Payment]:
    found = payments_of(session, order_id, (PaymentStatus.PENDING,))
    return found[-1] if found else None


def move(session: Session, payment: m.Payment, from_statuses: Sequence[str], **values: object) -> bool:
    """Conditional UPDATE on the payment's status: of two events racing for one payment, one wins."""
    moved = (
        session.execute(
            update(PAYMENTS).where(PAYMENTS.c.id == payment.id, PAYMENTS.c.status.in_(from_statuses)).values(**values)
        ).rowcount
        == 1
    )
    session.expire(payment)
    return moved


def audit(session: Session, actor: str, action: str, payment: m.Payment, **data: object) -> None:
    session.add(
        m.AuditEvent(
            actor=actor,
            action=action,
            entity_type="payment",
            entity_id=str(payment.id),
            data={key: value for key, value in data.items() if value is not None},
        )
    )


def close_link(provider_for: ProviderFor, provider_name: str, link_id: str) -> None:
    """Best effort: a link that stays open can still be paid, and a late payment is handled (sold if
    the stock is there, else flagged for a refund)."""
    try:
        provider_for(provider_name).expire_link(link_id)
    except ComandaError as exc:  # the provider refused, or is no longer configured
        log.warning("%s link %s could not be closed: %s", provider_name, link_id, exc.message)
