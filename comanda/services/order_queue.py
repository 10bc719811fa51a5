"""The order queue as staff work it, from the queue display or the staff API: moves (bump to the next
stage, or a named status), recall of the last move, SPEI transfers seen in the bank, and the views the
display and the public board show.

Every move is checked against the staff member's stores (another store's order is NotFound), goes through
``orders.set_status`` (a conditional update: two screens moving one order never both win), tells the
customer through the notifications queue, and leaves an audit event with who and from where, all in the
caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Dict, List, Optional, Sequence, Tuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from comanda import clock
from comanda import models as m
from comanda.enums import (
    Fulfilment,
    InvoiceStatus,
    OrderPaymentStatus,
    OrderStatus,
    PaymentMethod,
    PaymentProviderName,
    PaymentStatus,
    values_in,
)
from comanda.errors import InvalidInput, NotFound
from comanda.services import audit, notifications, orders, payments
from comanda.services.audit import Actor
from comanda.services.orders import StatusConflict
from comanda.services.staff import StaffMember, scoped, store_filter, visible_order
from comanda.settings import setting_int

# What staff may set by name (the API); the display only bumps to the next stage.
STAFF_TARGETS = (
    OrderStatus.PREPARING,
    OrderStatus.READY,
    OrderStatus.DELIVERED,
    OrderStatus.PICKED_UP,
    OrderStatus.CANCELLED,
)
STAGES = (OrderStatus.RECEIVED, OrderStatus.PREPARING, OrderStatus.READY)  # the display's columns
HANDED_OVER = {Fulfilment.PICKUP: OrderStatus.PICKED_UP, Fulfilment.DELIVERY: OrderStatus.DELIVERED}
# Forward moves a recall can undo, from → to.
RECALLABLE = frozenset(
    (a.value, b.value)
    for a, b in (
        (OrderStatus.RECEIVED, OrderStatus.PREPARING),
        (OrderStatus.RECEIVED, OrderStatus.READY),
        (OrderStatus.PREPARING, OrderStatus.READY),
        (OrderStatus.READY, OrderStatus.PICKED_UP),
        (OrderStatus.READY, OrderStatus.DELIVERED),
    )
)
LIVE_INVOICE = values_in((InvoiceStatus.DRAFT, InvoiceStatus.SEALED, InvoiceStatus.STAMPED, InvoiceStatus.UNCONFIRMED))
LIST_LIMIT = 200


def next_stage(order: m.Order) -> OrderStatus:
    """received → preparing → ready → handed over (picked up, or delivered)."""
    status = OrderStatus(order.status)
    if status == OrderStatus.READY:
        return HANDED_OVER[Fulfilment(order.fulfilment)]
    if status in (OrderStatus.RECEIVED, OrderStatus.PREPARING):
        return STAGES[STAGES.index(status) + 1]
    raise StatusConflict(f"order {order.id} is {order.status}: it is not in the queue", order_id=order.id)


def parse_target(target: object) -> OrderStatus:
    parsed = OrderStatus.parse(target)
    if parsed not in STAFF_TARGETS:
        raise InvalidInput(f"'status' must be one of {', '.join(t.value for t in STAFF_TARGETS)}")
    return parsed


def move(
    session: Session, who: StaffMember, actor: Actor, order_id: int, target: object, expected: Optional[str] = None
) -> m.Order:
    """Move an order to ``target``; ``expected`` is the status the person saw (a second tap on a card
    somebody already moved is a StatusConflict, not a second move)."""
    status = parse_target(target)
    order = visible_order(session, who, order_id)
    session.refresh(order, ["status", "payment_status"])
    if expected is not None and order.status != expected:
        raise StatusConflict(
            f"order {order.id} is {order.status} now, not {expected}: someone moved it",
            order_id=order.id,
            status=order.status,
        )
    ending = {OrderStatus.DELIVERED: Fulfilment.DELIVERY, OrderStatus.PICKED_UP: Fulfilment.PICKUP}.get(status)
    if ending and order.fulfilment != ending:
        raise InvalidInput(f"order {order.id} is for {order.fulfilment}: it cannot be {status.value}")
    before = order.status
    if status == OrderStatus.CANCELLED:
        orders.cancel_order(session, order, actor.name)
    else:
        orders.set_status(session, order, status.value, actor.name)
    if status == OrderStatus.PICKED_UP:
        payments.collect_cash(session, order, actor.name)
    notifications.notify(session, order, status.value)
    audit.record(
        session, actor, "order.moved", "order", order.id, ticket=order.ticket_code, to=status.value, **{"from": before}
    )
    return order


def bump(session: Session, who: StaffMember, actor: Actor, order_id: int, expected: Optional[str] = None) -> m.Order:
    """One tap on the display: the order's next stage (from ``expected``, the stage the card showed)."""
    order = visible_order(session, who, order_id)
    session.refresh(order, ["status"])
    return move(session, who, actor, order_id, next_stage(order), order.status if expected is None else expected)


