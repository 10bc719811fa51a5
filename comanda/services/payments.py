"""Payments: an order is paid exactly once, without anyone reconciling screenshots by hand.

``start_payment`` opens a payment for a ``pending_payment`` order: a provider link (card, OXXO) whose
expiry is the stock hold's, or SPEI instructions (reference and CLABE, no provider). ``apply_event``
applies a verified provider webhook: every event is a ``payment_events`` row unique per provider event
id (the replay guard), and the payment moves by conditional UPDATEs on its status, so concurrent
duplicates pay once. Paid → ``orders.enter_queue`` (the sale in the ledger, the day's ticket) and a
"paid" notification; an amount or currency that does not match, a payment for an order already paid or
closed, or a late payment whose stock is gone → the payment is flagged for staff (handoff ticket
``payment_flag``), nothing is sold. Declined → the hold is released and the order waits for a new link
(``new_link``) until its hold time passes, when the sweep (``expire_due``) expires it.

Lock order, the same on every path that changes an order's payment (webhooks, the sweep, new links,
staff): the order row first (SELECT … FOR UPDATE), then its payments, reservation and stock levels,
then the ticket counter. Calls to providers never happen while a webhook's transaction is open; the
sweep closes links after its commit and refunds run in three steps (row, provider, outcome). Only
``start_payment`` and ``new_link`` call a provider (make a link, close the one it replaces) inside
their caller's transaction, with the order locked: keep that transaction to the call alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate, new_session, transaction
from comanda.errors import ComandaError, ConfigError, InvalidInput, NotFound, OutOfStock
from comanda.i18n import t
from comanda.money import money
from comanda.services import handoff, notifications, orders, reservations
from comanda.services.payment_provider import (
    LinkLine,
    LinkRequest,
    PaymentProvider,
    ProviderError,
    ProviderEvent,
    ProviderPayment,
)
from comanda.settings import setting

log = logging.getLogger(__name__)

LINK_METHODS = ("card", "oxxo")
PAYABLE = ("pending", "expired", "declined")  # a payment a provider may still report as paid
MONEY_IN = ("paid", "flagged", "partially_refunded")  # money received and not all given back
MANUAL_PROVIDERS = ("spei", "cash")  # staff collect and give back by hand
PAYMENTS = m.Payment.__table__

ProviderFor = Callable[[str], PaymentProvider]


class NotPayable(ComandaError):
    """The order is not waiting for a payment (paid, cancelled, cash), or its method has no link."""

    code = "not_payable"


class RefundRefused(ComandaError):
    code = "refund_refused"


@dataclass(frozen=True)
class SpeiDetails:
    reference: str  # the numeric reference the customer types in their banking app
    clabe: str
    bank: str
    beneficiary: str


@dataclass(frozen=True)
class PaymentInstructions:
    """What the chat sends: the link (a WhatsApp URL button) or the SPEI details, the amount and
    until when the stock is held."""

    payment_id: int
    order_id: int
    method: str
    amount: Decimal
    currency: str
    expires_at: datetime
    link_url: Optional[str] = None
    spei: Optional[SpeiDetails] = None


@dataclass(frozen=True)
class ReconciliationRow:
    # ok | missing | missing_at_provider | duplicated | amount_mismatch | unpaid_link
    status: str
    provider: str
    order_id: Optional[int]
    ticket: Optional[str]
    payment_id: Optional[int]
    provider_payment_id: Optional[str]
    ours: Optional[Decimal]
    theirs: Optional[Decimal]
    note: str = ""


# --- opening a payment ---------------------------------------------------------------------------


def start_payment(session: Session, order: m.Order, provider: PaymentProvider) -> PaymentInstructions:
    """Open the order's payment by its method: a provider link that expires with the stock hold, or
    SPEI instructions. Idempotent while a payment is open: it is returned again. Call it in its own
    transaction after ``orders.place_order`` committed: a provider failure (ProviderError) then
    leaves the order and its hold, and "send me the link again" (``new_link``) can retry."""
    order = _lock_order(session, order.id)
    if order.status != "pending_payment":
        raise NotPayable(
            f"order {order.id} is {order.status}: nothing to pay now", order_id=order.id, status=order.status
        )
    current = _open_payment(session, order.id)
    if current is not None:
        return _instructions(session, current)
    reservation = orders.order_reservation(session, order.id)
    if reservation is None or reservation.status != "active" or reservation.expires_at <= clock.now():
        raise NotPayable(f"order {order.id} holds no stock: ask for a new link", order_id=order.id)
    return _create_payment(session, order, order.payment_method, reservation.expires_at, provider)


def new_link(
    session: Session, order_id: int, provider: PaymentProvider, method: Optional[str] = None
) -> PaymentInstructions:
    """ "Send me the link again": the open link is closed and a new one made (optionally for another
    method: card, oxxo or spei), with the stock held again for the business's hold time. Works for an
    order still waiting (a declined card) and for one that expired; OutOfStock when the stock went
    meanwhile. Making and closing links calls the provider, so call this in its own short transaction;
    the old links are closed last, once the new payment exists (a failure before leaves them open)."""
    order = _lock_order(session, order_id)
    if order.status not in ("pending_payment", "expired") or order.payment_status != "unpaid":
        raise NotPayable(
            f"order {order.id} is {order.status} and {order.payment_status}: no new link",
            order_id=order.id,
            status=order.status,
        )
    replaced = []  # the open links this provider can close
    for payment in _payments(session, order.id, ("pending",)):
        link_id = payment.provider_link_id if payment.provider == provider.name else None
        if _move(session, payment, ("pending",), status="expired") and link_id:
            replaced.append(link_id)
    hold = timedelta(minutes=session.get(m.Business, order.business_id).reservation_hold_minutes)
    reservation = orders.order_reservation(session, order.id)
    table = m.Reservation.__table__
    extended = (
        reservation is not None
        and session.execute(
            update(table)
            .where(table.c.id == reservation.id, table.c.status == "active")
            .values(expires_at=clock.now() + hold)
        ).rowcount
        == 1
    )
    if not extended:
        needs = {line.stock_item_id: line.quantity for line in reservation.lines} if reservation else {}
        reservation = reservations.reserve(session, order.store_id, needs, order_id=order.id)
    session.refresh(reservation)
    if order.status == "expired":
        orders.set_status(session, order, "pending_payment", "payments:new_link")
        order.cancelled_at = None
    order.payment_method = method or order.payment_method
    instructions = _create_payment(session, order, order.payment_method, reservation.expires_at, provider)
    for link_id in replaced:
        _close_link(lambda _name: provider, provider.name, link_id)
    return instructions


def _create_payment(
    session: Session, order: m.Order, method: str, expires_at: datetime, provider: PaymentProvider
) -> PaymentInstructions:
    if method == "spei":
        payment = m.Payment(
            order_id=order.id,
            provider="spei",
            method="spei",
            status="pending",
            amount=order.total,
            currency=order.currency,
            expires_at=expires_at,
            reference=spei_reference(order.id),
        )
    elif method in LINK_METHODS:
        link = provider.create_link(_link_request(session, order, method, expires_at))
        payment = m.Payment(
            order_id=order.id,
            provider=provider.name,
            method=method,
            status="pending",
            amount=order.total,
            currency=order.currency,
            expires_at=expires_at,
            provider_link_id=link.link_id,
            link_url=link.url,
        )
    else:
        raise NotPayable(f"{method!r} orders are paid at the counter: no link", order_id=order.id, method=method)
    session.add(payment)
    session.flush()
    _audit(session, "payments", "payment.opened", payment, method=method, amount=str(payment.amount))
    return _instructions(session, payment)


def spei_reference(order_id: int) -> str:
    """SPEI's numeric reference (7 digits): the order id, so staff find the order from the bank statement."""
    return f"{order_id % 10_000_000:07d}"


