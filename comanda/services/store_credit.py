"""Store credit (saldo a favor): a ledger of movements per customer and business (``store_credit_movements``).

A return credits it (comanda.services.returns), an order spends it: offered as a payment method at checkout
whenever there is a balance, and applied in the transaction that places the order, up to its total; what it does
not cover is paid the way the customer chose for the rest (a link, SPEI, cash at the counter). An order that is
cancelled or expires unpaid gives back what it spent. One movement each way per order (unique kind + order), so
applying or giving back twice changes nothing. The balance is the ledger's sum; the customer's row is locked while
an order spends, so two checkouts at once never spend it twice.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate
from comanda.enums import OrderPaymentStatus, PaymentMethod, PaymentProviderName, PaymentStatus, StoreCreditKind
from comanda.errors import ComandaError
from comanda.money import round_money

MOVEMENTS = m.StoreCreditMovement


class CreditShort(ComandaError):
    """There is no credit to spend (spent meanwhile by another order), or not the whole total it was to pay."""

    code = "store_credit_short"


def _sum(session: Session, *where: object) -> Decimal:
    total = session.execute(select(func.coalesce(func.sum(MOVEMENTS.amount), 0)).where(*where)).scalar()
    return round_money(Decimal(str(total)))  # SQLite sums money as floats


def balance(session: Session, business_id: str, customer_id: int) -> Decimal:
    """The customer's store credit at the business: the sum of its ledger."""
    return _sum(session, MOVEMENTS.business_id == business_id, MOVEMENTS.customer_id == customer_id)


def spent_on(session: Session, order_id: int) -> Decimal:
    """The credit an order holds now: what it spent, less what it gave back."""
    return -_sum(session, MOVEMENTS.order_id == order_id)


def credited_for(session: Session, return_id: int) -> Decimal:
    """What a return put on the customer's credit (its worth, or an exchange's cheaper difference)."""
    return _sum(session, MOVEMENTS.return_id == return_id)


def given_back(session: Session, order_id: int) -> Decimal:
    """What the order gave back to the customer's credit when it was cancelled or expired (0: nothing)."""
    return _sum(session, MOVEMENTS.order_id == order_id, MOVEMENTS.kind == StoreCreditKind.RESTORED)


def apply_to_order(session: Session, order: m.Order, actor: str, whole: bool = False) -> Decimal:
    """Spend the customer's credit on a just-placed order, up to its total, once (unique kind + order), as a paid
    ``store_credit`` payment of that much. When it covers the total the order is paid (the caller puts it in the
    queue) and its method becomes store credit; otherwise the rest is paid the order's way. CreditShort when
    there is no credit, or (``whole``) it no longer covers the total. The amount applied."""
    session.execute(select(m.Customer.id).where(m.Customer.id == order.customer_id).with_for_update())
    found = balance(session, order.business_id, order.customer_id)
    if found <= 0 or (whole and found < order.total):
        raise CreditShort(f"order {order.id}: store credit {found} does not pay {order.total}", order_id=order.id)
    applied = min(found, order.total)
    spent = MOVEMENTS(
        business_id=order.business_id,
        customer_id=order.customer_id,
        kind=StoreCreditKind.CHECKOUT,
        amount=-applied,
        order_id=order.id,
        actor=actor,
        note=f"order {order.id}",
    )
    if insert_unless_duplicate(session, spent) is None:
        raise CreditShort(f"order {order.id} was paid with store credit already", order_id=order.id)
    session.add(
        m.Payment(
            order_id=order.id,
            provider=PaymentProviderName.STORE_CREDIT,
            method=PaymentMethod.STORE_CREDIT,
            status=PaymentStatus.PAID,
            amount=applied,
            paid_at=clock.now(),
        )
    )
    if applied == order.total:
        order.payment_method = PaymentMethod.STORE_CREDIT
        order.payment_status, order.paid_at = OrderPaymentStatus.PAID, clock.now()
    session.flush()
    return applied


def give_back(session: Session, order: m.Order, actor: str, why: str) -> Decimal:
    """An order cancelled or expired gives the credit it spent back to the customer, once (unique kind + order);
    its store-credit payment is then refunded. What came back (0 when it spent none, or gave it back already)."""
    held = spent_on(session, order.id)
    if held <= 0:
        return Decimal("0.00")
    back = MOVEMENTS(
        business_id=order.business_id,
        customer_id=order.customer_id,
        kind=StoreCreditKind.RESTORED,
        amount=held,
        order_id=order.id,
        actor=actor,
        note=f"order {order.id} {why}",
    )
    if insert_unless_duplicate(session, back) is None:
        return Decimal("0.00")
    payments = m.Payment.__table__
    session.execute(
        update(payments)
        .where(
            payments.c.order_id == order.id,
            payments.c.provider == PaymentProviderName.STORE_CREDIT,
            payments.c.status == PaymentStatus.PAID,
        )
        .values(status=PaymentStatus.REFUNDED)
    )
    session.flush()
    return held
