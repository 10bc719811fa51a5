"""Returns, exchanges and refunds: goods come back under the business's policy, and the money, the stock and
the fiscal documents follow, each exactly once.

The life of a return::

    request ─▶ requested ─ staff approve ─▶ approved ─ goods arrive ─▶ received ─▶ refunded | credited | exchanged
              (auto-approved at once when   └ staff reject ─▶ rejected (units free again, replacement released)
               within the limit and the conditions)

- **Policy from the business's data**: ``products.returnable``, the window (``products.return_window_days`` or
  ``businesses.return_window_days``, counted in the business's days from the sale, the last day included), the
  condition returned units must be in (``products.return_condition``), the auto-approval limit
  (``businesses.auto_approve_refund_up_to``) and when the money goes back (``businesses.return_refund_on``).
- **Never more than was sold**: each line's units are taken with one guarded ``UPDATE order_lines SET
  returned_quantity = returned_quantity + q WHERE returned_quantity + q <= quantity``; a rejection gives them back.
- **Every move is a conditional UPDATE on the return's status**: of two people approving (or receiving) one
  return at once exactly one moves it, and the refund carries the key ``return:<id>``, so it happens once.
- **Money** (``settle``, outside any open transaction: providers are called): a refund through the payment's
  provider (cash and SPEI are given back by staff, who record the reference: ``record_manual_refund``), store
  credit (``store_credit_movements``), or the exchange's replacement sold as a new order with its own ticket,
  a difference in price charged like any order's (a link; cash at the counter) or refunded under the same key.
  Then, when the sale was invoiced (on its own or in a factura global), the credit note (CFDI de egreso).
- **The customer hears each step** through the order's notifications (``return_approved`` … ``return_credit_note``;
  ``return_exchange_due`` on the exchange's new sale, whose link the chat sends).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate, new_session, savepoint, transaction
from comanda.enums import (
    Fulfilment,
    HandoffReason,
    InvoiceKind,
    ItemCondition,
    NotificationEvent,
    OrderPaymentStatus,
    OrderStatus,
    PaymentMethod,
    PaymentProviderName,
    ReceivedCondition,
    RefundMoment,
    RefundStatus,
    ReturnOutcome,
    ReturnProblem,
    ReturnReason,
    ReturnStatus,
    StaffTask,
    StoreCreditKind,
)
from comanda.errors import ComandaError, NotFound, OutOfStock
from comanda.money import money, round_money
from comanda.services import handoff, notifications, orders, payments, reservations
from comanda.services.audit import Actor, record
from comanda.services.cfdi.credit_notes import issue_credit_note
from comanda.services.cfdi.documents import CfdiIssuer
from comanda.services.cfdi.lifecycle import ISSUED
from comanda.services.payment_provider import ProviderError
from comanda.services.payments.common import LINK_METHODS, MANUAL_PROVIDERS, MONEY_IN, ProviderFor, lock_order
from comanda.services.products import fold

log = logging.getLogger(__name__)

RETURNS = m.Return.__table__
LINES = m.OrderLine.__table__
HANDED_OVER = (OrderStatus.PICKED_UP, OrderStatus.DELIVERED)
PAID = (OrderPaymentStatus.PAID, OrderPaymentStatus.PARTIALLY_REFUNDED)
# A declared condition satisfies the policy's when it is at least as strict: unopened ⊃ unused ⊃ any.
STRICTNESS = {ItemCondition.ANY: 0, ItemCondition.UNUSED: 1, ItemCondition.UNOPENED: 2}
EXCHANGE_HOLD_DAYS = 14  # the replacement is held this long for the goods to come back
STORE_CREDIT_FORM = "17"  # SAT c_FormaPago "Compensación": a credit note settled against later purchases
OPEN = (ReturnStatus.REQUESTED, ReturnStatus.APPROVED, ReturnStatus.RECEIVED)
FINISHED = {
    ReturnOutcome.REFUND: ReturnStatus.REFUNDED,
    ReturnOutcome.CREDIT: ReturnStatus.CREDITED,
    ReturnOutcome.EXCHANGE: ReturnStatus.EXCHANGED,
}


class ReturnRefused(ComandaError):
    """The return cannot go as asked; ``problem`` (a ReturnProblem) says why, ``params`` the details."""

    code = "return_refused"

    def __init__(self, problem: ReturnProblem, message: str, **params: Any) -> None:
        super().__init__(message, problem=str(problem), **params)
        self.problem = problem


class ReturnConflict(ReturnRefused):
    """Someone moved the return first (approved, rejected, received it): this step no longer applies."""

    code = "return_conflict"


@dataclass(frozen=True)
class ReturnRequest:
    order_id: int
    lines: Mapping[int, int]  # order line id → units coming back
    outcome: str = ReturnOutcome.REFUND
    reason_code: str = ReturnReason.OTHER
    reason: Optional[str] = None  # the customer's words
    declared_condition: Optional[str] = None  # unopened | unused | any (used)
    replacement_sku: Optional[str] = None  # exchange: a product's or a variant's SKU


@dataclass(frozen=True)
class Returnable:
    """A line of a sale that can still come back: what the chat lists."""

    order_line_id: int
    order_id: int
    order: str  # C-042
    sku: str
    description: str
    units_left: int
    unit_amount: Decimal
    condition: str
    last_day: Any  # date


# --- the policy -------------------------------------------------------------------------------------------------


def last_day(session: Session, order: m.Order, product: m.Product) -> Any:
    """The last local day a unit of ``product`` from ``order`` may be returned: the sale's day + the window."""
    business = session.get(m.Business, order.business_id)
    sold = (order.paid_at or order.confirmed_at or order.created_at).astimezone(ZoneInfo(business.timezone))
    days = product.return_window_days if product.return_window_days is not None else business.return_window_days
    return sold.date() + timedelta(days=days)


