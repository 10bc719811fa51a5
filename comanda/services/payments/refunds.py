"""Giving money back through the payment's own provider, once per idempotency key, and following it there.

A refund is a row first (``pending``), then the provider's call, then its answer: ``succeeded``, ``failed``,
or still ``pending`` (a provider that settles refunds later). Pending refunds are settled by the
providers' refund webhooks (``apply_refund_updates``): pending → succeeded or failed, and succeeded →
failed (a card refund can bounce after it succeeded). Each move happens once, under the order's lock,
whoever reports it first (the call's answer or a webhook); a failure reported by webhook goes to staff
as a ``refund_failed`` handoff ticket. The payment's and the order's payment status follow what was
really given back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, Iterable, List, Optional, Tuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import (
    FlagReason,
    HandoffReason,
    NotificationEvent,
    OrderPaymentStatus,
    PaymentEventOutcome,
    PaymentStatus,
    RefundStatus,
    ReturnOutcome,
    ReturnStatus,
)
from comanda.errors import NotFound
from comanda.money import positive_money, round_money
from comanda.services import handoff, notifications
from comanda.services.payment_provider import ProviderError, ProviderEvent, RefundUpdate
from comanda.services.payments.common import (
    MANUAL_PROVIDERS,
    MONEY_IN,
    ProviderFor,
    RefundRefused,
    RetryLater,
    audit,
    lock_order,
    log,
)

# What a provider's webhook may report about a refund, from where: a failed refund stays failed.
REPORTED_FROM: Dict[str, Tuple[RefundStatus, ...]] = {
    RefundStatus.SUCCEEDED: (RefundStatus.PENDING,),
    RefundStatus.FAILED: (RefundStatus.PENDING, RefundStatus.SUCCEEDED),
}


def refund(
    provider_for: ProviderFor,
    payment_id: int,
    amount: object,
    reason: str,
    actor: str,
    idempotency_key: str,
    return_id: Optional[int] = None,
) -> m.Refund:
    """Give money back: a Refund row first (unique idempotency key: asking again with the same key
    returns the same refund), then the provider (the key goes with it, so a retry never refunds twice),
    then the outcome. SPEI and cash are given back by staff by hand: the row records that they did.
    The row is returned ``succeeded``, or ``pending`` while the provider settles it (its webhook will).
    Raises InvalidInput (not an amount of money above 0), RefundRefused (nothing to refund, too much)
    or ProviderError (the provider refused or failed it: the row is ``failed``, and the same key may
    try again)."""
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
            if status == RefundStatus.FAILED:
                raise ProviderError(f"{payment.provider} refused refund {result.refund_id}")
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


def apply_refund_updates(session: Session, event: ProviderEvent) -> Tuple[Optional[int], str]:
    """A provider's refund webhook: each refund it names moves once (a replay, or news already known,
    changes nothing); a refund failed at the provider goes to staff. The payment the refunds belong to
    and the outcome: refund_failed, refund_succeeded, duplicate (nothing new) or ignored (refunds that
    Comanda did not make). RetryLater when a refund Comanda asked for has no answer recorded yet."""
    outcomes: List[str] = []
    payment_id: Optional[int] = None
    for update in event.refunds:
        row = _refund_for(session, event.provider, update)
        if row is None:
            if _awaiting_answer(session, event):
                raise RetryLater(f"{event.provider} reported refund {update.refund_id} before Comanda recorded it")
            log.warning("%s refund %s is not one Comanda made: ignored", event.provider, update.refund_id)
            continue
        payment_id = payment_id or row.payment_id
        outcomes.append(_reported(session, row, update, event))
    for outcome in (PaymentEventOutcome.REFUND_FAILED, PaymentEventOutcome.REFUND_SUCCEEDED):
        if outcome in outcomes:
            return payment_id, outcome
    return payment_id, PaymentEventOutcome.DUPLICATE if outcomes else PaymentEventOutcome.IGNORED


def _refund_for(session: Session, provider: str, update: RefundUpdate) -> Optional[m.Refund]:
    """The refund by the provider's id, else by the idempotency key the provider gave back."""
    R, P = m.Refund, m.Payment
    query = select(R).join(P, P.id == R.payment_id).where(P.provider == provider)
    found = session.execute(query.where(R.provider_refund_id == update.refund_id)).scalars().first()
    if found is None and update.reference:
        found = session.execute(query.where(R.idempotency_key == update.reference)).scalar_one_or_none()
    return found


def _awaiting_answer(session: Session, event: ProviderEvent) -> bool:
    """A refund of this payment was asked for and the provider's answer (its refund id) is not recorded
    yet: the webhook overtook the call, and the provider is asked to send it again."""
    if not event.payment_id:
        return False
    return (
        session.execute(
            select(m.Refund.id)
            .join(m.Payment, m.Payment.id == m.Refund.payment_id)
            .where(
                m.Payment.provider == event.provider,
                m.Payment.provider_payment_id == event.payment_id,
                m.Refund.status == RefundStatus.PENDING,
                m.Refund.provider_refund_id.is_(None),
            )
            .limit(1)
        ).first()
        is not None
    )


