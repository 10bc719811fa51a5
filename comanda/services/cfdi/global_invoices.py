"""The factura global: one CFDI for a store's paid sales of a day or a month that nobody invoiced.

It goes to the public in general (RFC XAXX010101000, PUBLICO EN GENERAL, régimen 616, uso S01, the store's
postal code as DomicilioFiscalReceptor) with InformacionGlobal (Periodicidad 01 daily or 04 monthly, the
month, the year), and, as SAT's guía de llenado del CFDI global asks, one concepto per sale: ClaveProdServ
01010101, ClaveUnidad ACT, Descripción "Venta", the ticket as NoIdentificacion, its IVA apart. Its forma de
pago is the one of the largest amount. A period can be invoiced once it has ended.

A sale already in a global invoice whose customer then asks for their own invoice (within the business's
deadline) is handled as SAT requires for cancellation motive 04, "operación nominativa relacionada en una
factura global": the global invoice is cancelled with motive 04 and issued again without that sale, and the
customer gets their nominative invoice. Comanda stamps the customer's invoice first and only then replaces the
global one, so a rejected or failed customer invoice never leaves the sale out of every CFDI; the
replacement relates to the cancelled global (TipoRelacion 04). If the PAC cannot be reached for the
replacement, running ``comanda cfdi global`` for the period again finishes it, with the same relation.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import local_date
from comanda.db import transaction
from comanda.enums import CancellationMotive, InvoiceKind, InvoiceStatus, OrderPaymentStatus
from comanda.errors import ComandaError
from comanda.i18n import t
from comanda.services.cfdi.catalogs import GENERIC_NATIONAL, GENERIC_REGIME, GENERIC_USE, PUBLIC_IN_GENERAL
from comanda.services.cfdi.documents import (
    INGRESO,
    RELATION_SUBSTITUTION,
    CfdiDocument,
    CfdiIssuer,
    Concept,
    GlobalInfo,
    Receiver,
)
from comanda.services.cfdi.lifecycle import ISSUED, LIVE, add_draft, audit, cancel_invoice, get_invoice, issue_draft
from comanda.services.cfdi.problems import refuse
from comanda.services.cfdi.sales import issue_time, issuer_of, main_payment_form, order_ticket
from comanda.services.cfdi.taxes import split_iva_included, totals
from comanda.services.stores import get_store

log = logging.getLogger(__name__)

SERIES = "G"
SALE_PROD_SERV, SALE_UNIT = "01010101", "ACT"
DAILY, MONTHLY = "01", "04"
PERIOD_PATTERN = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


@dataclass(frozen=True)
class GlobalPeriod:
    label: str  # "2026-11" or "2026-11-20"
    periodicity: str
    start: date
    end: date  # exclusive

    @property
    def info(self) -> GlobalInfo:
        return GlobalInfo(self.periodicity, f"{self.start.month:02d}", self.start.year)

    def utc_bounds(self, zone_name: str) -> Tuple[datetime, datetime]:
        """The period's first and first-after moments, local midnights in UTC."""
        zone = ZoneInfo(zone_name)
        start, end = (
            datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(timezone.utc) for d in (self.start, self.end)
        )
        return start, end


def parse_period(period: str) -> GlobalPeriod:
    """YYYY-MM (monthly) or YYYY-MM-DD (daily)."""
    match = PERIOD_PATTERN.match(period)
    if match is None:
        raise refuse("period", "global_period_format", period=period)
    try:
        year, month = int(match.group(1)), int(match.group(2))
        if match.group(3):
            start = date(year, month, int(match.group(3)))
            return GlobalPeriod(period, DAILY, start, start + timedelta(days=1))
        start = date(year, month, 1)
    except ValueError:
        raise refuse("period", "global_period_format", period=period) from None
    return GlobalPeriod(period, MONTHLY, start, (start + timedelta(days=32)).replace(day=1))