def condition_met(required: str, declared: Optional[str]) -> bool:
    required_level = STRICTNESS[ItemCondition(required)]
    parsed = ItemCondition.parse(declared) if declared else None
    return required_level == 0 or (parsed is not None and STRICTNESS[parsed] >= required_level)


def line_problem(session: Session, order: m.Order, line: m.OrderLine) -> Optional[ReturnRefused]:
    """Why a line of a handed-over sale cannot come back (not returnable, the window passed), or None."""
    product = session.get(m.Product, line.product_id)
    if not product.returnable:
        return ReturnRefused(
            ReturnProblem.NOT_RETURNABLE, f"{line.sku} is not returnable", sku=line.sku, description=line.description
        )
    deadline = last_day(session, order, product)
    business = session.get(m.Business, order.business_id)
    if clock.local_date(business.timezone) > deadline:
        return ReturnRefused(
            ReturnProblem.WINDOW_PASSED,
            f"{line.sku}: returns closed on {deadline.isoformat()}",
            sku=line.sku,
            description=line.description,
            last_day=deadline.isoformat(),
        )
    return None


def returnable_lines(
    session: Session, customer_id: int, store_id: str, order_id: Optional[int] = None
) -> List[Returnable]:
    """The customer's lines at this store that can still come back (their own orders only), newest first."""
    query = select(m.Order).where(
        m.Order.customer_id == customer_id,
        m.Order.store_id == store_id,
        m.Order.status.in_(HANDED_OVER),
        m.Order.payment_status.in_(PAID),
    )
    if order_id is not None:
        query = query.where(m.Order.id == order_id)
    found: List[Returnable] = []
    for order in session.execute(query.order_by(m.Order.id.desc()).limit(20)).scalars():
        for line in order.lines:
            left = line.quantity - line.returned_quantity
            if left <= 0 or line_problem(session, order, line) is not None:
                continue
            product = session.get(m.Product, line.product_id)
            found.append(
                Returnable(
                    line.id,
                    order.id,
                    orders.order_number(order),
                    line.sku,
                    line.description,
                    left,
                    round_money(line.line_total / line.quantity),
                    product.return_condition,
                    last_day(session, order, product),
                )
            )
    return found


def find_order(session: Session, customer_id: int, store_id: str, ticket: str) -> Optional[m.Order]:
    """The customer's own order at this store that a ticket ("C-042", the latest with that code) or number names."""
    text = ticket.strip().upper()
    query = select(m.Order).where(m.Order.customer_id == customer_id, m.Order.store_id == store_id)
    if text.isdigit():
        query = query.where(m.Order.id == int(text))
    else:
        query = query.where(m.Order.ticket_code == text)
    return session.execute(query.order_by(m.Order.id.desc()).limit(1)).scalar_one_or_none()


# --- asking ------------------------------------------------------------------------------------------------------


def request_return(
    session: Session,
    customer_id: int,
    store_id: str,
    wanted: ReturnRequest,
    actor: str,
    conversation_id: Optional[str] = None,
) -> m.Return:
    """Open a return for the customer's own order at this store, in the caller's transaction; approved at once
    when it is within the auto-approval limit and meets the conditions. ReturnRefused says why not."""
    try:
        order = lock_order(session, wanted.order_id)
    except NotFound:
        order = None
    if order is None or order.customer_id != customer_id or order.store_id != store_id:
        raise ReturnRefused(ReturnProblem.NOT_YOURS, f"order {wanted.order_id} is not this customer's here")
    if order.status not in HANDED_OVER or order.payment_status not in PAID:
        raise ReturnRefused(
            ReturnProblem.NOT_HANDED_OVER, f"order {order.id} is {order.status}", order=orders.order_number(order)
        )
    outcome = ReturnOutcome.parse(wanted.outcome)
    if outcome is None:
        raise ReturnRefused(ReturnProblem.OUTCOME_NOT_ALLOWED, f"no outcome {wanted.outcome!r}")
    units = {int(line_id): int(q) for line_id, q in wanted.lines.items() if int(q) != 0}
    if not units or min(units.values()) < 0:
        raise ReturnRefused(ReturnProblem.NOTHING, "a return needs at least one unit of one line")
    lines = {line.id: line for line in order.lines}
    conditions_met = True
    returned = m.Return(
        order_id=order.id,
        customer_id=customer_id,
        store_id=store_id,
        conversation_id=conversation_id or order.conversation_id,
        status=ReturnStatus.REQUESTED,
        outcome=outcome,
        reason_code=ReturnReason.parse(wanted.reason_code) or ReturnReason.OTHER,
        reason=(wanted.reason or "")[:500] or None,
        declared_condition=ItemCondition.parse(wanted.declared_condition) if wanted.declared_condition else None,
    )
    for line_id, quantity in sorted(units.items()):
        line = lines.get(line_id)
        if line is None:
            raise ReturnRefused(ReturnProblem.NOT_YOURS, f"line {line_id} is not in order {order.id}")
        problem = line_problem(session, order, line)
        if problem is not None:
            raise problem
        _take_units(session, line, quantity)
        product = session.get(m.Product, line.product_id)
        conditions_met &= condition_met(product.return_condition, returned.declared_condition)
        amount = round_money(line.line_total * quantity / line.quantity)
        returned.lines.append(m.ReturnLine(order_line_id=line.id, quantity=quantity, amount=amount))
    returned.refund_amount = sum((line.amount for line in returned.lines), Decimal(0))
    if outcome == ReturnOutcome.EXCHANGE:
        _hold_replacement(session, order, returned, wanted.replacement_sku)
    elif outcome == ReturnOutcome.REFUND:
        payment = money_payment(session, order.id)
        if payment is None:
            raise ReturnRefused(ReturnProblem.NO_PAYMENT, f"order {order.id} has no payment to refund")
        if payment.provider == PaymentProviderName.STORE_CREDIT:  # the money goes back where it came from
            returned.outcome = ReturnOutcome.CREDIT
    session.add(returned)
    session.flush()
    business = session.get(m.Business, order.business_id)
    record(
        session,
        Actor(actor),
        "return.requested",
        "return",
        returned.id,
        order_id=order.id,
        amount=str(returned.refund_amount),
    )
    if conditions_met and returned.refund_amount <= business.auto_approve_refund_up_to:
        # the customer hears it from whoever asked (the chat says so at once): no notification
        _move(session, returned, (ReturnStatus.REQUESTED,), ReturnStatus.APPROVED, "policy", auto_approved=True)
    return returned


