"""Returns in tests: a demo sale paid by card through the sandbox and picked up, then returned through the
real services, with stand-in providers that refuse or settle later."""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, Optional

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import OrderStatus
from comanda.services import orders, payments, returns
from comanda.services.audit import Actor
from comanda.services.payment_provider import ProviderError, ProviderRefund
from integrations.cfdi.local import LocalIssuer
from integrations.payments import payment_provider
from tests.helpers.payments import ANA, pay, place, start

LOCAL = LocalIssuer()
STAFF = Actor("staff:test")


def sold(sku: str = "TAZA", quantity: int = 1, conversation: str = ANA, method: str = "card") -> int:
    """An order of ``quantity`` × ``sku`` paid through the sandbox (or cash, or store credit) and picked up: its
    id."""
    order_id = place(conversation, method=method, sku=sku, quantity=quantity)
    if method not in ("cash", "store_credit"):
        pay(start(order_id).payment_id)
    with transaction() as session:
        order = session.get(m.Order, order_id)
        for status in (OrderStatus.READY, OrderStatus.PICKED_UP):
            orders.set_status(session, order, status, "test")
        payments.collect_cash(session, order, "test")  # cash is paid at the hand-over (nothing for other methods)
    return order_id


def line_of(order_id: int, sku: Optional[str] = None) -> int:
    with new_session() as session:
        query = select(m.OrderLine.id).where(m.OrderLine.order_id == order_id)
        if sku:
            query = query.where(m.OrderLine.sku == sku)
        return session.execute(query.order_by(m.OrderLine.id)).scalars().first()


def ask(order_id: int, units: Optional[Dict[int, int]] = None, **fields: object) -> int:
    """The customer's return of the order (every unit of its first line by default): its id."""
    with transaction() as session:
        order = session.get(m.Order, order_id)
        wanted = units or {order.lines[0].id: order.lines[0].quantity}
        request = returns.ReturnRequest(order_id, wanted, **fields)  # type: ignore[arg-type]
        return returns.request_return(session, order.customer_id, order.store_id, request, "customer:test").id


def staff_step(return_id: int, step: str, *args: object) -> None:
    """approve / reject(reason) / receive(condition), as staff, in a transaction of its own."""
    with transaction() as session:
        getattr(returns, step)(session, returns.get_return(session, return_id), STAFF, *args)


def settle(return_id: int, provider_for=payment_provider) -> returns.Settled:
    return returns.settle(return_id, provider_for, LOCAL, STAFF.name)


def status(return_id: int) -> str:
    with new_session() as session:
        return returns.get_return(session, return_id).status


class RefusingProvider:
    """The sandbox, except that refunds fail (as a provider that is down or refuses)."""

    def __init__(self) -> None:
        self.inner = payment_provider("sandbox")

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def refund(self, payment_id: str, amount: Decimal, idempotency_key: str) -> ProviderRefund:
        raise ProviderError("sandbox: refunds are down")


class PendingProvider(RefusingProvider):
    """The sandbox, except that refunds are settled later, by webhook (as Stripe may)."""

    def refund(self, payment_id: str, amount: Decimal, idempotency_key: str) -> ProviderRefund:
        return ProviderRefund(refund_id=f"re_{idempotency_key.replace(':', '_')}", status="pending")
