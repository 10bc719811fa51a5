"""Checkout rules: pickup or delivery, where the store delivers, the minimum order, how the customer
pays, and what the order costs with its delivery fee.

The chat's checkout form asks (its answers are read by comanda.services.answers); this module decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import List, Optional, Tuple

from sqlalchemy.orm import Session

from comanda import models as m
from comanda.enums import CheckoutProblemReason as R
from comanda.enums import Fulfilment, PaymentMethod
from comanda.errors import ComandaError
from comanda.money import money
from comanda.services import store_credit
from comanda.services.carts import CartLineView, cart_view
from comanda.settings import setting

FULFILMENTS = Fulfilment.values()
PAYMENT_METHODS = PaymentMethod.values()


class CheckoutProblem(ComandaError):
    """Why an order cannot be placed as asked; ``reason`` picks the message the customer reads.

    Reasons: comanda.enums.CheckoutProblemReason."""

    code = "checkout"

    def __init__(self, reason: str, message: str, **params: object) -> None:
        super().__init__(message, reason=reason, **params)
        self.reason = reason


@dataclass(frozen=True)
class Quote:
    """What an order costs: the cart's lines priced, the delivery fee (none for pickup) and the total."""

    lines: Tuple[CartLineView, ...]
    subtotal: Decimal
    delivery_fee: Decimal
    total: Decimal


def delivery_fee(store: m.Store, fulfilment: Optional[str]) -> Decimal:
    return money(store.delivery_fee or 0) if fulfilment == Fulfilment.DELIVERY else money(0)


def quote(session: Session, store: m.Store, cart: m.Cart, fulfilment: Optional[str], language: str) -> Quote:
    """The one price of a cart: the summary the customer confirms and the order placed both come from it."""
    lines, subtotal = cart_view(session, cart, language)
    fee = delivery_fee(store, fulfilment)
    return Quote(tuple(lines), subtotal, fee, money(subtotal + fee))


@dataclass(frozen=True)
class CheckoutDetails:
    fulfilment: str  # a Fulfilment
    customer_name: str
    payment_method: str  # a PaymentMethod (the rest, with use_store_credit; store_credit: all of it)
    postal_code: Optional[str] = None  # delivery: by postal code, or by the location shared in the chat
    address: Optional[str] = None
    use_store_credit: bool = False  # the balance goes first, ``payment_method`` pays what it does not cover


def payment_choices(store: m.Store, fulfilment: Optional[str]) -> List[str]:
    """The business's payment methods (its catalog's business.payment_methods); cash only when the customer
    pays at the counter, SPEI only once the business's CLABE is set (COMANDA_SPEI_CLABE)."""
    return [
        p
        for p in store.business.payment_methods
        if (p != PaymentMethod.CASH or fulfilment != Fulfilment.DELIVERY)
        and (p != PaymentMethod.SPEI or setting("COMANDA_SPEI_CLABE"))
    ]


def delivery_problem(
    session: Session, store: m.Store, cart: m.Cart, postal_code: Optional[str] = None, place: bool = True
) -> Optional[CheckoutProblem]:
    """Whether the store can deliver this cart: it delivers at all, the cart reaches its minimum and,
    with ``place``, the place is one it serves (its postal codes, or within its radius of the location
    shared in the chat)."""
    if not store.delivery_available:
        return CheckoutProblem(R.NO_DELIVERY, f"{store.name} does not deliver")
    _, subtotal = cart_view(session, cart, "es")
    minimum = money(store.delivery_min_order or 0)
    if subtotal < minimum:
        return CheckoutProblem(
            R.BELOW_MINIMUM,
            f"{subtotal} is below the delivery minimum {minimum}",
            minimum=minimum,
            missing=money(minimum - subtotal),
        )
    return place_problem(store, cart, postal_code) if place else None


def place_problem(store: m.Store, cart: m.Cart, postal_code: Optional[str] = None) -> Optional[CheckoutProblem]:
    """Whether the store serves the place: the postal code given, or else the location shared in the chat
    within its radius (a location too far is said when it is shared, not at the order's confirmation)."""
    if postal_code:
        if postal_code not in {c.postal_code for c in store.delivery_postal_codes}:
            return CheckoutProblem(
                R.POSTAL_CODE_NOT_SERVED, f"{store.name} does not deliver to {postal_code}", postal_code=postal_code
            )
    elif cart.delivery_latitude is not None and store.latitude is not None and store.delivery_radius_km:
        distance = distance_km(cart.delivery_latitude, cart.delivery_longitude, store.latitude, store.longitude)
        if distance > store.delivery_radius_km:
            return CheckoutProblem(
                R.TOO_FAR, f"{distance:.1f} km is beyond {store.delivery_radius_km} km", distance_km=round(distance, 1)
            )
    else:
        return CheckoutProblem(R.NO_DELIVERY_PLACE, "a delivery needs a postal code or a shared location")
    return None


def check_checkout(session: Session, store: m.Store, cart: m.Cart, details: CheckoutDetails) -> None:
    """Raise CheckoutProblem unless the order can be placed exactly as described."""
    if not details.customer_name:
        raise CheckoutProblem(R.NAME_MISSING, "an order needs the customer's name")
    if details.fulfilment == Fulfilment.DELIVERY:
        problem = delivery_problem(session, store, cart, details.postal_code)
        if problem:
            raise problem
    elif details.fulfilment != Fulfilment.PICKUP:
        raise CheckoutProblem(R.NO_DELIVERY, f"unknown fulfilment {details.fulfilment!r}")
    if details.payment_method == PaymentMethod.STORE_CREDIT or details.use_store_credit:
        credit = store_credit.balance(session, store.business_id, cart.customer_id)
        total = quote(session, store, cart, details.fulfilment, store.business.default_language).total
        if details.payment_method == PaymentMethod.STORE_CREDIT and 0 < total <= credit:
            return
        if credit <= 0:
            raise CheckoutProblem(R.PAYMENT_NOT_OFFERED, "no store credit left", method=PaymentMethod.STORE_CREDIT)
    if details.payment_method not in payment_choices(store, details.fulfilment):
        raise CheckoutProblem(
            R.PAYMENT_NOT_OFFERED, f"{details.payment_method!r} is not offered here", method=details.payment_method
        )


def distance_km(lat1: Decimal, lon1: Decimal, lat2: Decimal, lon2: Decimal) -> Decimal:
    """Great-circle distance (haversine); a city block's precision is all delivery needs."""
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp, dl = p2 - p1, math.radians(float(lon2) - float(lon1))
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return Decimal(str(round(2 * 6371.0 * math.asin(math.sqrt(a)), 3)))