def _take_units(session: Session, line: m.OrderLine, quantity: int) -> None:
    """The units, if that many are left: the database decides, so two returns racing never add up to more."""
    taken = session.execute(
        update(LINES)
        .where(LINES.c.id == line.id, LINES.c.returned_quantity + quantity <= LINES.c.quantity)
        .values(returned_quantity=LINES.c.returned_quantity + quantity)
    ).rowcount
    session.refresh(line, ["returned_quantity"])
    if not taken:
        left = line.quantity - line.returned_quantity
        raise ReturnRefused(
            ReturnProblem.EXCEEDS_SALE,
            f"{line.sku}: {quantity} asked, {left} of {line.quantity} left to return",
            sku=line.sku,
            description=line.description,
            left=left,
            sold=line.quantity,
        )


def _hold_replacement(session: Session, order: m.Order, returned: m.Return, sku: Optional[str]) -> None:
    """An exchange holds its replacement at once (a returnable product or variant: the same, another size or
    colour, another product), as many units, at its price now: a difference in price is settled on receipt."""
    if len(returned.lines) != 1 or not sku:
        raise ReturnRefused(ReturnProblem.REPLACEMENT_UNKNOWN, "an exchange names one line and its replacement")
    variant = session.execute(
        select(m.ProductVariant)
        .join(m.Product)
        .where(m.ProductVariant.sku == sku, m.Product.business_id == order.business_id, m.ProductVariant.active)
    ).scalar_one_or_none()
    product = (
        variant.product
        if variant is not None
        else session.execute(
            select(m.Product).where(m.Product.sku == sku, m.Product.business_id == order.business_id, m.Product.active)
        ).scalar_one_or_none()
    )
    if product is None or (variant is None and product.variants) or not product.returnable:
        raise ReturnRefused(
            ReturnProblem.REPLACEMENT_UNKNOWN, f"no product or variant {sku!r} to exchange for", sku=sku
        )
    units = returned.lines[0].quantity
    try:
        with savepoint(session):
            held = reservations.reserve(
                session,
                order.store_id,
                reservations.needs_for(product, variant, units),
                hold_minutes=EXCHANGE_HOLD_DAYS * 24 * 60,
            )
    except OutOfStock as short:
        raise ReturnRefused(
            ReturnProblem.REPLACEMENT_OUT_OF_STOCK, short.message, sku=sku, available=short.available
        ) from None
    returned.replacement_product_id = product.id
    returned.replacement_variant_id = variant.id if variant is not None else None
    returned.replacement_reservation_id = held.id
    returned.replacement_amount = money(product.price * units)


def difference(returned: m.Return) -> Decimal:
    """An exchange's difference in price: what the replacement costs more (> 0, charged with a link or at the
    counter) or less (< 0, refunded) than what comes back; 0 for other outcomes."""
    if returned.outcome != ReturnOutcome.EXCHANGE or returned.replacement_amount is None:
        return Decimal("0.00")
    return money(returned.replacement_amount - returned.refund_amount)


# --- staff's steps ---------------------------------------------------------------------------------------------


def _move(
    session: Session, returned: m.Return, from_statuses: Sequence[str], to: str, actor: str, **values: Any
) -> None:
    """The conditional UPDATE every step is: ReturnRefused(STATUS) when someone moved it first."""
    moved = session.execute(
        update(RETURNS)
        .where(RETURNS.c.id == returned.id, RETURNS.c.status.in_(tuple(from_statuses)))
        .values(status=to, **values)
    ).rowcount
    session.refresh(returned)
    if not moved:
        raise ReturnConflict(
            ReturnProblem.STATUS,
            f"return {returned.id} is {returned.status}, not {'/'.join(from_statuses)}",
            status=returned.status,
        )
    record(session, Actor(actor), f"return.{to}", "return", returned.id, **{k: str(v) for k, v in values.items()})


def get_return(session: Session, return_id: int, store_ids: Optional[Sequence[str]] = None) -> m.Return:
    """A return, within ``store_ids`` when given (another store's is NotFound, as if it did not exist)."""
    returned = session.get(m.Return, return_id)
    if returned is None or (store_ids is not None and returned.store_id not in store_ids):
        raise NotFound(f"no return {return_id}", return_id=return_id)
    return returned


def approve(session: Session, returned: m.Return, actor: Actor) -> None:
    _move(
        session,
        returned,
        (ReturnStatus.REQUESTED,),
        ReturnStatus.APPROVED,
        actor.name,
        decided_by=actor.name,
        decided_at=clock.now(),
    )
    notifications.notify(session, _order(session, returned), NotificationEvent.RETURN_APPROVED, occurrence=returned.id)


def reject(session: Session, returned: m.Return, actor: Actor, reason: str) -> None:
    """No (with the reason the customer reads): the units may be asked for again and a held replacement goes back."""
    reason = " ".join((reason or "").split())[:500]
    if not reason:
        raise ReturnRefused(ReturnProblem.NOTHING, "a rejection needs a reason for the customer")
    _move(
        session,
        returned,
        (ReturnStatus.REQUESTED, ReturnStatus.APPROVED),
        ReturnStatus.REJECTED,
        actor.name,
        decided_by=actor.name,
        decided_at=clock.now(),
        rejection_reason=reason,
    )
    for line in returned.lines:
        session.execute(
            update(LINES)
            .where(LINES.c.id == line.order_line_id)
            .values(returned_quantity=LINES.c.returned_quantity - line.quantity)
        )
    if returned.replacement_reservation_id:
        reservations.release(session, returned.replacement_reservation_id)
    notifications.notify(session, _order(session, returned), NotificationEvent.RETURN_REJECTED, occurrence=returned.id)


