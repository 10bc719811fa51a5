"""Opening a payment: a provider link (card, OXXO) that closes with the stock hold, or SPEI instructions;
and "send me the link again"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import List, Optional

from sqlalchemy import update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.enums import (
    OrderPaymentStatus,
    OrderStatus,
    PaymentMethod,
    PaymentProviderName,
    PaymentStatus,
    ReservationStatus,
)
from comanda.errors import ConfigError
from comanda.i18n import t
from comanda.money import format_money
from comanda.services import orders, reservations
from comanda.services.payment_provider import LinkLine, LinkRequest, PaymentProvider
from comanda.services.payments.common import (
    LINK_METHODS,
    NotPayable,
    audit,
    close_link,
    lock_order,
    move,
    open_payment,
    payments_of,
)
from comanda.settings import setting


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


def start_payment(session: Session, order: m.Order, provider: PaymentProvider) -> PaymentInstructions:
    """Open the order's payment by its method: a provider link that expires with the stock hold, or
    SPEI instructions. Idempotent while a payment is open: it is returned again. Call it in its own
    transaction after ``orders.place_order`` committed: a provider failure (ProviderError) then
    leaves the order and its hold, and "send me the link again" (``new_link``) can retry."""
    order = lock_order(session, order.id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise NotPayable(
            f"order {order.id} is {order.status}: nothing to pay now", order_id=order.id, status=order.status
        )
    current = open_payment(session, order.id)
    if current is not None:
        return _instructions(session, current)
    reservation = orders.order_reservation(session, order.id)
    if reservation is None or reservation.status != ReservationStatus.ACTIVE or reservation.expires_at <= clock.now():
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
    order = lock_order(session, order_id)
    if (
        order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED)
        or order.payment_status != OrderPaymentStatus.UNPAID
    ):
        raise NotPayable(
            f"order {order.id} is {order.status} and {order.payment_status}: no new link",
            order_id=order.id,
            status=order.status,
        )
    replaced: List[str] = []  # the open links this provider can close
    for payment in payments_of(session, order.id, (PaymentStatus.PENDING,)):
        link_id = payment.provider_link_id if payment.provider == provider.name else None
        if move(session, payment, (PaymentStatus.PENDING,), status=PaymentStatus.EXPIRED) and link_id:
            replaced.append(link_id)
    hold = timedelta(minutes=session.get(m.Business, order.business_id).reservation_hold_minutes)
    reservation = orders.order_reservation(session, order.id)
    table = m.Reservation.__table__
    extended = (
        reservation is not None
        and session.execute(
            update(table)
            .where(table.c.id == reservation.id, table.c.status == ReservationStatus.ACTIVE)
            .values(expires_at=clock.now() + hold)
        ).rowcount
        == 1
    )
    if reservation is None or not extended:
        needs = {line.stock_item_id: line.quantity for line in reservation.lines} if reservation else {}
        reservation = reservations.reserve(session, order.store_id, needs, order_id=order.id)
    session.refresh(reservation)
    if order.status == OrderStatus.EXPIRED:
        orders.set_status(session, order, OrderStatus.PENDING_PAYMENT, "payments:new_link")
        order.cancelled_at = None
    order.payment_method = method or order.payment_method
    instructions = _create_payment(session, order, order.payment_method, reservation.expires_at, provider)
    for link_id in replaced:
        close_link(lambda _name: provider, provider.name, link_id)
    return instructions


def _create_payment(
    session: Session, order: m.Order, method: str, expires_at: datetime, provider: PaymentProvider
) -> PaymentInstructions:
    """A payment of what the order still owes (its total, less store credit it holds or an exchange's value)."""
    due = orders.amount_due(session, order)
    if method == PaymentMethod.SPEI:
        payment = m.Payment(
            order_id=order.id,
            provider=PaymentProviderName.SPEI,
            method=PaymentMethod.SPEI,
            status=PaymentStatus.PENDING,
            amount=due,
            currency=order.currency,
            expires_at=expires_at,
            reference=spei_reference(order.id),
        )
    elif method in LINK_METHODS:
        link = provider.create_link(_link_request(session, order, method, due, expires_at))
        payment = m.Payment(
            order_id=order.id,
            provider=provider.name,
            method=method,
            status=PaymentStatus.PENDING,
            amount=due,
            currency=order.currency,
            expires_at=expires_at,
            provider_link_id=link.link_id,
            link_url=link.url,
        )
    else:
        raise NotPayable(f"{method!r} orders are paid at the counter: no link", order_id=order.id, method=method)
    session.add(payment)
    session.flush()
    audit(session, "payments", "payment.opened", payment, method=method, amount=str(payment.amount))
    return _instructions(session, payment)


def spei_reference(order_id: int) -> str:
    """SPEI's numeric reference (7 digits): the order id, so staff find the order from the bank statement."""
    return f"{order_id % 10_000_000:07d}"


def _instructions(session: Session, payment: m.Payment) -> PaymentInstructions:
    spei = None
    if payment.method == PaymentMethod.SPEI:
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


def _link_request(session: Session, order: m.Order, method: str, due: Decimal, expires_at: datetime) -> LinkRequest:
    """The hosted checkout's lines add up to what is due: the order's lines, or, when store credit or an
    exchange paid part of it, one line for the rest (a checkout takes no negative line)."""
    store = session.get(m.Store, order.store_id)
    lines = [
        LinkLine(orders.line_name(session, line, order.language), line.quantity, line.unit_price)
        for line in order.lines
    ]
    if order.delivery_fee:
        lines.append(LinkLine(t("payments.delivery_fee", order.language), 1, order.delivery_fee))
    if due != order.total:
        lines = [LinkLine(t("payments.rest", order.language, order=order.id, total=format_money(order.total)), 1, due)]
    return LinkRequest(
        order_reference=str(order.id),
        method=method,
        amount=due,
        currency=order.currency,
        title=t("payments.order", order.language, order=order.id, store=store.name),
        lines=tuple(lines),
        language=order.language,
        expires_at=expires_at,
    )
