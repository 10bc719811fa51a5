"""Orders: a cart becomes an order with its stock held, then enters the store's queue with a ticket
number (C-042), moves through the queue, or is cancelled.

Every status change is a conditional UPDATE on the current status plus an ``order_status_changes``
row, so two processes moving one order (a payment webhook and an expiry sweep, two staff screens)
never both win. Ticket numbers are gap-free per store and local day: one counter row per store and
day, incremented in the transaction that puts the order in the queue, so a rollback gives the
number back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, FrozenSet, Optional

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate
from comanda.enums import CartStatus, Fulfilment, OrderPaymentStatus, OrderStatus, PaymentMethod
from comanda.errors import ComandaError, NotFound
from comanda.money import round_money
from comanda.services import reservations, store_credit
from comanda.services.carts import find_open_cart
from comanda.services.checkout import CheckoutDetails, check_checkout, quote
from comanda.services.products import line_label

# Where an order may go from each status. pending_payment: stock held, waiting for the money;
# received: in the queue (paid, or cash on pickup), the kitchen has not started; expired: the hold ran
# out, yet a late payment still sells it (when the stock is there) and a new link reopens it.
S = OrderStatus
TRANSITIONS: Dict[str, FrozenSet[str]] = {
    S.PENDING_PAYMENT: frozenset({S.RECEIVED, S.CANCELLED, S.EXPIRED}),
    S.EXPIRED: frozenset({S.RECEIVED, S.PENDING_PAYMENT}),
    S.RECEIVED: frozenset({S.PREPARING, S.READY, S.CANCELLED}),
    S.PREPARING: frozenset({S.READY, S.CANCELLED}),
    S.READY: frozenset({S.DELIVERED, S.PICKED_UP}),
}
OPEN_STATUSES = frozenset({S.PENDING_PAYMENT, S.RECEIVED, S.PREPARING, S.READY})
# Statuses an order still waiting for its money may have: a new link pays it.
PAYABLE_STATUSES = frozenset({S.PENDING_PAYMENT, S.EXPIRED})


class EmptyCart(ComandaError):
    code = "empty_cart"


class CannotCancel(ComandaError):
    """The order is past the point where the bot may cancel it: a person decides (and refunds)."""

    code = "cannot_cancel"


class StatusConflict(ComandaError):
    """Someone else moved the order first, or the move is not allowed from its status."""

    code = "status_conflict"


def place_order(session: Session, conversation_id: str, details: CheckoutDetails, actor: str) -> m.Order:
    """The conversation's cart as an order with every line's stock held (or OutOfStock, and the
    caller's transaction rolls back). Store credit, when chosen, pays what it can at once; an order it pays
    whole, or paid in cash on pickup, goes straight into the queue."""
    cart = find_open_cart(session, conversation_id)
    if cart is None or not cart.lines:
        raise EmptyCart("the cart is empty")
    conversation = session.get(m.Conversation, conversation_id)
    store = session.get(m.Store, cart.store_id)
    language = conversation.language or store.business.default_language
    check_checkout(session, store, cart, details)
    priced = quote(session, store, cart, details.fulfilment, language)
    delivery = details.fulfilment == Fulfilment.DELIVERY
    order = m.Order(
        business_id=store.business_id,
        store_id=store.id,
        customer_id=cart.customer_id,
        conversation_id=conversation_id,
        cart_id=cart.id,
        channel=conversation.channel,
        status=S.PENDING_PAYMENT,
        payment_status=OrderPaymentStatus.UNPAID,
        payment_method=details.payment_method,
        fulfilment=details.fulfilment,
        delivery_address=details.address,
        delivery_postal_code=details.postal_code,
        delivery_latitude=cart.delivery_latitude if delivery else None,
        delivery_longitude=cart.delivery_longitude if delivery else None,
        customer_name=details.customer_name,
        subtotal=priced.subtotal,
        delivery_fee=priced.delivery_fee,
        total=priced.total,
        language=language,
    )
    fiscal_language = store.business.default_language  # what invoices and tickets print
    for line, view in zip(cart.lines, priced.lines, strict=False):  # cart_view prices the cart's lines in their order
        order.lines.append(
            m.OrderLine(
                product_id=line.product_id,
                variant_id=line.variant_id,
                sku=view.sku,
                description=line_label(line.product, line.variant, line.modifiers or {}, fiscal_language),
                quantity=line.quantity,
                modifiers=dict(line.modifiers or {}),
                note=line.note,
                unit_price=view.unit_price,
                line_total=view.line_total,
                sat_prod_serv=line.product.sat_prod_serv,
                sat_unit=line.product.sat_unit,
            )
        )
    session.add(order)
    session.flush()
    session.add(m.OrderStatusChange(order_id=order.id, from_status=None, to_status=S.PENDING_PAYMENT, actor=actor))
    reservations.reserve(session, store.id, cart, order_id=order.id)
    cart.status = CartStatus.ORDERED
    session.flush()
    whole = details.payment_method == PaymentMethod.STORE_CREDIT
    if whole or details.use_store_credit:  # the balance pays (part of) it now, in this transaction
        store_credit.apply_to_order(session, order, actor, whole=whole)
    if order.payment_method in (PaymentMethod.CASH, PaymentMethod.STORE_CREDIT):
        enter_queue(session, order, actor)
    return order


def amount_due(session: Session, order: m.Order) -> Decimal:
    """What the customer pays through a link, SPEI or at the counter: the total less the store credit the order
    holds and, for an exchange's new sale, the value of the goods that came back for it."""
    exchanged = session.execute(
        select(func.coalesce(func.sum(m.Return.refund_amount), 0)).where(m.Return.exchange_order_id == order.id)
    ).scalar()
    due = order.total - store_credit.spent_on(session, order.id) - round_money(Decimal(str(exchanged)))
    return max(due, Decimal("0.00"))


def enter_queue(session: Session, order: m.Order, actor: str) -> m.Order:
    """Paid (or cash on pickup): the held stock is sold, the order gets the day's next ticket and
    waits in the queue as ``received``. Idempotent for an order already in the queue."""
    if order.ticket_code:
        return order
    reservation = order_reservation(session, order.id)
    if reservation is not None:
        reservations.commit(session, reservation.id)
    set_status(session, order, S.RECEIVED, actor)
    assign_ticket(session, order)
    order.confirmed_at = clock.now()
    session.flush()
    return order


def assign_ticket(session: Session, order: m.Order) -> str:
    """The store's next number for the business's local day: C-001, C-002, ... without gaps."""
    store = session.get(m.Store, order.store_id)
    day = clock.local_date(store.business.timezone)
    insert_unless_duplicate(session, m.TicketCounter(store_id=store.id, day=day, last_number=0))
    counters = m.TicketCounter.__table__
    session.execute(
        update(counters)
        .where(counters.c.store_id == store.id, counters.c.day == day)
        .values(last_number=counters.c.last_number + 1)
    )
    number = session.execute(
        select(counters.c.last_number).where(counters.c.store_id == store.id, counters.c.day == day)
    ).scalar_one()
    order.ticket_day, order.ticket_number = day, number
    order.ticket_code = f"{store.ticket_prefix}-{number:03d}"
    session.flush()
    return order.ticket_code


def set_status(session: Session, order: m.Order, target: str, actor: str) -> None:
    """Move the order to ``target`` if its current status allows it and nobody moved it first; an order
    cancelled or expired gives back the store credit it held."""
    session.refresh(order, ["status"])
    current = order.status
    if target not in TRANSITIONS.get(current, frozenset()):
        raise StatusConflict(
            f"order {order.id} is {current}: it cannot become {target}",
            order_id=order.id,
            status=current,
            target=target,
        )
    table = m.Order.__table__
    moved = session.execute(
        update(table).where(table.c.id == order.id, table.c.status == current).values(status=target)
    ).rowcount
    if moved != 1:
        raise StatusConflict(f"order {order.id} changed while it was being moved to {target}", order_id=order.id)
    session.expire(order, ["status"])
    now = clock.now()
    if target in (S.DELIVERED, S.PICKED_UP):
        order.completed_at = now
    if target in (S.CANCELLED, S.EXPIRED):
        order.cancelled_at = now
        store_credit.give_back(session, order, actor, target)
    session.add(m.OrderStatusChange(order_id=order.id, from_status=current, to_status=target, actor=actor))
    session.flush()


def cancel_order(session: Session, order: m.Order, actor: str) -> m.Order:
    """The customer's "cancela mi pedido": held stock is given back, and a cash order not yet being
    prepared has its stock put back on the shelf. A paid order, or one the kitchen started, needs a
    person (CannotCancel): money may have to be refunded. When someone else moves the order at the
    same moment (a payment webhook, a staff screen), the decision is taken again on where it is now."""
    try:
        return _cancel(session, order, actor)
    except StatusConflict:
        return _cancel(session, order, actor)


def _cancel(session: Session, order: m.Order, actor: str) -> m.Order:
    session.refresh(order, ["status", "payment_status"])
    if order.status == S.PENDING_PAYMENT:
        reservation = order_reservation(session, order.id)
        set_status(session, order, S.CANCELLED, actor)
        if reservation is not None:
            reservations.release(session, reservation.id)
        return order
    if order.status == S.RECEIVED and order.payment_status == OrderPaymentStatus.UNPAID:
        set_status(session, order, S.CANCELLED, actor)
        reservation = order_reservation(session, order.id)
        if reservation is not None:
            reservations.restock(session, reservation.id, ("order", order.id), "cancelled before preparation")
        return order
    raise CannotCancel(
        f"order {order.id} is {order.status} and {order.payment_status}: a person must cancel it",
        order_id=order.id,
        status=order.status,
    )


def line_name(session: Session, line: m.OrderLine, language: str, with_note: bool = True) -> str:
    """An order line as the customer reads it, in their language ("Large taro milk tea (no sugar)"),
    with their note for the kitchen unless the note is shown beside it (the queue display's cards);
    ``description`` keeps the business's language and no note, for invoices."""
    variant = session.get(m.ProductVariant, line.variant_id) if line.variant_id else None
    note = line.note if with_note else None
    return line_label(session.get(m.Product, line.product_id), variant, line.modifiers or {}, language, note)


def order_reservation(session: Session, order_id: int) -> Optional[m.Reservation]:
    return session.execute(
        select(m.Reservation).where(m.Reservation.order_id == order_id).order_by(m.Reservation.id.desc()).limit(1)
    ).scalar_one_or_none()


def latest_order(session: Session, conversation_id: str, open_only: bool = False) -> Optional[m.Order]:
    """The conversation's most recent order (only one still under way, with ``open_only``)."""
    query = select(m.Order).where(m.Order.conversation_id == conversation_id)
    if open_only:
        query = query.where(m.Order.status.in_(OPEN_STATUSES))
    return session.execute(query.order_by(m.Order.id.desc()).limit(1)).scalar_one_or_none()


def own_order(session: Session, conversation_id: str, order_id: Any) -> Optional[m.Order]:
    """The order an ``order_id`` names (a number, or its digits as text), if it is the conversation's own;
    None for anything else, whoever's it is: a conversation never hears of another's orders."""
    if not str(order_id if order_id is not None else "").isdigit():
        return None
    order = session.get(m.Order, int(order_id))
    return order if order is not None and order.conversation_id == conversation_id else None


def payable_order(session: Session, conversation_id: str, order_id: Any = None) -> Optional[m.Order]:
    """The conversation's order that a new link would pay: the one named (if it is its own), else the
    latest one, when it is still unpaid and waiting (or its hold expired)."""
    order = (
        own_order(session, conversation_id, order_id)
        if order_id is not None
        else latest_order(session, conversation_id)
    )
    if order is not None and order.payment_status == OrderPaymentStatus.UNPAID and order.status in PAYABLE_STATUSES:
        return order
    return None


def placed_from_latest_cart(session: Session, conversation_id: str) -> Optional[m.Order]:
    """The order placed from the conversation's latest cart while it still waits for its money: what a
    confirmation run again (after a crash) finds instead of an empty cart."""
    cart_id = session.execute(
        select(m.Cart.id).where(m.Cart.conversation_id == conversation_id).order_by(m.Cart.id.desc()).limit(1)
    ).scalar_one_or_none()
    order = latest_order(session, conversation_id)
    if cart_id is None or order is None or order.cart_id != cart_id or order.status in (S.CANCELLED, S.EXPIRED):
        return None
    return order


def order_number(order: m.Order) -> str:
    """How the customer knows an order, everywhere: its ticket (C-042) once it has one, its number before."""
    return order.ticket_code or str(order.id)


def get_order(session: Session, order_id: int) -> m.Order:
    order = session.get(m.Order, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}", order_id=order_id)
    return order