def receive(session: Session, returned: m.Return, actor: Actor, condition: str) -> None:
    """The goods are at the counter: good units go back on the shelf, damaged ones are written off. Where the
    business gave the money back on approval, a refunded or credited return is received too (its status stays)."""
    found = ReceivedCondition.parse(condition)
    if found is None:
        raise ReturnRefused(ReturnProblem.NOTHING, f"condition must be good or damaged, not {condition!r}")
    received = {"received_condition": found, "received_by": actor.name, "received_at": clock.now()}
    if returned.status in (ReturnStatus.REFUNDED, ReturnStatus.CREDITED) and returned.received_at is None:
        settled = session.execute(
            update(RETURNS).where(RETURNS.c.id == returned.id, RETURNS.c.received_at.is_(None)).values(**received)
        ).rowcount
        session.refresh(returned)
        if not settled:
            raise ReturnConflict(
                ReturnProblem.STATUS, f"return {returned.id} was received already", status=returned.status
            )
        record(session, actor, "return.received", "return", returned.id, received_condition=str(found))
    else:
        _move(session, returned, (ReturnStatus.APPROVED,), ReturnStatus.RECEIVED, actor.name, **received)
    damaged = found == ReceivedCondition.DAMAGED
    for item in returned.lines:
        line = item.order_line
        item.restock = not damaged
        product = session.get(m.Product, line.product_id)
        variant = session.get(m.ProductVariant, line.variant_id) if line.variant_id else None
        needs = reservations.needs_for(product, variant, item.quantity, line.modifiers)
        note = f"return {returned.id}" + (f" damaged: {returned.reason_code}" if damaged else "")
        reservations.return_to_shelf(session, returned.store_id, needs, ("return", returned.id), note, damaged)
    notifications.notify(session, _order(session, returned), NotificationEvent.RETURN_RECEIVED, occurrence=returned.id)


def _order(session: Session, returned: m.Return) -> m.Order:
    return session.get(m.Order, returned.order_id)


# --- the money and the credit note -----------------------------------------------------------------------------


def money_payment(session: Session, order_id: int) -> Optional[m.Payment]:
    """The payment that paid the order (money in, not a second charge), which a refund goes back through."""
    return (
        session.execute(
            select(m.Payment)
            .where(m.Payment.order_id == order_id, m.Payment.status.in_(MONEY_IN), m.Payment.flag_reason.is_(None))
            .order_by(m.Payment.id)
        )
        .scalars()
        .first()
    )


@dataclass(frozen=True)
class Settled:
    """What ``settle`` did: the return's status after it, and what a person still has to do (or None)."""

    status: str
    needs_staff: Optional[str] = None  # manual_refund | refund_failed


def money_due(returned: m.Return, business: m.Business) -> bool:
    """Whether the return's money (or replacement) goes out now: after receiving, or on approval where the
    business gives it back then (never for an exchange, whose replacement waits for the goods). An exchange
    already made may still owe the refund of a cheaper replacement's difference (retried with its key)."""
    if returned.status == ReturnStatus.RECEIVED:
        return True
    if returned.outcome == ReturnOutcome.EXCHANGE:
        return returned.status == ReturnStatus.EXCHANGED and difference(returned) < 0
    return returned.status == ReturnStatus.APPROVED and business.return_refund_on == RefundMoment.APPROVED


def refund_due(returned: m.Return) -> Decimal:
    """What goes back to the customer's payment: the return's worth, or an exchange's cheaper difference."""
    if returned.outcome == ReturnOutcome.EXCHANGE:
        return max(-difference(returned), Decimal("0.00"))
    return returned.refund_amount


def settle(return_id: int, provider_for: ProviderFor, issuer: CfdiIssuer, actor: str) -> Settled:
    """Give what the return is owed, once, and document it: call with no transaction open (providers and the
    PAC are called). Safe to call again and from several places at once: the refund's key, the credit's
    unique row and the status moves make each effect happen once."""
    with new_session() as session:
        returned = get_return(session, return_id)
        business = session.get(m.Business, _order(session, returned).business_id)
        if not money_due(returned, business):
            return Settled(returned.status)
        outcome, order_id = returned.outcome, returned.order_id
    needs_staff = None
    if outcome == ReturnOutcome.REFUND:
        needs_staff = _refund(return_id, order_id, provider_for, actor)
        if needs_staff:
            return Settled(_status(return_id), needs_staff)
    elif outcome == ReturnOutcome.CREDIT:
        with transaction() as session:
            returned = get_return(session, return_id)
            if _credit(session, returned, returned.refund_amount, actor):
                _finish(session, returned, ReturnStatus.CREDITED, NotificationEvent.RETURN_CREDITED, actor)
    else:
        with transaction() as session:
            _exchange(session, get_return(session, return_id), actor)
        needs_staff = _refund(return_id, order_id, provider_for, actor)
    issue_return_credit_note(return_id, issuer, actor)
    return Settled(_status(return_id), needs_staff)


def _status(return_id: int) -> str:
    with new_session() as session:
        return get_return(session, return_id).status