def _forward(change: m.OrderStatusChange) -> bool:
    return (change.from_status, change.to_status) in RECALLABLE


def _standing_move(session: Session, order_id: int) -> Optional[m.OrderStatusChange]:
    """The order's last forward move that no recall has undone yet (a recall is the move backwards)."""
    stack: List[m.OrderStatusChange] = []
    for change in session.execute(
        select(m.OrderStatusChange).where(m.OrderStatusChange.order_id == order_id).order_by(m.OrderStatusChange.id)
    ).scalars():
        if _forward(change):
            stack.append(change)
        elif stack and (change.from_status, change.to_status) == (stack[-1].to_status, stack[-1].from_status):
            stack.pop()
    return stack[-1] if stack else None


def _last_recallable(
    session: Session, who: StaffMember, store_ids: Sequence[str], order_id: Optional[int]
) -> Tuple[m.Order, m.OrderStatusChange]:
    """The newest forward move staff made on these stores (or on one order) within the recall window that
    still stands: recalling again walks further back."""
    since = clock.now() - timedelta(minutes=setting_int("COMANDA_QUEUE_RECALL_MINUTES"))
    query = (
        scoped(select(m.Order).join(m.OrderStatusChange), m.Order.store_id, who)
        .where(
            m.Order.store_id.in_(list(store_ids)),
            m.OrderStatusChange.created_at >= since,
            m.OrderStatusChange.actor.like("staff:%"),
        )
        .distinct()
    )
    if order_id is not None:
        query = query.where(m.Order.id == order_id)
    found: List[Tuple[m.Order, m.OrderStatusChange]] = []
    for order in session.execute(query).scalars():
        move = _standing_move(session, order.id)
        if (
            move is not None
            and move.created_at >= since
            and move.actor.startswith("staff:")
            and order.status == move.to_status
        ):
            found.append((order, move))
    if not found:
        raise NotFound("there is no recent move to recall")
    return max(found, key=lambda pair: pair[1].id)


def recall(
    session: Session,
    who: StaffMember,
    actor: Actor,
    store_ids: Optional[Sequence[str]] = None,
    order_id: Optional[int] = None,
) -> m.Order:
    """Undo the last queue move (on these stores, or on one order): the order goes back one stage. A
    hand-over is undone too: a cash payment taken at that moment is voided, unless the sale was invoiced.
    The customer is not told again (the notification of each stage goes out once)."""
    if order_id is not None:
        visible_order(session, who, order_id)
    order, change = _last_recallable(
        session, who, store_filter(who, None) if store_ids is None else store_ids, order_id
    )
    back_to = change.from_status
    if change.to_status == OrderStatus.PICKED_UP:
        _void_cash(session, order, actor)
    table = m.Order.__table__
    moved = session.execute(
        update(table)
        .where(table.c.id == order.id, table.c.status == change.to_status)
        .values(status=back_to, completed_at=None)
    ).rowcount
    if moved != 1:
        raise StatusConflict(f"order {order.id} changed while it was being recalled", order_id=order.id)
    session.expire(order, ["status", "completed_at"])
    session.add(
        m.OrderStatusChange(order_id=order.id, from_status=change.to_status, to_status=back_to, actor=actor.name)
    )
    session.flush()
    audit.record(
        session,
        actor,
        "order.recalled",
        "order",
        order.id,
        ticket=order.ticket_code,
        to=back_to,
        **{"from": change.to_status},
    )
    return order


def _void_cash(session: Session, order: m.Order, actor: Actor) -> None:
    if order.payment_method != PaymentMethod.CASH:
        return
    invoiced = session.execute(
        select(m.Invoice.id)
        .where(m.Invoice.order_id == order.id, m.Invoice.status.in_(LIVE_INVOICE))
        .union(select(m.InvoiceOrder.invoice_id).where(m.InvoiceOrder.order_id == order.id))
    ).first()
    if invoiced:
        raise StatusConflict(f"order {order.id} was invoiced after it was handed over: it cannot be recalled")
    for payment in session.execute(
        select(m.Payment).where(
            m.Payment.order_id == order.id,
            m.Payment.provider == PaymentProviderName.CASH.value,
            m.Payment.status == PaymentStatus.PAID.value,
        )
    ).scalars():
        payment.status = PaymentStatus.VOIDED.value
        audit.record(
            session, actor, "cash.voided", "payment", payment.id, order_id=order.id, amount=str(payment.amount)
        )
    order.payment_status, order.paid_at = OrderPaymentStatus.UNPAID.value, None


