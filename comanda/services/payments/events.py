"""Applying what providers (and staff, for SPEI and cash) say happened to a payment, exactly once."""

from __future__ import annotations

from typing import Callable, Dict, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate
from comanda.enums import (
    FlagReason,
    HandoffReason,
    NotificationEvent,
    OrderPaymentStatus,
    OrderStatus,
    PaymentEventKind,
    PaymentEventOutcome,
    PaymentMethod,
    PaymentProviderName,
    PaymentStatus,
    ReturnStatus,
)
from comanda.errors import InvalidInput, NotFound, OutOfStock
from comanda.money import money, positive_money
from comanda.services import handoff, notifications, orders, reservations
from comanda.services.payment_provider import ProviderEvent
from comanda.services.payments.common import (
    PAYABLE,
    audit,
    lock_order,
    log,
    move,
    open_payment,
    payments_of,
)
from comanda.services.payments.refunds import apply_refund_updates
from comanda.services.payments.sweep import expire_order


def apply_event(session: Session, event: ProviderEvent) -> str:
    """Apply a verified webhook once; its outcome (also kept on the payment_events row): paid,
    duplicate, declined, expired, pending, ignored, why it was flagged (amount_mismatch,
    currency_mismatch, already_paid, order_closed, stock_gone, credit_returned), or for refunds refund_succeeded or
    refund_failed. RetryLater (nothing recorded) when a refund webhook overtook Comanda's own record."""
    row = _record_event(session, event)
    if row is None:
        return PaymentEventOutcome.DUPLICATE
    if event.kind == PaymentEventKind.REFUND:
        row.payment_id, row.outcome = apply_refund_updates(session, event)
        return row.outcome
    payment = _payment_for(session, event)
    if payment is None:
        log.warning(
            "%s event %s names no payment Comanda knows (order %s)",
            event.provider,
            event.event_id,
            event.order_reference,
        )
        row.outcome = PaymentEventOutcome.IGNORED
        return row.outcome
    return _apply(session, row, payment, event)


