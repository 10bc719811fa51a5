"""A day's link payments against each provider's books: what Comanda recorded, what the provider took."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.enums import ProviderPaymentStatus, ReconciliationStatus
from comanda.errors import NotFound
from comanda.services.payment_provider import ProviderPayment
from comanda.services.payments.common import MANUAL_PROVIDERS, PAYABLE, ProviderFor

TOOK_MONEY = (ProviderPaymentStatus.PAID, ProviderPaymentStatus.REFUNDED)  # the provider charged the customer


@dataclass(frozen=True)
class ReconciliationRow:
    status: ReconciliationStatus
    provider: str
    order_id: Optional[int]
    ticket: Optional[str]
    payment_id: Optional[int]
    provider_payment_id: Optional[str]
    ours: Optional[Decimal]
    theirs: Optional[Decimal]
    note: str = ""


def reconcile(
    session: Session,
    day: date,
    provider_for: ProviderFor,
    store_id: Optional[str] = None,
    provider_names: Sequence[str] = (),
) -> List[ReconciliationRow]:
    """The day's link payments (the business's local day, by when the link was made) against what
    each provider's books say: ``ok``, ``missing`` (the provider took money Comanda did not record),
    ``missing_at_provider`` (recorded as paid, unknown to the provider), ``duplicated`` (an order paid
    more than once), ``amount_mismatch``, ``unpaid_link`` (a link never paid). Providers in
    ``provider_names`` are asked even when none of the day's payments used them."""
    query = select(m.Store).order_by(m.Store.id)
    stores = session.execute(query.where(m.Store.id == store_id) if store_id else query).scalars().all()
    if not stores:
        raise NotFound(f"no store {store_id!r}", store_id=store_id)
    rows: List[ReconciliationRow] = []
    for timezone_name, store_ids in _stores_by_timezone(session, stores).items():
        start = datetime.combine(day, datetime.min.time(), ZoneInfo(timezone_name)).astimezone(timezone.utc)
        end = start + timedelta(days=1)
        ours = session.execute(
            select(m.Payment, m.Order)
            .join(m.Order, m.Order.id == m.Payment.order_id)
            .where(
                m.Order.store_id.in_(store_ids),
                m.Payment.provider.not_in(MANUAL_PROVIDERS),
                m.Payment.created_at >= start,
                m.Payment.created_at < end,
            )
            .order_by(m.Payment.id)
        ).all()
        names = sorted({payment.provider for payment, _ in ours} | set(provider_names))
        for name in names:
            # a day's links are paid up to a day later, and a provider's clock may run early
            theirs = provider_for(name).list_payments(start - timedelta(days=1), end + timedelta(days=1))
            rows += [
                row
                for row in _compare(name, [(p, o) for p, o in ours if p.provider == name], theirs, start, end)
                if row.order_id is None or _order_store(session, row.order_id) in (*store_ids, None)
            ]
    return rows


def _order_store(session: Session, order_id: int) -> Optional[str]:
    """The order's store; None for a reference that names no order here (reported wherever asked)."""
    order = session.get(m.Order, order_id)
    return order.store_id if order else None


def _stores_by_timezone(session: Session, stores: Sequence[m.Store]) -> Dict[str, List[str]]:
    grouped: Dict[str, List[str]] = {}
    for store in stores:
        grouped.setdefault(session.get(m.Business, store.business_id).timezone, []).append(store.id)
    return grouped


def _compare(
    provider: str, ours: List[Tuple[m.Payment, m.Order]], theirs: List[ProviderPayment], start: datetime, end: datetime
) -> List[ReconciliationRow]:
    by_payment = {p.payment_id: p for p in theirs}
    paid_by_link: Dict[str, List[ProviderPayment]] = {}
    for p in theirs:
        if p.status in TOOK_MONEY and p.link_id:
            paid_by_link.setdefault(p.link_id, []).append(p)
    rows: List[ReconciliationRow] = []
    matched: Set[str] = set()
    paid_orders: Dict[int, int] = {}
    for payment, order in ours:
        found = by_payment.get(payment.provider_payment_id or "") or next(
            iter(paid_by_link.get(payment.provider_link_id or "", [])), None
        )
        row: Dict[str, Any] = dict(
            provider=provider,
            order_id=order.id,
            ticket=order.ticket_code,
            payment_id=payment.id,
            provider_payment_id=found.payment_id if found else payment.provider_payment_id,
            ours=payment.amount,
            theirs=found.amount if found else None,
        )
        if found is not None:
            matched.add(found.payment_id)
        if payment.status in PAYABLE:
            if found is not None and found.status in TOOK_MONEY:
                note = f"the provider took it; Comanda has it {payment.status}"
                rows.append(ReconciliationRow(ReconciliationStatus.MISSING, **row, note=note))
            else:
                rows.append(ReconciliationRow(ReconciliationStatus.UNPAID_LINK, **row, note=payment.status))
            continue
        if found is None or found.status not in TOOK_MONEY:
            note = f"Comanda has it {payment.status}"
            rows.append(ReconciliationRow(ReconciliationStatus.MISSING_AT_PROVIDER, **row, note=note))
        elif found.amount != payment.amount or found.currency.upper() != payment.currency.upper():
            note = f"{found.currency} at the provider"
            rows.append(ReconciliationRow(ReconciliationStatus.AMOUNT_MISMATCH, **row, note=note))
        elif order.id in paid_orders:
            note = f"also paid by payment {paid_orders[order.id]}"
            rows.append(ReconciliationRow(ReconciliationStatus.DUPLICATED, **row, note=note))
        else:
            rows.append(ReconciliationRow(ReconciliationStatus.OK, **row, note=payment.status))
        paid_orders.setdefault(order.id, payment.id)
    for p in theirs:
        if p.payment_id in matched or p.status not in TOOK_MONEY or not start <= p.created_at < end:
            continue
        reference = p.order_reference or ""
        order_id = int(reference) if reference.isdigit() else None
        rows.append(
            ReconciliationRow(
                ReconciliationStatus.MISSING,
                provider,
                order_id,
                None,
                None,
                p.payment_id,
                None,
                p.amount,
                note="a provider payment no Comanda payment matches",
            )
        )
    return rows