def _instructions(session: Session, payment: m.Payment) -> PaymentInstructions:
    spei = None
    if payment.method == "spei":
        clabe = setting("COMANDA_SPEI_CLABE")
        if not clabe:
            raise ConfigError("COMANDA_SPEI_CLABE is not set: SPEI transfers cannot be offered")
        order = session.get(m.Order, payment.order_id)
        spei = SpeiDetails(
            reference=payment.reference,
            clabe=clabe,
            bank=setting("COMANDA_SPEI_BANK"),
            beneficiary=setting("COMANDA_SPEI_BENEFICIARY") or session.get(m.Business, order.business_id).name,
        )
    return PaymentInstructions(
        payment_id=payment.id,
        order_id=payment.order_id,
        method=payment.method,
        amount=payment.amount,
        currency=payment.currency,
        expires_at=payment.expires_at,
        link_url=payment.link_url,
        spei=spei,
    )


def _link_request(session: Session, order: m.Order, method: str, expires_at: datetime) -> LinkRequest:
    store = session.get(m.Store, order.store_id)
    lines = [
        LinkLine(orders.line_name(session, line, order.language), line.quantity, line.unit_price)
        for line in order.lines
    ]
    if order.delivery_fee:
        lines.append(LinkLine(t("payments.delivery_fee", order.language), 1, order.delivery_fee))
    return LinkRequest(
        order_reference=str(order.id),
        method=method,
        amount=order.total,
        currency=order.currency,
        title=t("payments.order", order.language, order=order.id, store=store.name),
        lines=tuple(lines),
        language=order.language,
        expires_at=expires_at,
    )