def issue_global_invoice(
    store_id: str, period: str, *, issuer: CfdiIssuer, actor: str, url: Optional[str] = None
) -> Optional[m.Invoice]:
    """The global invoice of a store's period. If one is live and some of its sales have been invoiced
    apart since, it is replaced (motive 04); the new one is returned (None when no sale is left)."""
    span = parse_period(period)
    with transaction(url) as session:
        store = get_store(session, store_id)
        if local_date(store.business.timezone) < span.end:
            raise refuse("period", "global_period_open", period=period)
        current = _live_global(session, store.id, span.label)
        if current is not None:
            if not _invoiced_apart(session, current):
                raise refuse("period", "global_already_issued", period=period)
            current_id = current.id
        else:
            orders = _uninvoiced_sales(session, store, span)
            if not orders:
                raise refuse("period", "global_nothing_to_invoice", period=period)
            draft_id, document = _draft(session, store, span, orders, _unreplaced(session, store.id, span.label), actor)
    if current is not None:
        return _replace(current_id, issuer, actor, url)
    return issue_draft(draft_id, document, issuer, actor, url)


def take_out_of_global(
    order_id: int, *, issuer: CfdiIssuer, actor: str, url: Optional[str] = None
) -> Optional[m.Invoice]:
    """After an order got its own invoice: replace the live global invoice that still includes it, if any.
    Failures are logged and audited, not raised: the customer's invoice is already stamped."""
    with transaction(url) as session:
        current = (
            session.execute(
                select(m.Invoice)
                .join(m.InvoiceOrder, m.InvoiceOrder.invoice_id == m.Invoice.id)
                .where(
                    m.InvoiceOrder.order_id == order_id,
                    m.Invoice.kind == InvoiceKind.GLOBAL,
                    m.Invoice.status.in_(ISSUED),
                )
            )
            .scalars()
            .first()
        )
        if current is None:
            return None
        current_id = current.id
    try:
        return _replace(current_id, issuer, actor, url)
    except ComandaError as exc:
        log.warning(
            "order %s has its own invoice, but global invoice %s could not be replaced: %s", order_id, current_id, exc
        )
        with transaction(url) as session:
            audit(
                session,
                actor,
                "replacement_failed",
                get_invoice(session, current_id),
                reason=exc.message,
                order_id=order_id,
            )
        return None


def _replace(global_id: int, issuer: CfdiIssuer, actor: str, url: Optional[str]) -> Optional[m.Invoice]:
    """Cancel with motive 04, then issue the period again with the sales still without a CFDI."""
    cancelled = cancel_invoice(global_id, CancellationMotive.NOMINATIVE_IN_GLOBAL, issuer=issuer, actor=actor, url=url)
    if cancelled.status != InvoiceStatus.CANCELLED:
        log.warning("global invoice %s: cancellation pending at SAT; re-issue the period once it is done", global_id)
        return None
    with transaction(url) as session:
        old = get_invoice(session, global_id)
        store, span = session.get(m.Store, old.store_id), parse_period(old.global_period)
        orders = _uninvoiced_sales(session, store, span)
        if not orders:
            return None
        draft_id, document = _draft(session, store, span, orders, old, actor)
    return issue_draft(draft_id, document, issuer, actor, url)


def _live_global(session: Session, store_id: str, label: str) -> Optional[m.Invoice]:
    return session.execute(
        select(m.Invoice).where(m.Invoice.active_key == f"global:{store_id}:{label}")
    ).scalar_one_or_none()


def _unreplaced(session: Session, store_id: str, label: str) -> Optional[m.Invoice]:
    """The period's latest global invoice when it was cancelled with motive 04 and its replacement never issued
    (the PAC failed half way): the one issued now replaces it."""
    latest = (
        session.execute(
            select(m.Invoice)
            .where(
                m.Invoice.kind == InvoiceKind.GLOBAL,
                m.Invoice.store_id == store_id,
                m.Invoice.global_period == label,
                m.Invoice.status.in_((*ISSUED, InvoiceStatus.CANCELLED.value)),
            )
            .order_by(m.Invoice.id.desc())
        )
        .scalars()
        .first()
    )
    cancelled_for_replacement = (
        latest is not None and latest.cancellation_motive == CancellationMotive.NOMINATIVE_IN_GLOBAL
    )
    return latest if cancelled_for_replacement else None