def mark_spei_received(
    session: Session, order_id: int, amount: object, actor: str, bank_reference: Optional[str] = None
) -> str:
    """Staff saw the transfer in the bank: the SPEI payment is applied like a provider's "paid" event
    (the amount is checked, pressing twice changes nothing); the outcome as ``apply_event`` says. An
    amount that is not whole cents above 0 ("36.001", "NaN", "-36") is refused (InvalidInput), never
    rounded; so is a bank reference already recorded for another payment: one transfer pays once."""
    received = positive_money(amount)
    payment = session.execute(
        select(m.Payment)
        .where(m.Payment.order_id == order_id, m.Payment.provider == PaymentProviderName.SPEI)
        .order_by(m.Payment.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if payment is None:
        raise NotFound(f"order {order_id} has no SPEI payment", order_id=order_id)
    if bank_reference:
        other = session.execute(
            select(m.Payment.order_id).where(
                m.Payment.provider == PaymentProviderName.SPEI,
                m.Payment.provider_payment_id == bank_reference,
                m.Payment.id != payment.id,
            )
        ).scalar_one_or_none()
        if other is not None:
            raise InvalidInput(f"bank reference {bank_reference!r} already paid order {other}", order_id=other)
    audit(session, actor, "spei.received", payment, amount=str(received), bank_reference=bank_reference)
    event = ProviderEvent(
        provider=PaymentProviderName.SPEI,
        event_id=f"spei:{payment.id}",
        event_type="spei.received",
        kind=PaymentEventKind.PAID,
        order_reference=str(order_id),
        link_id=None,
        payment_id=bank_reference or f"spei:{payment.id}",
        amount=received,
        currency=payment.currency,
        payload={"actor": actor, "bank_reference": bank_reference},
    )
    row = _record_event(session, event)
    return PaymentEventOutcome.DUPLICATE if row is None else _apply(session, row, payment, event)


def collect_cash(session: Session, order: m.Order, actor: str) -> Optional[m.Payment]:
    """A cash order handed over at the counter was paid there: a paid cash payment row of what it owed (the
    total, less store credit or an exchange's value), so the sale is on the books (and can be invoiced) like any
    other. Nothing for orders paid otherwise, or twice."""
    if order.payment_method != PaymentMethod.CASH or order.payment_status != OrderPaymentStatus.UNPAID:
        return None
    payment = m.Payment(
        order_id=order.id,
        provider=PaymentProviderName.CASH,
        method=PaymentMethod.CASH,
        status=PaymentStatus.PAID,
        amount=orders.amount_due(session, order),
        currency=order.currency,
        paid_at=clock.now(),
    )
    session.add(payment)
    order.payment_status, order.paid_at = OrderPaymentStatus.PAID, payment.paid_at
    session.flush()
    audit(session, actor, "cash.collected", payment, amount=str(payment.amount))
    return payment


def _record_event(session: Session, event: ProviderEvent) -> Optional[m.PaymentEvent]:
    """The event's row, unless the provider sent this event id before (the replay guard: the unique
    (provider, event id) decides, also between concurrent deliveries)."""
    row = m.PaymentEvent(
        provider=event.provider,
        event_id=event.event_id,
        event_type=event.event_type,
        payload=event.payload,
        received_at=clock.now(),
    )
    return row if insert_unless_duplicate(session, row) is not None else None


def _apply(session: Session, row: m.PaymentEvent, payment: m.Payment, event: ProviderEvent) -> str:
    """The event's effect on its payment, with the order locked first; the outcome, kept on ``row``."""
    order = lock_order(session, payment.order_id)
    session.refresh(payment)
    if event.kind == PaymentEventKind.PAID and _another_charge(payment, event):
        extra = _payment_of_charge(session, payment, event)
        if extra is None:  # a concurrent event for that same charge recorded it first
            row.payment_id, row.outcome = payment.id, PaymentEventOutcome.DUPLICATE
            return row.outcome
        payment = extra
    row.payment_id, row.outcome = payment.id, _APPLY[event.kind](session, order, payment, event)
    return row.outcome


def _payment_for(session: Session, event: ProviderEvent) -> Optional[m.Payment]:
    """By the provider's payment id, else its link. A provider that names only the order (Mercado Pago's
    notifications carry no preference) gets the order's latest payment with it that no provider payment
    has taken yet, else its latest: a second payment for the order then lands on another link's row and
    is flagged ``already_paid``, not dropped as a duplicate of the first."""
    P = m.Payment
    for column, value in ((P.provider_payment_id, event.payment_id), (P.provider_link_id, event.link_id)):
        if value:
            found = session.execute(select(P).where(P.provider == event.provider, column == value)).scalar_one_or_none()
            if found is not None:
                return found
    if not (event.order_reference or "").isdigit():
        return None
    candidates = list(
        session.execute(
            select(P)
            .where(P.provider == event.provider, P.order_id == int(event.order_reference or 0))
            .order_by(P.id.desc())
        ).scalars()
    )
    untaken = (p for p in candidates if p.status in PAYABLE and not p.provider_payment_id)
    return next(untaken, candidates[0] if candidates else None)


def _paid(session: Session, order: m.Order, payment: m.Payment, event: ProviderEvent) -> str:
    if (event.currency or "").upper() != payment.currency.upper():
        return _flag(session, order, payment, FlagReason.CURRENCY_MISMATCH, PAYABLE, event)
    if event.amount is None or money(event.amount) != payment.amount:
        return _flag(session, order, payment, FlagReason.AMOUNT_MISMATCH, PAYABLE, event)
    if order.payment_status == OrderPaymentStatus.UNPAID and payment.amount != orders.amount_due(session, order):
        return _flag(session, order, payment, FlagReason.CREDIT_RETURNED, PAYABLE, event)
    if not move(
        session,
        payment,
        PAYABLE,
        status=PaymentStatus.PAID,
        paid_at=clock.now(),
        provider_payment_id=event.payment_id or payment.provider_payment_id,
        card_funding=event.card_funding or payment.card_funding,
    ):
        return PaymentEventOutcome.DUPLICATE
    if order.payment_status not in (OrderPaymentStatus.UNPAID, OrderPaymentStatus.FLAGGED):
        return _flag(session, order, payment, FlagReason.ALREADY_PAID, (PaymentStatus.PAID,), event)
    if order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED):
        return _flag(session, order, payment, FlagReason.ORDER_CLOSED, (PaymentStatus.PAID,), event)
    try:
        with session.begin_nested():
            orders.enter_queue(session, order, f"payment:{payment.id}")
    except OutOfStock:
        return _flag(session, order, payment, FlagReason.STOCK_GONE, (PaymentStatus.PAID,), event)
    order.payment_status, order.paid_at, order.payment_method = OrderPaymentStatus.PAID, clock.now(), payment.method
    for other in payments_of(session, order.id, (PaymentStatus.PENDING,)):
        move(session, other, (PaymentStatus.PENDING,), status=PaymentStatus.EXPIRED)
    if not _exchange_paid(session, order):
        notifications.notify(session, order, NotificationEvent.PAID)
    session.flush()
    return PaymentEventOutcome.PAID


def _exchange_paid(session: Session, order: m.Order) -> bool:
    """The order is an exchange's new sale whose difference in price was just paid: the return is exchanged,
    once, and the customer hears it as such (the new ticket) instead of a plain "paid"."""
    returns = m.Return.__table__
    returned = session.execute(
        select(returns.c.id, returns.c.order_id).where(returns.c.exchange_order_id == order.id)
    ).first()
    if returned is None:
        return False
    moved = session.execute(
        returns.update()
        .where(returns.c.id == returned.id, returns.c.status == ReturnStatus.RECEIVED)
        .values(status=ReturnStatus.EXCHANGED, completed_at=clock.now())
    ).rowcount
    if moved:
        notifications.notify(
            session, session.get(m.Order, returned.order_id), NotificationEvent.RETURN_EXCHANGED, occurrence=returned.id
        )
    return True


def _another_charge(payment: m.Payment, event: ProviderEvent) -> bool:
    """The provider reports a payment other than the one this payment row already took: a second real
    charge (Mercado Pago approving two payments on one preference, two Pay presses on one sandbox link)."""
    return bool(
        payment.status not in PAYABLE
        and event.payment_id
        and payment.provider_payment_id
        and payment.provider_payment_id != event.payment_id
    )


def _payment_of_charge(session: Session, taken: m.Payment, event: ProviderEvent) -> Optional[m.Payment]:
    """A payment row of its own for the provider's other charge, expecting what ``taken`` expected; it is
    then applied like any payment (paid, or flagged: ``already_paid`` when the order was paid meanwhile).
    None when a concurrent event for the same charge made the row first (unique provider payment id)."""
    extra = m.Payment(
        order_id=taken.order_id,
        provider=taken.provider,
        method=taken.method,
        status=PaymentStatus.PENDING,
        amount=taken.amount,
        currency=taken.currency,
        provider_payment_id=event.payment_id,
    )
    if insert_unless_duplicate(session, extra) is None:
        return None
    audit(session, f"payment:{event.provider}", "payment.another_charge", extra, of_payment=taken.id)
    return extra


def _declined(session: Session, order: m.Order, payment: m.Payment, event: ProviderEvent) -> str:
    if not move(session, payment, (PaymentStatus.PENDING,), status=PaymentStatus.DECLINED):
        return PaymentEventOutcome.IGNORED  # late or reordered: the payment was paid, expired or replaced meanwhile
    if order.status == OrderStatus.PENDING_PAYMENT:
        reservation = orders.order_reservation(session, order.id)
        if reservation is not None:
            reservations.release(session, reservation.id)
    notifications.notify(session, order, NotificationEvent.DECLINED, occurrence=payment.id)
    return PaymentEventOutcome.DECLINED


def _expired_by_provider(session: Session, order: m.Order, payment: m.Payment, event: ProviderEvent) -> str:
    if not move(session, payment, (PaymentStatus.PENDING,), status=PaymentStatus.EXPIRED):
        return PaymentEventOutcome.IGNORED
    if order.status == OrderStatus.PENDING_PAYMENT and open_payment(session, order.id) is None:
        expire_order(session, order, f"payment:{payment.provider}")
    return PaymentEventOutcome.EXPIRED


def _pending(session: Session, order: m.Order, payment: m.Payment, event: ProviderEvent) -> str:
    """The customer started paying (an OXXO voucher was issued): remember the provider's payment id."""
    if payment.status == PaymentStatus.PENDING and event.payment_id and not payment.provider_payment_id:
        payment.provider_payment_id = event.payment_id
        session.flush()
    return PaymentEventOutcome.PENDING


_APPLY: Dict[str, Callable[[Session, m.Order, m.Payment, ProviderEvent], str]] = {
    PaymentEventKind.PAID: _paid,
    PaymentEventKind.DECLINED: _declined,
    PaymentEventKind.EXPIRED: _expired_by_provider,
    PaymentEventKind.PENDING: _pending,
}


def _flag(
    session: Session,
    order: m.Order,
    payment: m.Payment,
    reason: FlagReason,
    from_statuses: tuple,
    event: ProviderEvent,
) -> str:
    """Money that staff must look at: not sold, not paid; a handoff ticket and a word to the customer."""
    if not move(
        session,
        payment,
        from_statuses,
        status=PaymentStatus.FLAGGED,
        flag_reason=reason,
        provider_payment_id=payment.provider_payment_id or event.payment_id,
    ):
        return PaymentEventOutcome.DUPLICATE
    if order.payment_status == OrderPaymentStatus.UNPAID:
        order.payment_status = OrderPaymentStatus.FLAGGED
    summary = (
        f"Payment {payment.id} of order {order.id} flagged ({reason}): expected {payment.amount} "
        f"{payment.currency}, {event.provider} reported {event.amount} {event.currency}"
    )
    if reason == FlagReason.CREDIT_RETURNED:
        summary = (
            f"Order {order.id}'s store credit went back to the customer when it was cancelled or expired; then "
            f"payment {payment.id} ({event.provider}, {event.amount} {event.currency}) paid only the rest of "
            f"{order.total}. Sell it if the customer pays the difference, or refund the payment."
        )
    elif reason == FlagReason.ALREADY_PAID:
        summary = (
            f"Order {order.id} ({order.ticket_code or 'no ticket'}) was paid twice: payment {payment.id} "
            f"({event.provider} {event.payment_id}, {event.amount} {event.currency}) is a second charge. "
            f"Refund the extra charge (payment {payment.id}) to the customer."
        )
    if order.conversation_id:
        handoff.open_ticket(session, order.conversation_id, HandoffReason.PAYMENT_FLAG, summary)
    audit(
        session,
        f"payment:{event.provider}",
        "payment.flagged",
        payment,
        reason=reason,
        reported_amount=str(event.amount),
        reported_currency=event.currency,
        event_id=event.event_id,
    )
    told = NotificationEvent.PAID_TWICE if reason == FlagReason.ALREADY_PAID else NotificationEvent.FLAGGED
    notifications.notify(session, order, told, occurrence=payment.id)
    session.flush()
    return reason
