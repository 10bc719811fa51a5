"""The expiry sweep: orders whose stock hold ran out unpaid expire, their links close, the customer is told."""

from __future__ import annotations

from datetime import datetime
from typing import List, Optional, Tuple

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import NotificationEvent, OrderStatus, PaymentStatus, ReservationStatus
from comanda.services import notifications, orders, reservations
from comanda.services.payments.common import ProviderFor, close_link, lock_order, move, payments_of


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
            close_link(provider_for, provider_name, link_id)
    with transaction() as session:
        reservations.expire_due(session, now)
    return expired


def _due_orders(now: datetime) -> List[int]:
    R = m.Reservation
    active = R.status == ReservationStatus.ACTIVE
    hold_left = exists().where(and_(R.order_id == m.Order.id, active, R.expires_at > now))
    hold_ended = exists().where(and_(R.order_id == m.Order.id, R.expires_at <= now))
    with new_session() as session:
        return list(
            session.execute(
                select(m.Order.id)
                .where(m.Order.status == OrderStatus.PENDING_PAYMENT, hold_ended, ~hold_left)
                .order_by(m.Order.id)
            ).scalars()
        )


def _expire_if_due(session: Session, order_id: int, now: datetime) -> Optional[List[Tuple[str, str]]]:
    """Expire one order if it is still due; the (provider, link) pairs to close, or None."""
    order = lock_order(session, order_id)
    reservation = orders.order_reservation(session, order_id)
    if order.status != OrderStatus.PENDING_PAYMENT or (
        reservation and reservation.status == ReservationStatus.ACTIVE and reservation.expires_at > now
    ):
        return None
    links = []
    for payment in payments_of(session, order_id, (PaymentStatus.PENDING,)):
        if move(session, payment, (PaymentStatus.PENDING,), status=PaymentStatus.EXPIRED) and payment.provider_link_id:
            links.append((payment.provider, payment.provider_link_id))
    expire_order(session, order, "payments:sweep")
    return links


def expire_order(session: Session, order: m.Order, actor: str) -> None:
    """The order's hold released, the order expired, the customer told (once per payment that lapsed)."""
    reservation = orders.order_reservation(session, order.id)
    if reservation is not None:
        reservations.release(session, reservation.id, ReservationStatus.EXPIRED)
    orders.set_status(session, order, OrderStatus.EXPIRED, actor)
    latest = payments_of(session, order.id, (PaymentStatus.EXPIRED, PaymentStatus.DECLINED))
    notifications.notify(session, order, NotificationEvent.EXPIRED, occurrence=latest[-1].id if latest else None)