def _refund(return_id: int, order_id: int, provider_for: ProviderFor, actor: str) -> Optional[str]:
    """The refund the return owes (nothing for an exchange without a cheaper replacement), through the sale's
    provider under the key ``return:<id>``; what staff must do about it, or None."""
    with new_session() as session:
        amount = refund_due(get_return(session, return_id))
        if amount <= 0:
            return None
        payment = money_payment(session, order_id)
        if payment is None:
            return _to_staff(return_id, StaffTask.REFUND_FAILED, f"order {order_id} has no payment to refund through")
        payment_id, provider = payment.id, payment.provider
    if provider == PaymentProviderName.STORE_CREDIT:  # an exchange's difference, back where the money came from
        with transaction() as session:
            returned = get_return(session, return_id)
            if _credit(session, returned, amount, actor):
                notifications.notify(
                    session, _order(session, returned), NotificationEvent.RETURN_CREDITED, occurrence=return_id
                )
        return None
    if provider in MANUAL_PROVIDERS:
        with new_session() as session:
            done = session.execute(select(m.Refund.id).where(m.Refund.idempotency_key == f"return:{return_id}")).first()
        return StaffTask.MANUAL_REFUND if done is None else None
    try:
        payments.refund(
            provider_for, payment_id, amount, f"return {return_id}", actor, f"return:{return_id}", return_id
        )
    except ProviderError as failed:
        return _to_staff(return_id, StaffTask.REFUND_FAILED, f"{provider} refused the refund: {failed.message}")
    return None


def _to_staff(return_id: int, what: str, summary: str) -> str:
    """A refund (or credit note) that did not go: a ticket tells staff (nothing is lost: the return stays where
    it was); what staff must do."""
    with transaction() as session:
        returned = get_return(session, return_id)
        text = f"Return {return_id} (order {returned.order_id}, {refund_due(returned)} MXN): {summary}"
        if returned.conversation_id:
            handoff.open_ticket(session, returned.conversation_id, HandoffReason.REFUND_FAILED, text)
        record(session, Actor("system"), f"return.{what}", "return", return_id, summary=summary)
        log.warning("%s", text)
        return what


def record_manual_refund(
    return_id: int, reference: str, provider_for: ProviderFor, issuer: CfdiIssuer, actor: str
) -> Settled:
    """Staff gave the money back by hand (cash at the counter, a SPEI transfer): recorded with its reference.
    For an exchange, the difference of a cheaper replacement."""
    reference = " ".join((reference or "").split())[:100]
    if not reference:
        raise ReturnRefused(ReturnProblem.NOTHING, "a refund given by hand needs its reference (receipt or transfer)")
    with transaction() as session:
        returned = get_return(session, return_id)
        owing = (ReturnStatus.RECEIVED, ReturnStatus.EXCHANGED)
        if (
            returned.outcome == ReturnOutcome.CREDIT
            or returned.status not in (*owing, ReturnStatus.APPROVED)
            or returned.outcome == ReturnOutcome.EXCHANGE
            and (returned.status not in owing or refund_due(returned) <= 0)
        ):
            raise ReturnRefused(
                ReturnProblem.STATUS, f"return {return_id} is {returned.status}", status=returned.status
            )
        payment = money_payment(session, returned.order_id)
        if payment is None or payment.provider not in MANUAL_PROVIDERS:
            raise ReturnRefused(ReturnProblem.NO_PAYMENT, f"order {returned.order_id} was not paid in cash or SPEI")
        returned.manual_refund_reference = reference
        payment_id, amount = payment.id, refund_due(returned)
    payments.refund(
        provider_for, payment_id, amount, f"return {return_id}: {reference}", actor, f"return:{return_id}", return_id
    )
    issue_return_credit_note(return_id, issuer, actor)
    return Settled(_status(return_id))


def _credit(session: Session, returned: m.Return, amount: Decimal, actor: str) -> bool:
    """``amount`` to the customer's store credit for the return, once (unique kind + return): whether now."""
    order = _order(session, returned)
    row = m.StoreCreditMovement(
        business_id=order.business_id,
        customer_id=returned.customer_id,
        kind=StoreCreditKind.RETURN,
        amount=amount,
        return_id=returned.id,
        actor=actor,
        note=f"return {returned.id} of order {orders.order_number(order)}",
    )
    return insert_unless_duplicate(session, row) is not None


def _exchange(session: Session, returned: m.Return, actor: str) -> None:
    """The replacement, held since the request, is sold as a new order of its own at the price it was held at,
    the goods that came back paying for it (``orders.amount_due``). Worth no more than they were: in the queue
    with its ticket at once (a cheaper one's difference is refunded by ``settle``). Costing more: cash sales pay
    the difference at the counter (in the queue at once); the others wait for it like any order, held for the
    business's hold time, and the chat sends the link (``return_exchange_due``); its payment makes the
    return exchanged (comanda.services.payments.events)."""
    if returned.status != ReturnStatus.RECEIVED or returned.exchange_order_id is not None:
        return
    order = _order(session, returned)
    product = session.get(m.Product, returned.replacement_product_id)
    variant = (
        session.get(m.ProductVariant, returned.replacement_variant_id) if returned.replacement_variant_id else None
    )
    units = returned.lines[0].quantity
    total = returned.replacement_amount
    owed = difference(returned) > 0
    method = order.payment_method or PaymentMethod.CASH
    if owed and method not in (PaymentMethod.CASH, PaymentMethod.SPEI, *LINK_METHODS):
        method = PaymentMethod.CARD  # the sale was paid with store credit: the difference by card
    new = m.Order(
        business_id=order.business_id,
        store_id=order.store_id,
        customer_id=order.customer_id,
        conversation_id=order.conversation_id,
        channel=order.channel,
        status=OrderStatus.PENDING_PAYMENT,
        payment_status=OrderPaymentStatus.UNPAID if owed else OrderPaymentStatus.PAID,
        payment_method=method,
        fulfilment=Fulfilment.PICKUP,
        customer_name=order.customer_name,
        note=f"exchange for return {returned.id} (order {orders.order_number(order)})",
        subtotal=total,
        total=total,
        language=order.language,
        paid_at=None if owed else clock.now(),
    )
    new.lines.append(
        m.OrderLine(
            product_id=product.id,
            variant_id=variant.id if variant is not None else None,
            sku=variant.sku if variant is not None else product.sku,
            description=_variant_label(product, variant),
            quantity=units,
            modifiers={},
            unit_price=round_money(total / units),
            line_total=total,
            sat_prod_serv=product.sat_prod_serv,
            sat_unit=product.sat_unit,
        )
    )
    session.add(new)
    session.flush()
    session.add(
        m.OrderStatusChange(order_id=new.id, from_status=None, to_status=OrderStatus.PENDING_PAYMENT, actor=actor)
    )
    reservation = session.get(m.Reservation, returned.replacement_reservation_id)
    reservation.order_id = new.id
    returned.exchange_order_id = new.id
    session.flush()
    if owed and method != PaymentMethod.CASH:
        hold = timedelta(minutes=session.get(m.Business, order.business_id).reservation_hold_minutes)
        reservation.expires_at = clock.now() + hold  # the link's life, as any order's
        session.flush()
        notifications.notify(session, new, NotificationEvent.RETURN_EXCHANGE_DUE)
        return
    orders.enter_queue(session, new, actor)
    _finish(session, returned, ReturnStatus.EXCHANGED, NotificationEvent.RETURN_EXCHANGED, actor)