def _invoiced_apart(session: Session, invoice: m.Invoice) -> bool:
    """Whether some sale in this global invoice now has an issued invoice of its own (a draft still in the PAC's
    hands, or unconfirmed, may come to nothing: the sale stays in the global invoice until it is issued)."""
    return (
        session.execute(
            select(m.Invoice.id)
            .join(m.InvoiceOrder, m.InvoiceOrder.order_id == m.Invoice.order_id)
            .where(
                m.InvoiceOrder.invoice_id == invoice.id,
                m.Invoice.kind == InvoiceKind.INGRESO,
                m.Invoice.status.in_(ISSUED),
            )
        ).first()
        is not None
    )


def _uninvoiced_sales(session: Session, store: m.Store, span: GlobalPeriod) -> List[m.Order]:
    """Paid sales of the period in no live CFDI: neither their own invoice nor a global one."""
    start, end = span.utc_bounds(store.business.timezone)
    own = (
        select(m.Invoice.id)
        .where(m.Invoice.order_id == m.Order.id, m.Invoice.kind == InvoiceKind.INGRESO, m.Invoice.status.in_(LIVE))
        .exists()
    )
    in_global = (
        select(m.InvoiceOrder.order_id)
        .join(m.Invoice, m.Invoice.id == m.InvoiceOrder.invoice_id)
        .where(m.InvoiceOrder.order_id == m.Order.id, m.Invoice.status.in_(LIVE))
        .exists()
    )
    return list(
        session.execute(
            select(m.Order)
            .where(
                m.Order.store_id == store.id,
                m.Order.payment_status == OrderPaymentStatus.PAID,
                m.Order.paid_at >= start,
                m.Order.paid_at < end,
                ~own,
                ~in_global,
            )
            .order_by(m.Order.paid_at, m.Order.id)
        ).scalars()
    )


def _draft(
    session: Session,
    store: m.Store,
    span: GlobalPeriod,
    orders: List[m.Order],
    replaces: Optional[m.Invoice],
    actor: str,
) -> Tuple[int, CfdiDocument]:
    business = store.business
    concepts = tuple(
        Concept(
            SALE_PROD_SERV,
            SALE_UNIT,
            t("cfdi.concept.sale", "es"),
            order_ticket(order),
            split_iva_included(order.total),
        )
        for order in orders
    )
    amounts = totals(c.amount for c in concepts)
    receiver = Receiver(GENERIC_NATIONAL, PUBLIC_IN_GENERAL, store.postal_code, GENERIC_REGIME, GENERIC_USE)
    invoice = m.Invoice(
        business_id=business.id,
        store_id=store.id,
        kind=InvoiceKind.GLOBAL,
        status=InvoiceStatus.DRAFT,
        series=SERIES,
        receiver_rfc=receiver.rfc,
        receiver_name=receiver.name,
        receiver_postal_code=receiver.postal_code,
        receiver_tax_regime=receiver.tax_regime,
        cfdi_use=receiver.cfdi_use,
        payment_form=main_payment_form(session, orders),
        subtotal=amounts.subtotal,
        tax=amounts.tax,
        total=amounts.total,
        active_key=f"global:{store.id}:{span.label}",
        global_period=span.label,
        related_uuid=replaces.uuid if replaces else None,
        relation_type=RELATION_SUBSTITUTION if replaces else None,
    )
    if not add_draft(session, invoice, actor):
        raise refuse("period", "global_already_issued", period=span.label)
    session.add_all(m.InvoiceOrder(invoice_id=invoice.id, order_id=order.id) for order in orders)
    document = CfdiDocument(
        kind=INGRESO,
        series=SERIES,
        folio=invoice.folio,
        issued_at=issue_time(business),
        expedition_postal_code=store.postal_code,
        issuer=issuer_of(business),
        receiver=receiver,
        payment_form=invoice.payment_form,
        concepts=concepts,
        relation_type=invoice.relation_type,
        related_uuid=invoice.related_uuid,
        global_info=span.info,
    )
    return invoice.id, document
