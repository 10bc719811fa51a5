"""Giving money back through the payment's own provider, once per idempotency key."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import FlagReason, OrderPaymentStatus, PaymentStatus, RefundStatus
from comanda.errors import NotFound
from comanda.money import positive_money, round_money
from comanda.services.payment_provider import ProviderError
from comanda.services.payments.common import (
    MANUAL_PROVIDERS,
    MONEY_IN,
    ProviderFor,
    RefundRefused,
    audit,
    lock_order,
)


def refund(
    provider_for: ProviderFor,
    payment_id: int,
    amount: Decimal,
    reason: str,
    actor: str,
    idempotency_key: str,
    return_id: Optional[int] = None,
) -> m.Refund:
    """Give money back: a Refund row first (unique idempotency key: asking again with the same key
    returns the same refund), then the provider (the key goes with it, so a retry never refunds twice),
    then the outcome. SPEI and cash are given back by staff by hand: the row records that they did.
    Raises InvalidInput (not an amount of money above 0), RefundRefused (nothing to refund, too much)
    or ProviderError (the row is ``failed``)."""
    refund_id = _open_refund(payment_id, positive_money(amount), reason, actor, idempotency_key, return_id)
    with new_session() as session:
        row, payment = session.get(m.Refund, refund_id), session.get(m.Payment, payment_id)
        if row.status == RefundStatus.SUCCEEDED:
            return row
    try:
        if payment.provider in MANUAL_PROVIDERS:
            provider_refund_id, status = None, RefundStatus.SUCCEEDED
        else:
            result = provider_for(payment.provider).refund(payment.provider_payment_id, row.amount, idempotency_key)
            provider_refund_id, status = result.refund_id, RefundStatus(result.status)
    except ProviderError as exc:
        with transaction() as session:
            _finish_refund(session, refund_id, RefundStatus.FAILED, None, actor, exc.message)
        raise
    with transaction() as session:
        return _finish_refund(session, refund_id, status, provider_refund_id, actor)


def refund_extra_charge(provider_for: ProviderFor, payment_id: int, actor: str) -> m.Refund:
    """Staff's one step for a second charge (a payment flagged ``already_paid``: the order was paid by
    another one): all of it back through its provider, under a key of its own, so pressing twice, or two
    people at once, refund it once. RefundRefused for any other payment: those need a person's amount."""
    with new_session() as session:
        payment = session.get(m.Payment, payment_id)
        if payment is None:
            raise NotFound(f"no payment {payment_id}", payment_id=payment_id)
        if payment.flag_reason != FlagReason.ALREADY_PAID:
            raise RefundRefused(
                f"payment {payment_id} is not a second charge ({payment.flag_reason or payment.status}): "
                "refund it with an amount and a reason",
                payment_id=payment_id,
            )
        reason = f"second charge for order {payment.order_id}"
        amount = payment.amount
    return refund(provider_for, payment_id, amount, reason, actor, f"extra-charge:{payment_id}")


def _open_refund(payment_id: int, amount: Decimal, reason: str, actor: str, key: str, return_id: Optional[int]) -> int:
    with transaction() as session:
        existing = session.execute(select(m.Refund).where(m.Refund.idempotency_key == key)).scalar_one_or_none()
        if existing is not None:
            if existing.payment_id != payment_id or existing.amount != amount:
                raise RefundRefused(f"idempotency key {key!r} was used for another refund")
            if existing.status != RefundStatus.FAILED:
                return existing.id
            existing.status = RefundStatus.PENDING
            return existing.id
        payment = session.get(m.Payment, payment_id)
        if payment is None:
            raise NotFound(f"no payment {payment_id}", payment_id=payment_id)
        order = lock_order(session, payment.order_id)
        session.refresh(payment)
        if payment.status not in MONEY_IN:
            raise RefundRefused(f"payment {payment_id} is {payment.status}: there is no money to give back")
        if payment.provider not in MANUAL_PROVIDERS and not payment.provider_payment_id:
            raise RefundRefused(f"payment {payment_id} names no {payment.provider} payment to refund")
        left = payment.amount - _refunded(session, payment_id)
        if amount > left:
            raise RefundRefused(f"payment {payment_id} can give back up to {left}, not {amount}", left=left)
        row = m.Refund(
            payment_id=payment_id,
            return_id=return_id,
            amount=amount,
            status=RefundStatus.PENDING,
            idempotency_key=key,
            reason=reason,
            actor=actor,
        )
        session.add(row)
        session.flush()
        audit(session, actor, "refund.requested", payment, refund_id=row.id, amount=str(amount), order_id=order.id)
        return row.id


def _finish_refund(
    session: Session,
    refund_id: int,
    status: RefundStatus,
    provider_refund_id: Optional[str],
    actor: str,
    error: Optional[str] = None,
) -> m.Refund:
    row = session.get(m.Refund, refund_id)
    payment = session.get(m.Payment, row.payment_id)
    order = lock_order(session, payment.order_id)
    row.status, row.provider_refund_id = status, provider_refund_id
    if status != RefundStatus.PENDING:
        row.completed_at = clock.now()
    if status == RefundStatus.SUCCEEDED:
        given_back = _refunded(session, payment.id, (RefundStatus.SUCCEEDED,))
        whole = given_back >= payment.amount
        was_the_orders = payment.flag_reason != FlagReason.ALREADY_PAID
        payment.status = PaymentStatus.REFUNDED if whole else PaymentStatus.PARTIALLY_REFUNDED
        if was_the_orders:
            order.payment_status = OrderPaymentStatus.REFUNDED if whole else OrderPaymentStatus.PARTIALLY_REFUNDED
    audit(
        session,
        actor,
        f"refund.{status}",
        payment,
        refund_id=row.id,
        amount=str(row.amount),
        provider_refund_id=provider_refund_id,
        error=error,
    )
    session.flush()
    return row


def _refunded(
    session: Session, payment_id: int, statuses: Iterable[str] = (RefundStatus.PENDING, RefundStatus.SUCCEEDED)
) -> Decimal:
    total = session.execute(
        select(func.coalesce(func.sum(m.Refund.amount), 0)).where(
            m.Refund.payment_id == payment_id, m.Refund.status.in_(tuple(statuses))
        )
    ).scalar()
    return round_money(Decimal(str(total)))  # SQLite sums money as floats