# --- applying provider events --------------------------------------------------------------------


def apply_event(session: Session, event: ProviderEvent) -> str:
    """Apply a verified webhook once; its outcome (also kept on the payment_events row): paid,
    duplicate, declined, expired, pending, ignored, or why it was flagged (amount_mismatch,
    currency_mismatch, already_paid, order_closed, stock_gone)."""
    row = _record_event(session, event)
    if row is None:
        return "duplicate"
    payment = _payment_for(session, event)
    if payment is None:
        log.warning(
            "%s event %s names no payment Comanda knows (order %s)",
            event.provider,
            event.event_id,
            event.order_reference,
        )
        row.outcome = "ignored"
        return row.outcome
    return _apply(session, row, payment, event)


def mark_spei_received(
    session: Session, order_id: int, amount: Decimal, actor: str, bank_reference: Optional[str] = None
) -> str:
    """Staff saw the transfer in the bank: the SPEI payment is applied like a provider's "paid" event
    (the amount is checked, pressing twice changes nothing); the outcome as ``apply_event`` says. A bank
    reference already recorded for another payment is refused (InvalidInput): one transfer pays once."""
    payment = session.execute(
        select(m.Payment)
        .where(m.Payment.order_id == order_id, m.Payment.provider == "spei")
        .order_by(m.Payment.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if payment is None:
        raise NotFound(f"order {order_id} has no SPEI payment", order_id=order_id)
    if bank_reference:
        other = session.execute(
            select(m.Payment.order_id).where(
                m.Payment.provider == "spei",
                m.Payment.provider_payment_id == bank_reference,
                m.Payment.id != payment.id,
            )
        ).scalar_one_or_none()
        if other is not None:
            raise InvalidInput(f"bank reference {bank_reference!r} already paid order {other}", order_id=other)
    _audit(session, actor, "spei.received", payment, amount=str(money(amount)), bank_reference=bank_reference)
    event = ProviderEvent(
        provider="spei",
        event_id=f"spei:{payment.id}",
        event_type="spei.received",
        kind="paid",
        order_reference=str(order_id),
        link_id=None,
        payment_id=bank_reference or f"spei:{payment.id}",
        amount=money(amount),
        currency=payment.currency,
        payload={"actor": actor, "bank_reference": bank_reference},
    )
    row = _record_event(session, event)
    return "duplicate" if row is None else _apply(session, row, payment, event)


def collect_cash(session: Session, order: m.Order, actor: str) -> Optional[m.Payment]:
    """A cash order handed over at the counter was paid there: a paid cash payment row, so the sale
    is on the books (and can be invoiced) like any other. Nothing for orders paid otherwise, or twice."""
    if order.payment_method != "cash" or order.payment_status != "unpaid":
        return None
    payment = m.Payment(
        order_id=order.id,
        provider="cash",
        method="cash",
        status="paid",
        amount=order.total,
        currency=order.currency,
        paid_at=clock.now(),
    )
    session.add(payment)
    order.payment_status, order.paid_at = "paid", payment.paid_at
    session.flush()
    _audit(session, actor, "cash.collected", payment, amount=str(payment.amount))
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
    order = _lock_order(session, payment.order_id)
    session.refresh(payment)
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
    found = (
        session.execute(
            select(P)
            .where(P.provider == event.provider, P.order_id == int(event.order_reference))
            .order_by(P.id.desc())
        )
        .scalars()
        .all()
    )
    return next((p for p in found if p.status in PAYABLE and not p.provider_payment_id), found[0] if found else None)


def _paid(session: Session, order: m.Order, payment: m.Payment, event: ProviderEvent) -> str:
    if (event.currency or "").upper() != payment.currency.upper():
        return _flag(session, order, payment, "currency_mismatch", PAYABLE, event)
    if event.amount is None or money(event.amount) != payment.amount:
        return _flag(session, order, payment, "amount_mismatch", PAYABLE, event)
    if not _move(
        session,
        payment,
        PAYABLE,
        status="paid",
        paid_at=clock.now(),
        provider_payment_id=event.payment_id or payment.provider_payment_id,
        card_funding=event.card_funding or payment.card_funding,
    ):
        return "duplicate"
    if order.payment_status not in ("unpaid", "flagged"):
        return _flag(session, order, payment, "already_paid", ("paid",), event)
    if order.status not in ("pending_payment", "expired"):
        return _flag(session, order, payment, "order_closed", ("paid",), event)
    try:
        with session.begin_nested():
            orders.enter_queue(session, order, f"payment:{payment.id}")
    except OutOfStock:
        return _flag(session, order, payment, "stock_gone", ("paid",), event)
    order.payment_status, order.paid_at, order.payment_method = "paid", clock.now(), payment.method
    for other in _payments(session, order.id, ("pending",)):
        _move(session, other, ("pending",), status="expired")
    notifications.notify(session, order, "paid")
    session.flush()
    return "paid"


def _declined(session: Session, order: m.Order, payment: m.Payment, event: ProviderEvent) -> str:
    if not _move(session, payment, ("pending",), status="declined"):
        return "ignored"  # late or reordered: the payment was paid, expired or replaced meanwhile
    if order.status == "pending_payment":
        reservation = orders.order_reservation(session, order.id)
        if reservation is not None:
            reservations.release(session, reservation.id)
    notifications.notify(session, order, "declined", occurrence=payment.id)
    return "declined"


def _expired_by_provider(session: Session, order: m.Order, payment: m.Payment, event: ProviderEvent) -> str:
    if not _move(session, payment, ("pending",), status="expired"):
        return "ignored"
    if order.status == "pending_payment" and _open_payment(session, order.id) is None:
        _expire_order(session, order, f"payment:{payment.provider}")
    return "expired"


def _pending(session: Session, order: m.Order, payment: m.Payment, event: ProviderEvent) -> str:
    """The customer started paying (an OXXO voucher was issued): remember the provider's payment id."""
    if payment.status == "pending" and event.payment_id and not payment.provider_payment_id:
        payment.provider_payment_id = event.payment_id
        session.flush()
    return "pending"


_APPLY: Dict[str, Callable[[Session, m.Order, m.Payment, ProviderEvent], str]] = {
    "paid": _paid,
    "declined": _declined,
    "expired": _expired_by_provider,
    "pending": _pending,
}


def _flag(
    session: Session,
    order: m.Order,
    payment: m.Payment,
    reason: str,
    from_statuses: Sequence[str],
    event: ProviderEvent,
) -> str:
    """Money that staff must look at: not sold, not paid; a handoff ticket and a word to the customer."""
    if not _move(
        session,
        payment,
        from_statuses,
        status="flagged",
        flag_reason=reason,
        provider_payment_id=payment.provider_payment_id or event.payment_id,
    ):
        return "duplicate"
    if order.payment_status == "unpaid":
        order.payment_status = "flagged"
    summary = (
        f"Payment {payment.id} of order {order.id} flagged ({reason}): expected {payment.amount} "
        f"{payment.currency}, {event.provider} reported {event.amount} {event.currency}"
    )
    if order.conversation_id:
        handoff.open_ticket(session, order.conversation_id, "payment_flag", summary)
    _audit(
        session,
        f"payment:{event.provider}",
        "payment.flagged",
        payment,
        reason=reason,
        reported_amount=str(event.amount),
        reported_currency=event.currency,
        event_id=event.event_id,
    )
    notifications.notify(session, order, "flagged", occurrence=payment.id)
    session.flush()
    return reason


# --- the expiry sweep ----------------------------------------------------------------------------


def expire_due(provider_for: ProviderFor, now: Optional[datetime] = None) -> List[int]:
    """Orders whose stock hold ran out while unpaid: hold released, order ``expired``, open payments
    expired (their links closed at the provider after the commit), customer told. Each order in its
    own short transaction, locked first like a webhook locks it; then holds that belong to no order.
    Returns the expired orders' ids."""
    now = now or clock.now()
    expired: List[int] = []
    for order_id in _due_orders(now):
        try:
            with transaction() as session:
                links = _expire_if_due(session, order_id, now)
        except orders.StatusConflict:  # a payment or a new link moved it first (SQLite locks no rows)
            continue
        if links is None:
            continue
        expired.append(order_id)
        for provider_name, link_id in links:
            _close_link(provider_for, provider_name, link_id)
    with transaction() as session:
        reservations.expire_due(session, now)
    return expired


def _due_orders(now: datetime) -> List[int]:
    R = m.Reservation
    hold_left = exists().where(and_(R.order_id == m.Order.id, R.status == "active", R.expires_at > now))
    hold_ended = exists().where(and_(R.order_id == m.Order.id, R.expires_at <= now))
    with new_session() as session:
        return (
            session.execute(
                select(m.Order.id)
                .where(m.Order.status == "pending_payment", hold_ended, ~hold_left)
                .order_by(m.Order.id)
            )
            .scalars()
            .all()
        )


def _expire_if_due(session: Session, order_id: int, now: datetime) -> Optional[List[Tuple[str, str]]]:
    """Expire one order if it is still due; the (provider, link) pairs to close, or None."""
    order = _lock_order(session, order_id)
    reservation = orders.order_reservation(session, order_id)
    if order.status != "pending_payment" or (
        reservation and reservation.status == "active" and reservation.expires_at > now
    ):
        return None
    links = []
    for payment in _payments(session, order_id, ("pending",)):
        if _move(session, payment, ("pending",), status="expired") and payment.provider_link_id:
            links.append((payment.provider, payment.provider_link_id))
    _expire_order(session, order, "payments:sweep")
    return links


def _expire_order(session: Session, order: m.Order, actor: str) -> None:
    reservation = orders.order_reservation(session, order.id)
    if reservation is not None:
        reservations.release(session, reservation.id, "expired")
    orders.set_status(session, order, "expired", actor)
    latest = _payments(session, order.id, ("expired", "declined"))
    notifications.notify(session, order, "expired", occurrence=latest[-1].id if latest else None)


def _close_link(provider_for: ProviderFor, provider_name: str, link_id: str) -> None:
    """Best effort: a link that stays open can still be paid, and a late payment is handled (sold if
    the stock is there, else flagged for a refund)."""
    try:
        provider_for(provider_name).expire_link(link_id)
    except ComandaError as exc:  # the provider refused, or is no longer configured
        log.warning("%s link %s could not be closed: %s", provider_name, link_id, exc.message)


# --- refunds -------------------------------------------------------------------------------------


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
    Raises RefundRefused (nothing to refund, too much) or ProviderError (the row is ``failed``)."""
    refund_id = _open_refund(payment_id, money(amount), reason, actor, idempotency_key, return_id)
    with new_session() as session:
        row, payment = session.get(m.Refund, refund_id), session.get(m.Payment, payment_id)
        if row.status == "succeeded":
            return row
    try:
        if payment.provider in MANUAL_PROVIDERS:
            provider_refund_id, status = None, "succeeded"
        else:
            result = provider_for(payment.provider).refund(payment.provider_payment_id, row.amount, idempotency_key)
            provider_refund_id, status = result.refund_id, result.status
    except ProviderError as exc:
        with transaction() as session:
            _finish_refund(session, refund_id, "failed", None, actor, exc.message)
        raise
    with transaction() as session:
        return _finish_refund(session, refund_id, status, provider_refund_id, actor)


def _open_refund(payment_id: int, amount: Decimal, reason: str, actor: str, key: str, return_id: Optional[int]) -> int:
    with transaction() as session:
        existing = session.execute(select(m.Refund).where(m.Refund.idempotency_key == key)).scalar_one_or_none()
        if existing is not None:
            if existing.payment_id != payment_id or existing.amount != amount:
                raise RefundRefused(f"idempotency key {key!r} was used for another refund")
            if existing.status != "failed":
                return existing.id
            existing.status = "pending"
            return existing.id
        payment = session.get(m.Payment, payment_id)
        if payment is None:
            raise NotFound(f"no payment {payment_id}", payment_id=payment_id)
        order = _lock_order(session, payment.order_id)
        session.refresh(payment)
        if payment.status not in MONEY_IN:
            raise RefundRefused(f"payment {payment_id} is {payment.status}: there is no money to give back")
        if payment.provider not in MANUAL_PROVIDERS and not payment.provider_payment_id:
            raise RefundRefused(f"payment {payment_id} names no {payment.provider} payment to refund")
        left = payment.amount - _refunded(session, payment_id)
        if amount <= 0 or amount > left:
            raise RefundRefused(f"payment {payment_id} can give back between 0.01 and {left}, not {amount}", left=left)
        row = m.Refund(
            payment_id=payment_id,
            return_id=return_id,
            amount=amount,
            status="pending",
            idempotency_key=key,
            reason=reason,
            actor=actor,
        )
        session.add(row)
        session.flush()
        _audit(session, actor, "refund.requested", payment, refund_id=row.id, amount=str(amount), order_id=order.id)
        return row.id


def _finish_refund(
    session: Session,
    refund_id: int,
    status: str,
    provider_refund_id: Optional[str],
    actor: str,
    error: Optional[str] = None,
) -> m.Refund:
    row = session.get(m.Refund, refund_id)
    payment = session.get(m.Payment, row.payment_id)
    order = _lock_order(session, payment.order_id)
    row.status, row.provider_refund_id = status, provider_refund_id
    if status != "pending":
        row.completed_at = clock.now()
    if status == "succeeded":
        given_back = _refunded(session, payment.id, ("succeeded",))
        whole = given_back >= payment.amount
        was_the_orders = payment.flag_reason != "already_paid"
        payment.status = "refunded" if whole else "partially_refunded"
        if was_the_orders:
            order.payment_status = "refunded" if whole else "partially_refunded"
    _audit(
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


def _refunded(session: Session, payment_id: int, statuses: Iterable[str] = ("pending", "succeeded")) -> Decimal:
    total = session.execute(
        select(func.coalesce(func.sum(m.Refund.amount), 0)).where(
            m.Refund.payment_id == payment_id, m.Refund.status.in_(tuple(statuses))
        )
    ).scalar()
    return money(str(total))


# --- reconciliation ------------------------------------------------------------------------------


def reconcile(
    session: Session,
    day: date,
    provider_for: ProviderFor,
    store_id: Optional[str] = None,
    provider_names: Sequence[str] = (),
) -> List[ReconciliationRow]:
    """The day's link payments (the business's local day, by when the link was made) against what
    each provider's books say: ``ok``, ``missing`` (the provider took money Comanda did not record),
    ``missing_at_provider`` (recorded as paid, unknown to the provider), ``duplicated`` (an order paid
    more than once), ``amount_mismatch``, ``unpaid_link`` (a link never paid). Providers in
    ``provider_names`` are asked even when none of the day's payments used them."""
    query = select(m.Store).order_by(m.Store.id)
    stores = session.execute(query.where(m.Store.id == store_id) if store_id else query).scalars().all()
    if not stores:
        raise NotFound(f"no store {store_id!r}", store_id=store_id)
    rows: List[ReconciliationRow] = []
    for timezone_name, store_ids in _stores_by_timezone(session, stores).items():
        start = datetime.combine(day, datetime.min.time(), ZoneInfo(timezone_name)).astimezone(timezone.utc)
        end = start + timedelta(days=1)
        ours = session.execute(
            select(m.Payment, m.Order)
            .join(m.Order, m.Order.id == m.Payment.order_id)
            .where(
                m.Order.store_id.in_(store_ids),
                m.Payment.provider.not_in(MANUAL_PROVIDERS),
                m.Payment.created_at >= start,
                m.Payment.created_at < end,
            )
            .order_by(m.Payment.id)
        ).all()
        names = sorted({payment.provider for payment, _ in ours} | set(provider_names))
        for name in names:
            # a day's links are paid up to a day later, and a provider's clock may run early
            theirs = provider_for(name).list_payments(start - timedelta(days=1), end + timedelta(days=1))
            rows += [
                row
                for row in _compare(name, [(p, o) for p, o in ours if p.provider == name], theirs, start, end)
                if row.order_id is None or _order_store(session, row.order_id) in (*store_ids, None)
            ]
    return rows


def _order_store(session: Session, order_id: int) -> Optional[str]:
    """The order's store; None for a reference that names no order here (reported wherever asked)."""
    order = session.get(m.Order, order_id)
    return order.store_id if order else None


def _stores_by_timezone(session: Session, stores: Sequence[m.Store]) -> Dict[str, List[str]]:
    grouped: Dict[str, List[str]] = {}
    for store in stores:
        grouped.setdefault(session.get(m.Business, store.business_id).timezone, []).append(store.id)
    return grouped


def _compare(
    provider: str, ours: List[Tuple[m.Payment, m.Order]], theirs: List[ProviderPayment], start: datetime, end: datetime
) -> List[ReconciliationRow]:
    by_payment = {p.payment_id: p for p in theirs}
    paid_by_link: Dict[str, List[ProviderPayment]] = {}
    for p in theirs:
        if p.status in ("paid", "refunded") and p.link_id:
            paid_by_link.setdefault(p.link_id, []).append(p)
    rows, matched, paid_orders = [], set(), {}
    for payment, order in ours:
        found = by_payment.get(payment.provider_payment_id or "") or next(
            iter(paid_by_link.get(payment.provider_link_id or "", [])), None
        )
        row = dict(
            provider=provider,
            order_id=order.id,
            ticket=order.ticket_code,
            payment_id=payment.id,
            provider_payment_id=found.payment_id if found else payment.provider_payment_id,
            ours=payment.amount,
            theirs=found.amount if found else None,
        )
        if found is not None:
            matched.add(found.payment_id)
        if payment.status in PAYABLE:
            if found is not None and found.status in ("paid", "refunded"):
                rows.append(
                    ReconciliationRow("missing", **row, note=f"the provider took it; Comanda has it {payment.status}")
                )
            else:
                rows.append(ReconciliationRow("unpaid_link", **row, note=payment.status))
            continue
        if found is None or found.status not in ("paid", "refunded"):
            rows.append(ReconciliationRow("missing_at_provider", **row, note=f"Comanda has it {payment.status}"))
        elif found.amount != payment.amount or found.currency.upper() != payment.currency.upper():
            rows.append(ReconciliationRow("amount_mismatch", **row, note=f"{found.currency} at the provider"))
        elif order.id in paid_orders:
            rows.append(ReconciliationRow("duplicated", **row, note=f"also paid by payment {paid_orders[order.id]}"))
        else:
            rows.append(ReconciliationRow("ok", **row, note=payment.status))
        paid_orders.setdefault(order.id, payment.id)
    for p in theirs:
        if p.payment_id in matched or p.status not in ("paid", "refunded") or not start <= p.created_at < end:
            continue
        order_id = int(p.order_reference) if (p.order_reference or "").isdigit() else None
        rows.append(
            ReconciliationRow(
                "missing",
                provider,
                order_id,
                None,
                None,
                p.payment_id,
                None,
                p.amount,
                note="a provider payment no Comanda payment matches",
            )
        )
    return rows


# --- small helpers -------------------------------------------------------------------------------


def _lock_order(session: Session, order_id: int) -> m.Order:
    """The order, row-locked until the transaction ends (PostgreSQL; SQLite has one writer anyway)."""
    order = session.execute(
        select(m.Order).where(m.Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id}", order_id=order_id)
    return order


def _payments(session: Session, order_id: int, statuses: Sequence[str]) -> List[m.Payment]:
    return (
        session.execute(
            select(m.Payment)
            .where(m.Payment.order_id == order_id, m.Payment.status.in_(statuses))
            .order_by(m.Payment.id)
            .execution_options(populate_existing=True)
        )
        .scalars()
        .all()
    )


def _open_payment(session: Session, order_id: int) -> Optional[m.Payment]:
    found = _payments(session, order_id, ("pending",))
    return found[-1] if found else None


def _move(session: Session, payment: m.Payment, from_statuses: Sequence[str], **values: object) -> bool:
    """Conditional UPDATE on the payment's status: of two events racing for one payment, one wins."""
    moved = (
        session.execute(
            update(PAYMENTS).where(PAYMENTS.c.id == payment.id, PAYMENTS.c.status.in_(from_statuses)).values(**values)
        ).rowcount
        == 1
    )
    session.expire(payment)
    return moved


def _audit(session: Session, actor: str, action: str, payment: m.Payment, **data: object) -> None:
    session.add(
        m.AuditEvent(
            actor=actor,
            action=action,
            entity_type="payment",
            entity_id=str(payment.id),
            data={key: value for key, value in data.items() if value is not None},
        )
    )