def _reported(session: Session, row: m.Refund, update: RefundUpdate, event: ProviderEvent) -> str:
    payment = session.get(m.Payment, row.payment_id)
    order = lock_order(session, payment.order_id)
    session.refresh(row)
    session.refresh(payment)
    if row.provider_refund_id is None:
        row.provider_refund_id = update.refund_id
    elif row.provider_refund_id != update.refund_id:
        log.warning(
            "%s refund %s is not refund %s's (%s)", event.provider, update.refund_id, row.id, row.provider_refund_id
        )
        return PaymentEventOutcome.IGNORED
    if row.status not in REPORTED_FROM.get(update.status, ()):
        return PaymentEventOutcome.DUPLICATE
    row.status, row.completed_at = update.status, clock.now()
    _settle(session, payment, order)
    _follow_return(session, row, order)
    actor = f"payment:{event.provider}"
    audit(
        session,
        actor,
        f"refund.{update.status}",
        payment,
        refund_id=row.id,
        amount=str(row.amount),
        provider_refund_id=update.refund_id,
        error=update.failure,
        event_id=event.event_id,
    )
    if update.status == RefundStatus.FAILED:
        _tell_staff(session, order, payment, row, update.failure)
        return PaymentEventOutcome.REFUND_FAILED
    return PaymentEventOutcome.REFUND_SUCCEEDED


def _tell_staff(session: Session, order: m.Order, payment: m.Payment, row: m.Refund, failure: Optional[str]) -> None:
    summary = (
        f"Refund {row.id} of {row.amount} {payment.currency} (payment {payment.id}, order {order.id}) failed at "
        f"{payment.provider}: {failure or 'no reason given'}. Give the money back another way."
    )
    if order.conversation_id:
        handoff.open_ticket(session, order.conversation_id, HandoffReason.REFUND_FAILED, summary)
    else:
        log.error("%s (no conversation to open a ticket on)", summary)


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
    """The provider's answer to the call. A webhook may have settled the refund first: it stands."""
    row = session.get(m.Refund, refund_id)
    payment = session.get(m.Payment, row.payment_id)
    order = lock_order(session, payment.order_id)
    session.refresh(row)
    row.provider_refund_id = row.provider_refund_id or provider_refund_id
    if row.status != RefundStatus.PENDING:
        return row
    row.status = status
    if status != RefundStatus.PENDING:
        row.completed_at = clock.now()
        _settle(session, payment, order)
        _follow_return(session, row, order)
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


def _settle(session: Session, payment: m.Payment, order: m.Order) -> None:
    """The payment's status (and its order's, when it is what paid the order) from what was really
    given back; with nothing given back, what it was before: paid, or flagged for staff."""
    session.flush()
    given_back = _refunded(session, payment.id, (RefundStatus.SUCCEEDED,))
    if given_back >= payment.amount:
        payment.status, order_status = PaymentStatus.REFUNDED, OrderPaymentStatus.REFUNDED
    elif given_back > 0:
        payment.status, order_status = PaymentStatus.PARTIALLY_REFUNDED, OrderPaymentStatus.PARTIALLY_REFUNDED
    elif payment.flag_reason:
        payment.status, order_status = PaymentStatus.FLAGGED, OrderPaymentStatus.FLAGGED
    else:
        payment.status, order_status = PaymentStatus.PAID, OrderPaymentStatus.PAID
    if not _paid_by_another(session, order, payment):
        order.payment_status = order_status


def _follow_return(session: Session, row: m.Refund, order: m.Order) -> None:
    """A return's refund that succeeded (its call's answer or a webhook, whichever came first) settles the
    return, once, and the customer hears it. An exchange's refund is the difference in price of a cheaper
    replacement: the customer hears it, and the exchange stays as it is."""
    if row.return_id is None or row.status != RefundStatus.SUCCEEDED:
        return
    returns = m.Return.__table__
    moved = session.execute(
        returns.update()
        .where(
            returns.c.id == row.return_id,
            returns.c.outcome == ReturnOutcome.REFUND,
            returns.c.status.in_((ReturnStatus.APPROVED, ReturnStatus.RECEIVED)),
        )
        .values(status=ReturnStatus.REFUNDED, completed_at=clock.now())
    ).rowcount
    exchange = session.execute(
        select(returns.c.id).where(returns.c.id == row.return_id, returns.c.outcome == ReturnOutcome.EXCHANGE)
    ).first()
    if moved or exchange is not None:
        notifications.notify(session, order, NotificationEvent.RETURN_REFUNDED, occurrence=row.return_id)


def _paid_by_another(session: Session, order: m.Order, payment: m.Payment) -> bool:
    """Another payment, not flagged, took the order's money: refunds of this one leave the order's status."""
    return (
        session.execute(
            select(m.Payment.id)
            .where(
                m.Payment.order_id == order.id,
                m.Payment.id != payment.id,
                m.Payment.flag_reason.is_(None),
                m.Payment.status.in_((*MONEY_IN, PaymentStatus.REFUNDED)),
            )
            .limit(1)
        ).first()
        is not None
    )


def _refunded(
    session: Session, payment_id: int, statuses: Iterable[str] = (RefundStatus.PENDING, RefundStatus.SUCCEEDED)
) -> Decimal:
    total = session.execute(
        select(func.coalesce(func.sum(m.Refund.amount), 0)).where(
            m.Refund.payment_id == payment_id, m.Refund.status.in_(tuple(statuses))
        )
    ).scalar()
    return round_money(Decimal(str(total)))  # SQLite sums money as floats