def confirm_spei(
    session: Session, who: StaffMember, actor: Actor, order_id: int, amount: Decimal, bank_reference: Optional[str]
) -> str:
    """Staff saw the transfer in the bank (see payments.mark_spei_received); the outcome."""
    visible_order(session, who, order_id)
    outcome = payments.mark_spei_received(session, order_id, amount, actor.name, bank_reference)
    audit.record(
        session,
        actor,
        "order.spei_confirmed",
        "order",
        order_id,
        amount=str(amount),
        bank_reference=bank_reference,
        outcome=outcome,
    )
    return outcome


def list_orders(
    session: Session, who: StaffMember, store_id: Optional[str], status: Optional[str], limit: int = LIST_LIMIT
) -> List[m.Order]:
    """The newest orders of the member's stores (or one of them), optionally in one status."""
    query = (
        select(m.Order)
        .where(m.Order.store_id.in_(store_filter(who, store_id)))
        .options(selectinload(m.Order.lines))
        .order_by(m.Order.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(m.Order.status == status)
    return list(session.execute(scoped(query, m.Order.store_id, who)).scalars())


# --- what the queue display and the board show -----------------------------------------------------


@dataclass(frozen=True)
class CardLine:
    quantity: int
    name: str  # with its variant and options, in the reader's language: "Té de taro (grande, sin azúcar)"
    note: Optional[str]


@dataclass(frozen=True)
class Card:
    """One order on the queue display."""

    id: int
    store_id: str
    ticket: str
    status: str
    next_status: str
    lines: List[CardLine]
    note: Optional[str]
    fulfilment: str
    delivery_address: Optional[str]
    paid: bool
    cash_due: Optional[Decimal]  # cash to collect at the counter, for unpaid cash orders
    customer_first_name: str
    since: datetime  # when it entered the queue: the age timer counts from here
    warn_minutes: int
    late_minutes: int


def first_name(name: Optional[str]) -> str:
    return (name or "").split()[0] if (name or "").split() else ""


def queue_cards(session: Session, who: StaffMember, store_ids: Sequence[str], language: str) -> Dict[str, List[Card]]:
    """The display's columns (received, preparing, ready), oldest first."""
    stores = {s.id: s for s in session.execute(select(m.Store).where(m.Store.id.in_(list(store_ids)))).scalars()}
    query = scoped(
        select(m.Order)
        .where(m.Order.store_id.in_(list(store_ids)), m.Order.status.in_(values_in(STAGES)))
        .options(selectinload(m.Order.lines))
        .order_by(m.Order.confirmed_at, m.Order.id),
        m.Order.store_id,
        who,
    )
    columns: Dict[str, List[Card]] = {stage.value: [] for stage in STAGES}
    for order in session.execute(query).scalars():
        store = stores[order.store_id]
        paid = order.payment_status == OrderPaymentStatus.PAID
        columns[order.status].append(
            Card(
                id=order.id,
                store_id=order.store_id,
                ticket=order.ticket_code or f"#{order.id}",
                status=order.status,
                next_status=next_stage(order).value,
                lines=[
                    CardLine(line.quantity, orders.line_name(session, line, language, with_note=False), line.note)
                    for line in order.lines
                ],
                note=order.note,
                fulfilment=order.fulfilment,
                delivery_address=order.delivery_address if order.fulfilment == Fulfilment.DELIVERY else None,
                paid=paid,
                cash_due=order.total if not paid and order.payment_method == PaymentMethod.CASH else None,
                customer_first_name=first_name(order.customer_name),
                since=order.confirmed_at or order.created_at,
                warn_minutes=store.queue_warn_minutes,
                late_minutes=store.queue_late_minutes,
            )
        )
    return columns


@dataclass(frozen=True)
class Board:
    """What the customers' screen shows: ticket numbers only (no names)."""

    store_name: str
    preparing: List[str]
    ready: List[str]


def board(session: Session, store_id: str) -> Board:
    store = session.get(m.Store, store_id)
    if store is None or not store.active:
        raise NotFound(f"no store {store_id!r}", store_id=store_id)
    rows = session.execute(
        select(m.Order.ticket_code, m.Order.status)
        .where(m.Order.store_id == store_id, m.Order.status.in_(values_in(STAGES)), m.Order.ticket_code.is_not(None))
        .order_by(m.Order.confirmed_at, m.Order.id)
    ).all()
    return Board(
        store_name=store.name,
        preparing=[ticket for ticket, status in rows if status != OrderStatus.READY],
        ready=[ticket for ticket, status in rows if status == OrderStatus.READY],
    )


def latest_change(session: Session) -> int:
    """A number that grows with every status change of any order: the displays' "something moved"."""
    return session.execute(select(func.coalesce(func.max(m.OrderStatusChange.id), 0))).scalar_one()
