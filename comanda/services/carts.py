"""Carts: one open cart per conversation, kept in the database so it survives sessions and restarts."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, List, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.errors import NotFound
from comanda.money import money


@dataclass(frozen=True)
class CartLineView:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


def open_cart(session: Session, conversation_id: str) -> m.Cart:
    """The conversation's open cart, created when it has none."""
    conversation = session.get(m.Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id!r}", conversation_id=conversation_id)
    cart = session.execute(
        select(m.Cart).where(m.Cart.conversation_id == conversation_id, m.Cart.status == "open")
        .order_by(m.Cart.id.desc()).limit(1)
    ).scalar_one_or_none()
    if cart is None:
        cart = m.Cart(store_id=conversation.store_id, customer_id=conversation.customer_id,
                      conversation_id=conversation_id, status="open")
        session.add(cart)
        session.flush()
    return cart


def _find_sku(session: Session, business_id: str, sku: str) -> Tuple[Optional[m.Product], Optional[m.ProductVariant]]:
    product = session.execute(
        select(m.Product).where(m.Product.business_id == business_id, m.Product.sku == sku, m.Product.active.is_(True))
    ).scalar_one_or_none()
    if product is not None:
        return product, None
    variant = session.execute(select(m.ProductVariant).where(m.ProductVariant.sku == sku)).scalar_one_or_none()
    if variant is not None and variant.active and variant.product.business_id == business_id:
        return variant.product, variant
    return None, None


def add_skus(session: Session, cart: m.Cart, items: Iterable[Tuple[str, int]]) -> List[str]:
    """Add (SKU, quantity) pairs, e.g. from a WhatsApp catalog order; returns the SKUs not sold here."""
    business_id = session.get(m.Store, cart.store_id).business_id
    unknown = []
    for sku, quantity in items:
        product, variant = _find_sku(session, business_id, str(sku))
        if product is None or quantity <= 0:
            unknown.append(str(sku))
            continue
        line = next((l for l in cart.lines if l.product_id == product.id and l.variant_id == (variant.id if variant else None)
                     and not l.modifiers), None)
        if line is None:
            cart.lines.append(m.CartLine(product_id=product.id, variant_id=variant.id if variant else None,
                                         quantity=quantity, modifiers={}))
        else:
            line.quantity += quantity
    session.flush()
    return unknown


def set_delivery_location(session: Session, cart: m.Cart, latitude: float, longitude: float) -> None:
    """A location shared in the chat becomes where the order is delivered."""
    cart.delivery_latitude = Decimal(str(round(latitude, 6)))
    cart.delivery_longitude = Decimal(str(round(longitude, 6)))
    session.flush()


def unit_price(line: m.CartLine, session: Session) -> Decimal:
    """The product's price plus its chosen modifiers' price deltas."""
    price = line.product.price
    for group_id, code in (line.modifiers or {}).items():
        option = session.execute(
            select(m.ModifierOption).where(m.ModifierOption.group_id == group_id, m.ModifierOption.code == str(code))
        ).scalar_one_or_none()
        if option is not None:
            price += option.price_delta
    return money(price)


def variant_label(product: m.Product, variant: m.ProductVariant, language: str) -> str:
    """"G / negro" in Spanish, "L / black" in English, from the product's variant labels."""
    axes = product.variant_axes or {}
    labels = []
    for axis, code in variant.attributes.items():
        option = next((o for o in axes.get(axis, []) if o["id"] == code), None)
        labels.append(option[language] if option else str(code))
    return " / ".join(labels)


def cart_view(session: Session, cart: m.Cart, language: str) -> Tuple[List[CartLineView], Decimal]:
    lines = []
    for line in cart.lines:
        price = unit_price(line, session)
        name = line.product.name(language)
        if line.variant is not None:
            name = f"{name} ({variant_label(line.product, line.variant, language)})"
        lines.append(CartLineView(line.variant.sku if line.variant else line.product.sku, name, line.quantity, price,
                                  money(price * line.quantity)))
    return lines, money(sum((l.line_total for l in lines), Decimal(0)))