def _variant_label(product: m.Product, variant: Optional[m.ProductVariant]) -> str:
    if variant is None:
        return product.name_es
    return f"{product.name_es} ({', '.join(str(v) for v in variant.attributes.values())})"


def _finish(session: Session, returned: m.Return, status: str, event: str, actor: str) -> None:
    _move(session, returned, (ReturnStatus.APPROVED, ReturnStatus.RECEIVED), status, actor, completed_at=clock.now())
    notifications.notify(session, _order(session, returned), event, occurrence=returned.id)


def invoice_to_credit(session: Session, order_id: int) -> Optional[m.Invoice]:
    """The CFDI the sale is in: its own Ingreso, or the factura global that covers it; None when not invoiced."""
    own = (
        session.execute(
            select(m.Invoice).where(
                m.Invoice.order_id == order_id, m.Invoice.kind == InvoiceKind.INGRESO, m.Invoice.status.in_(ISSUED)
            )
        )
        .scalars()
        .first()
    )
    if own is not None:
        return own
    return (
        session.execute(
            select(m.Invoice)
            .join(m.InvoiceOrder, m.InvoiceOrder.invoice_id == m.Invoice.id)
            .where(
                m.InvoiceOrder.order_id == order_id, m.Invoice.kind == InvoiceKind.GLOBAL, m.Invoice.status.in_(ISSUED)
            )
            .order_by(m.Invoice.id.desc())
        )
        .scalars()
        .first()
    )


def credit_note_form(returned: m.Return) -> Optional[str]:
    """The credit note's FormaPago: store credit is a compensation (17); so is an exchange, where the goods that
    came back pay for the replacement, unless more of their worth goes back as a refund of a cheaper one (SAT
    asks for the form of the larger amount). None: the sale's own (money back the way it came)."""
    if returned.outcome == ReturnOutcome.CREDIT:
        return STORE_CREDIT_FORM
    if returned.outcome == ReturnOutcome.EXCHANGE and refund_due(returned) * 2 <= returned.refund_amount:
        return STORE_CREDIT_FORM
    return None


def issue_return_credit_note(return_id: int, issuer: CfdiIssuer, actor: str) -> Optional[m.Invoice]:
    """The credit note (CFDI de egreso) for the returned units when the sale was invoiced, once, as soon as the
    return is settled (refunded, credited, or exchanged: the new sale made); the customer gets it in the chat.
    A PAC problem goes to staff (``comanda cfdi credit-note`` issues it by hand)."""
    with new_session() as session:
        returned = get_return(session, return_id)
        settled = returned.status in (ReturnStatus.REFUNDED, ReturnStatus.CREDITED, ReturnStatus.EXCHANGED)
        if returned.credit_note_id is not None or not (settled or returned.exchange_order_id is not None):
            return None
        invoice = invoice_to_credit(session, returned.order_id)
        if invoice is None:
            return None
        invoice_id, lines = invoice.id, {line.order_line_id: line.quantity for line in returned.lines}
        payment_form = credit_note_form(returned)
    try:
        note = issue_credit_note(invoice_id, issuer=issuer, actor=actor, lines=lines, payment_form=payment_form)
    except ComandaError as failed:
        _to_staff(
            return_id, StaffTask.CREDIT_NOTE_FAILED, f"the credit note of invoice {invoice_id} failed: {failed.message}"
        )
        return None
    with transaction() as session:
        moved = session.execute(
            update(RETURNS)
            .where(RETURNS.c.id == return_id, RETURNS.c.credit_note_id.is_(None))
            .values(credit_note_id=note.id)
        ).rowcount
        if moved:
            returned = get_return(session, return_id)
            notifications.notify(
                session, _order(session, returned), NotificationEvent.RETURN_CREDIT_NOTE, occurrence=return_id
            )
    return note


