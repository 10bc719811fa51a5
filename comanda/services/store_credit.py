"""Store credit (saldo a favor): a ledger of movements per customer and business (``store_credit_movements``).

A return credits it (comanda.services.returns), an order spends it: offered as a payment method at checkout when
the balance covers the order's total, and applied in the transaction that places the order. The balance is the
ledger's sum; the customer's row is locked while an order spends, so two checkouts at once never spend it twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate
from comanda.enums import OrderPaymentStatus, PaymentMethod, PaymentProviderName, PaymentStatus, StoreCreditKind
from comanda.errors import ComandaError
from comanda.money import round_money


class CreditShort(ComandaError):
    """The balance does not cover the order (spent meanwhile by another order)."""

    code = "store_credit_short"


def balance(session: Session, business_id: str, customer_id: int) -> Decimal:
    """The customer's store credit at the business: the sum of its ledger."""
    total = session.execute(
        select(func.coalesce(func.sum(m.StoreCreditMovement.amount), 0)).where(
            m.StoreCreditMovement.business_id == business_id, m.StoreCreditMovement.customer_id == customer_id
        )
    ).scalar()
    return round_money(Decimal(str(total)))  # SQLite sums money as floats


def covering(session: Session, business_id: str, customer_id: int, total: Decimal) -> Optional[Decimal]:
    """The balance when it covers ``total`` (store credit is then offered as a way to pay), else None."""
    found = balance(session, business_id, customer_id)
    return found if found > 0 and found >= total else None


def pay_order(session: Session, order: m.Order, actor: str) -> m.Payment:
    """Spend the order's total from the customer's credit, once per order (unique kind + order), as a paid
    payment; the caller puts the order in the queue. CreditShort when the balance no longer covers it."""
    session.execute(select(m.Customer.id).where(m.Customer.id == order.customer_id).with_for_update())
    if covering(session, order.business_id, order.customer_id, order.total) is None:
        raise CreditShort(f"order {order.id}: store credit does not cover {order.total}", order_id=order.id)
    spent = m.StoreCreditMovement(
        business_id=order.business_id,
        customer_id=order.customer_id,
        kind=StoreCreditKind.CHECKOUT,
        amount=-order.total,
        order_id=order.id,
        actor=actor,
        note=f"order {order.id}",
    )
    if insert_unless_duplicate(session, spent) is None:
        raise CreditShort(f"order {order.id} was paid with store credit already", order_id=order.id)
    payment = m.Payment(
        order_id=order.id,
        provider=PaymentProviderName.STORE_CREDIT,
        method=PaymentMethod.STORE_CREDIT,
        status=PaymentStatus.PAID,
        amount=order.total,
        paid_at=clock.now(),
    )
    session.add(payment)
    order.payment_status, order.paid_at = OrderPaymentStatus.PAID, clock.now()
    session.flush()
    return payment
