"""Staff accounts, personal tokens and orders waiting in the queue, as the console's tests need them."""

from __future__ import annotations

from decimal import Decimal
from typing import Optional, Sequence, Tuple

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import OrderPaymentStatus, PaymentMethod, PaymentProviderName, PaymentStatus
from comanda.services import carts, orders, staff
from comanda.services.audit import Actor
from comanda.services.checkout import CheckoutDetails

ANA = "centro:whatsapp:+525511112222"
TEST_ACTOR = Actor("test")
PASSWORD = "correct horse battery"


def add_staff(
    email: str, role: str = "staff", stores: Sequence[str] = ("centro",), password: str = PASSWORD, language: str = "es"
) -> int:
    with transaction() as session:
        user, _ = staff.add_staff(
            session, TEST_ACTOR, email, email.split("@")[0].title(), role, [] if role == "owner" else list(stores),
            password=password, language=language,
        )
        return user.id


def personal_token(email: str) -> str:
    with transaction() as session:
        return staff.create_token(session, TEST_ACTOR, staff.find_staff(session, email))[1]


def member(email: str) -> staff.StaffMember:
    with new_session() as session:
        return staff.member(session, staff.find_staff(session, email))


def queued_order(
    conversation: str = ANA,
    items: Sequence[Tuple[str, int]] = (("CONCHA", 2),),
    method: str = PaymentMethod.CARD.value,
    name: str = "Ana López",
    fulfilment: str = "pickup",
    address: Optional[str] = None,
    postal_code: Optional[str] = None,
    location: Optional[Tuple[str, str]] = None,
    note: Optional[str] = None,
    line_note: Optional[str] = None,
    modifiers: Optional[dict] = None,
) -> int:
    """An order in the queue as ``received``: cash goes there on its own; a card order is recorded as paid
    (the payment flow itself is tested elsewhere)."""
    with transaction() as session:
        cart = carts.open_cart(session, conversation)
        carts.add_items(
            session, cart, [carts.Wanted(sku, quantity, modifiers=modifiers or {}) for sku, quantity in items], "es"
        )
        if location:
            cart.delivery_latitude, cart.delivery_longitude = Decimal(location[0]), Decimal(location[1])
    with transaction() as session:
        details = CheckoutDetails(fulfilment, name, method, postal_code=postal_code, address=address)
        order = orders.place_order(session, conversation, details, actor="test")
        order.note = note
        if line_note:
            order.lines[0].note = line_note
        if method != PaymentMethod.CASH:
            session.add(
                m.Payment(
                    order_id=order.id,
                    provider=PaymentProviderName.SANDBOX.value,
                    method=method,
                    status=PaymentStatus.PAID.value,
                    amount=order.total,
                    paid_at=clock.now(),
                )
            )
            order.payment_status, order.paid_at = OrderPaymentStatus.PAID.value, clock.now()
            orders.enter_queue(session, order, "test")
        return order.id


def order_row(order_id: int) -> m.Order:
    with new_session() as session:
        return session.get(m.Order, order_id)