def awaiting_credit_note(session: Session, limit: int = 20) -> List[int]:
    """Settled returns of invoiced sales still without their credit note: a refund that was pending when it was
    asked for is settled later by the provider's webhook, and the back office's sweep documents it then. A
    credit note the PAC refused is staff's (``comanda cfdi credit-note``), not tried again here."""
    refused = select(m.AuditEvent.entity_id).where(
        m.AuditEvent.entity_type == "return", m.AuditEvent.action == f"return.{StaffTask.CREDIT_NOTE_FAILED.value}"
    )
    invoiced = select(m.Invoice.id).where(m.Invoice.order_id == m.Return.order_id, m.Invoice.status.in_(ISSUED))
    in_global = (
        select(m.InvoiceOrder.invoice_id)
        .join(m.Invoice, m.Invoice.id == m.InvoiceOrder.invoice_id)
        .where(m.InvoiceOrder.order_id == m.Return.order_id, m.Invoice.status.in_(ISSUED))
    )
    query = (
        select(m.Return.id)
        .where(
            m.Return.credit_note_id.is_(None),
            m.Return.status.in_((ReturnStatus.REFUNDED, ReturnStatus.CREDITED, ReturnStatus.EXCHANGED)),
            cast(m.Return.id, String).not_in(refused),
            invoiced.exists() | in_global.exists(),
        )
        .order_by(m.Return.id)
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def issue_due_credit_notes(issuer: CfdiIssuer, actor: str) -> int:
    """The sweep's half for documents: each return ``awaiting_credit_note`` gets its credit note (once: the
    note's row is claimed by a conditional update). How many were issued."""
    with new_session() as session:
        due = awaiting_credit_note(session)
    return sum(1 for return_id in due if issue_return_credit_note(return_id, issuer, actor) is not None)


def due_for_settlement(session: Session, limit: int = 20) -> List[int]:
    """Returns whose money is due and not yet asked for (auto-approved in the chat where the business refunds on
    approval): the back office's sweep settles them. A failed refund waits for staff, never retried here; an
    exchange whose new sale is made waits for the customer's payment, or for staff."""
    refunded = select(m.Refund.return_id).where(
        m.Refund.return_id.is_not(None),
        m.Refund.status.in_((RefundStatus.PENDING, RefundStatus.SUCCEEDED, RefundStatus.FAILED)),
    )
    query = (
        select(m.Return.id)
        .join(m.Order, m.Order.id == m.Return.order_id)
        .join(m.Business, m.Business.id == m.Order.business_id)
        .where(
            m.Return.id.not_in(refunded),
            m.Return.exchange_order_id.is_(None),
            (m.Return.status == ReturnStatus.RECEIVED)
            | (
                (m.Return.status == ReturnStatus.APPROVED)
                & (m.Business.return_refund_on == RefundMoment.APPROVED)
                & (m.Return.outcome != ReturnOutcome.EXCHANGE)
            ),
        )
        .order_by(m.Return.id)
        .limit(limit)
    )
    return list(session.execute(query).scalars())


STEPS: Dict[str, Callable[..., None]] = {"approve": approve, "reject": reject, "receive": receive}


def take_step(
    return_id: int,
    step: str,
    actor: Actor,
    provider_for: ProviderFor,
    issuer: CfdiIssuer,
    *args: Any,
    store_ids: Optional[Sequence[str]] = None,
) -> Settled:
    """Staff's step (approve, reject with a reason, receive with a condition) on a return of their stores, in
    a transaction of its own, then whatever money it makes due (for the console, the API and the CLI)."""
    with transaction() as session:
        STEPS[step](session, get_return(session, return_id, store_ids), actor, *args)
    return settle(return_id, provider_for, issuer, actor.name)


def refund_order(
    order_id: int,
    amount: object,
    reason: str,
    actor: Actor,
    provider_for: ProviderFor,
    key: str,
    store_ids: Optional[Sequence[str]] = None,
) -> m.Refund:
    """Staff give money back on an order without goods coming back (cold food, a missing item): part or all
    of it, with a reason, through the payment's provider (cash and SPEI: recorded as given by hand). ``key``
    comes with the form, so submitting it twice refunds once."""
    reason = " ".join((reason or "").split())[:300]
    if not reason:
        raise ReturnRefused(ReturnProblem.NOTHING, "a refund needs a reason")
    with new_session() as session:
        order = session.get(m.Order, order_id)
        if order is None or (store_ids is not None and order.store_id not in store_ids):
            raise NotFound(f"no order {order_id}", order_id=order_id)
        payment = money_payment(session, order_id)
        if payment is None:
            raise ReturnRefused(ReturnProblem.NO_PAYMENT, f"order {order_id} has no payment to refund")
        payment_id = payment.id
    refund = payments.refund(provider_for, payment_id, amount, reason, actor.name, f"order-refund:{order_id}:{key}")
    with transaction() as session:
        record(session, actor, "order.refunded", "order", order_id, amount=str(refund.amount), reason=reason)
    return refund


# --- reading -----------------------------------------------------------------------------------------------------


def list_returns(
    session: Session, store_ids: Sequence[str], status: Optional[str] = None, limit: int = 200
) -> List[m.Return]:
    query = select(m.Return).where(m.Return.store_id.in_(tuple(store_ids)))
    if status:
        query = query.where(m.Return.status == status)
    return list(session.execute(query.order_by(m.Return.id.desc()).limit(limit)).scalars())


def latest_refund(session: Session, return_id: int) -> Optional[m.Refund]:
    return session.execute(
        select(m.Refund).where(m.Refund.return_id == return_id).order_by(m.Refund.id.desc()).limit(1)
    ).scalar_one_or_none()


def as_json(session: Session, returned: m.Return) -> Dict[str, Any]:
    """The API's shape of a return."""
    refund = latest_refund(session, returned.id)
    payment = session.get(m.Payment, refund.payment_id) if refund is not None else None
    note = session.get(m.Invoice, returned.credit_note_id) if returned.credit_note_id else None
    order = _order(session, returned)
    return {
        "id": returned.id,
        "order_id": returned.order_id,
        "order": orders.order_number(order),
        "store": returned.store_id,
        "status": returned.status,
        "reason": returned.reason_code,
        "reason_text": returned.reason,
        "declared_condition": returned.declared_condition,
        "received_condition": returned.received_condition,
        "lines": [
            {"sku": line.order_line.sku, "quantity": line.quantity, "amount": str(line.amount)}
            for line in returned.lines
        ],
        "outcome": returned.outcome,
        "amount": str(returned.refund_amount),
        "auto_approved": returned.auto_approved,
        "rejection_reason": returned.rejection_reason,
        "refund": (
            {"amount": str(refund.amount), "status": refund.status, "provider": payment.provider if payment else None}
            if refund is not None
            else None
        ),
        "replacement": _replacement_json(session, returned),
        "exchange_order_id": returned.exchange_order_id,
        "credit_note_uuid": note.uuid if note is not None else None,
        "created_at": returned.created_at.isoformat(),
    }


def _replacement_json(session: Session, returned: m.Return) -> Optional[Dict[str, str]]:
    """An exchange's replacement: its SKU, what it was held at, and the difference (+ charged, − refunded)."""
    if returned.outcome != ReturnOutcome.EXCHANGE or returned.replacement_product_id is None:
        return None
    variant_id = returned.replacement_variant_id
    held = (
        session.get(m.ProductVariant, variant_id)
        if variant_id
        else session.get(m.Product, returned.replacement_product_id)
    )
    return {"sku": held.sku, "amount": str(returned.replacement_amount), "difference": str(difference(returned))}


def exchanged_for(session: Session, order_id: int) -> Optional[m.Return]:
    """The exchange whose new sale the order is, if it is one."""
    return session.execute(select(m.Return).where(m.Return.exchange_order_id == order_id)).scalar_one_or_none()


def latest_for_order(session: Session, order_id: int) -> Optional[m.Return]:
    return session.execute(
        select(m.Return).where(m.Return.order_id == order_id).order_by(m.Return.id.desc()).limit(1)
    ).scalar_one_or_none()


def customer_returns(session: Session, customer_id: int, store_id: str) -> List[m.Return]:
    """The customer's returns at this store still under way or finished lately, newest first (order_status)."""
    return list(
        session.execute(
            select(m.Return)
            .where(m.Return.customer_id == customer_id, m.Return.store_id == store_id)
            .order_by(m.Return.id.desc())
            .limit(3)
        ).scalars()
    )


def settle_each(ids: Sequence[int], settle_one: Callable[[int], Settled]) -> int:
    """Settle several returns, one failing not stopping the others; how many moved."""
    done = 0
    for return_id in ids:
        try:
            settle_one(return_id)
            done += 1
        except ComandaError as failed:
            log.warning("return %s not settled: %s", return_id, failed.message)
    return done


# --- reading the customer's words --------------------------------------------------------------------------------

_CONDITION_WORDS: Dict[str, Tuple[str, ...]] = {
    ItemCondition.UNOPENED: (
        "sin abrir",
        "no la abri",
        "no lo abri",
        "no las abri",
        "no los abri",
        "cerrada",
        "cerrado",
        "cerradas",
        "cerrados",
        "sellada",
        "sellado",
        "unopened",
        "sealed",
        "didn't open",
        "didnt open",
        "never opened",
    ),
    ItemCondition.UNUSED: (
        "sin usar",
        "no la use",
        "no lo use",
        "no las use",
        "no los use",
        "nueva",
        "nuevo",
        "unused",
        "didn't use",
        "didnt use",
        "never used",
        "brand new",
        "not used",
    ),
    ItemCondition.ANY: ("usada", "usado", "ya la use", "ya lo use", "used it", "i used"),
}
_REASON_WORDS: Dict[str, Tuple[str, ...]] = {
    ReturnReason.DEFECTIVE: (
        "roto",
        "rota",
        "defectuoso",
        "defectuosa",
        "estrellada",
        "estrellado",
        "no cierra",
        "no sirve",
        "broken",
        "defective",
        "cracked",
        "doesn't seal",
        "doesnt work",
        "doesn't work",
    ),
    ReturnReason.WRONG_ITEM: (
        "equivocado",
        "equivocada",
        "no es lo que pedi",
        "wrong item",
        "wrong one",
        "not what i ordered",
    ),
    ReturnReason.NOT_AS_DESCRIBED: (
        "no es como",
        "diferente a la foto",
        "manchada",
        "manchado",
        "not as described",
        "stained",
    ),
    ReturnReason.CHANGED_MIND: (
        "ya no la quiero",
        "ya no lo quiero",
        "cambie de opinion",
        "changed my mind",
        "don't want it",
    ),
}


def read_condition(text: str) -> Optional[str]:
    """The condition the customer's words state ("no la usé" → unused), if any."""
    return _first(text, _CONDITION_WORDS)


def read_reason(text: str) -> Optional[str]:
    """The reason the customer's words give ("llegó rota" → defective), if any."""
    return _first(text, _REASON_WORDS)


def _first(text: str, table: Dict[str, Tuple[str, ...]]) -> Optional[str]:
    padded = f" {fold(text or '')} "
    for value, words in table.items():
        if any(re.search(rf"(?<![a-z]){re.escape(fold(w))}(?![a-z])", padded) for w in words):
            return str(value)
    return None


def mentioned(session: Session, text: str, candidates: Sequence[Returnable]) -> List[Returnable]:
    """The returnable lines the customer's words name ("la taza", "the shirt"): by product name or synonym."""
    padded = f" {fold(text or '')} "
    found = []
    for line in candidates:
        product = session.get(m.OrderLine, line.order_line_id).product_id
        names = [fold(s.text) for s in session.get(m.Product, product).synonyms]
        names += [fold(session.get(m.Product, product).name_es), fold(session.get(m.Product, product).name_en)]
        if any(name and re.search(rf"(?<![a-z]){re.escape(name)}(?![a-z])", padded) for name in names):
            found.append(line)
    return found


TICKET = re.compile(r"\b([A-Za-z]{1,4}-\d{1,4})\b")


def named_ticket(text: str) -> Optional[str]:
    """A ticket the customer names ("C-042")."""
    found = TICKET.search(text or "")
    return found.group(1).upper() if found else None
