"""A customer's invoice for a paid order: which orders qualify, saved fiscal data, and issuing it.

The chat's flow: ``invoiceable_orders`` (the latest, or a list to choose from: ``InvoiceableOrder.option``),
``fiscal_profiles`` to offer saved data again, ``fiscal.check_*`` per answer, then ``issue_invoice`` and
``links.invoice_document_messages`` / ``delivery.email_invoice``. Every refusal is an ``InvoiceRefused``.

The deadline policy is the business's ``invoice_deadline``: ``same_month`` allows an invoice until the end of
the calendar month in which the order was paid, in the business's timezone (RMF 2.7.1.21 lets a customer ask
for a nominative CFDI within the month of the operation; after that the sale belongs to the global invoice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import List, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import now
from comanda.db import transaction
from comanda.enums import CancellationMotive, InvoiceKind, InvoiceStatus, OrderPaymentStatus
from comanda.errors import ComandaError, ConfigError
from comanda.i18n import t
from comanda.money import format_money
from comanda.services.cfdi.catalogs import Option
from comanda.services.cfdi.documents import INGRESO, RELATION_SUBSTITUTION, CfdiDocument, CfdiIssuer, Receiver
from comanda.services.cfdi.fiscal import FiscalData, check_fiscal_data
from comanda.services.cfdi.global_invoices import take_out_of_global
from comanda.services.cfdi.lifecycle import LIVE, add_draft, audit, cancel_invoice, get_invoice, issue_draft
from comanda.services.cfdi.problems import InvoiceRefused, refuse
from comanda.services.cfdi.sales import issue_time, issuer_of, order_concepts, payment_form
from comanda.services.cfdi.taxes import totals
from comanda.services.orders import get_order

log = logging.getLogger(__name__)

SERIES = "F"
RECENT_ORDERS = 20  # how many of a customer's latest paid orders are looked at


@dataclass(frozen=True)
class InvoiceableOrder:
    order_id: int
    ticket: str
    total: Decimal
    paid_at: datetime  # local
    items: int

    def option(self, language: str) -> Option:
        """A WhatsApp list row: "C-042 · $101.00" / "2026-11-20 · 4 artículos"."""
        return Option(
            str(self.order_id),
            t("cfdi.order_option.title", language, ticket=self.ticket, total=format_money(self.total)),
            t("cfdi.order_option.description", language, date=self.paid_at.date().isoformat(), items=self.items),
        )


def invoice_deadline(business: m.Business, paid_at: datetime) -> datetime:
    """The first moment an order paid at ``paid_at`` can no longer be invoiced (aware, local time)."""
    if business.invoice_deadline != "same_month":
        raise ConfigError(
            f"business {business.id}: unknown invoice_deadline {business.invoice_deadline!r} (supported: same_month)"
        )
    local = paid_at.astimezone(ZoneInfo(business.timezone))
    next_month = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
    return next_month.replace(hour=0, minute=0, second=0, microsecond=0)


def live_invoice_for_order(session: Session, order_id: int) -> Optional[m.Invoice]:
    return (
        session.execute(
            select(m.Invoice)
            .where(m.Invoice.order_id == order_id, m.Invoice.kind == InvoiceKind.INGRESO, m.Invoice.status.in_(LIVE))
            .order_by(m.Invoice.id.desc())
        )
        .scalars()
        .first()
    )


def order_problem(session: Session, order: m.Order) -> Optional[InvoiceRefused]:
    """Why this order cannot be invoiced now (not paid, refunded, invoiced, past the deadline), or None."""
    if order.payment_status in (OrderPaymentStatus.REFUNDED, OrderPaymentStatus.PARTIALLY_REFUNDED):
        return refuse("order", "order_refunded")
    if order.payment_status != OrderPaymentStatus.PAID:
        return refuse("order", "order_not_paid")
    if live_invoice_for_order(session, order.id) is not None:
        return refuse("order", "order_already_invoiced")
    deadline = invoice_deadline(session.get(m.Business, order.business_id), order.paid_at or order.created_at)
    if now() >= deadline:
        return refuse("order", "deadline_passed", deadline=(deadline - timedelta(days=1)).date().isoformat())
    return None


def check_order(session: Session, order_id: int) -> m.Order:
    """The order, if it can be invoiced now; else raises InvoiceRefused (or NotFound)."""
    order = get_order(session, order_id)
    problem = order_problem(session, order)
    if problem is not None:
        raise problem
    return order


def invoiceable_orders(session: Session, customer_id: int, store_id: Optional[str] = None) -> List[InvoiceableOrder]:
    """A customer's paid orders that can still be invoiced, newest first."""
    query = select(m.Order).where(m.Order.customer_id == customer_id, m.Order.payment_status == OrderPaymentStatus.PAID)
    if store_id is not None:
        query = query.where(m.Order.store_id == store_id)
    orders = session.execute(query.order_by(m.Order.paid_at.desc(), m.Order.id.desc()).limit(RECENT_ORDERS))
    found = []
    for order in orders.scalars():
        if order_problem(session, order) is None:
            zone = ZoneInfo(session.get(m.Business, order.business_id).timezone)
            found.append(
                InvoiceableOrder(
                    order.id,
                    order.ticket_code or str(order.id),
                    order.total,
                    (order.paid_at or order.created_at).astimezone(zone),
                    sum(line.quantity for line in order.lines),
                )
            )
    return found


def fiscal_profiles(session: Session, customer_id: int) -> List[FiscalData]:
    """Fiscal data the customer let us keep, most recently used first."""
    rows = session.execute(
        select(m.FiscalProfile)
        .where(m.FiscalProfile.customer_id == customer_id)
        .order_by(m.FiscalProfile.updated_at.desc(), m.FiscalProfile.id.desc())
    ).scalars()
    return [FiscalData(p.rfc, p.legal_name, p.postal_code, p.tax_regime, p.cfdi_use, p.email) for p in rows]


def save_fiscal_profile(
    session: Session, customer_id: int, data: FiscalData, *, consent: bool, actor: str
) -> Optional[m.FiscalProfile]:
    """Keep (or correct) the customer's data for next time, only when they said yes; None otherwise."""
    if not consent:
        return None
    customer = session.get(m.Customer, customer_id)
    if not customer.consent_fiscal_data:
        customer.consent_fiscal_data, customer.consent_fiscal_data_at = True, now()
    data = data.normalized()
    profile = session.execute(
        select(m.FiscalProfile).where(m.FiscalProfile.customer_id == customer_id, m.FiscalProfile.rfc == data.rfc)
    ).scalar_one_or_none()
    if profile is None:
        profile = m.FiscalProfile(customer_id=customer_id, rfc=data.rfc)
        session.add(profile)
    profile.legal_name, profile.postal_code = data.name, data.postal_code
    profile.tax_regime, profile.cfdi_use, profile.email = data.regime, data.use, data.email
    profile.updated_at = now()
    session.flush()
    session.add(
        m.AuditEvent(
            actor=actor,
            action="fiscal_profile.saved",
            entity_type="fiscal_profile",
            entity_id=str(profile.id),
            data={"customer_id": customer_id, "rfc": data.rfc},
        )
    )
    return profile


def withdraw_fiscal_consent(session: Session, customer_id: int, *, actor: str) -> int:
    """Forget every saved fiscal profile of the customer (invoices already issued stay); how many went."""
    customer = session.get(m.Customer, customer_id)
    customer.consent_fiscal_data, customer.consent_fiscal_data_at = False, now()
    removed = session.execute(delete(m.FiscalProfile).where(m.FiscalProfile.customer_id == customer_id)).rowcount
    session.add(
        m.AuditEvent(
            actor=actor,
            action="fiscal_profile.consent_withdrawn",
            entity_type="customer",
            entity_id=str(customer_id),
            data={"removed": removed},
        )
    )
    return removed


def issue_invoice(
    order_id: int,
    data: FiscalData,
    *,
    issuer: CfdiIssuer,
    actor: str,
    save_profile: bool = False,
    replaces: Optional[int] = None,
    url: Optional[str] = None,
) -> m.Invoice:
    """Issue the Ingreso CFDI of a paid order to the customer's fiscal data.

    Checks everything first (order and every field; InvoiceRefused lists what to fix), then seals and stamps
    through ``issuer``. With ``save_profile`` the data is kept for next time (the customer consented).
    ``replaces`` corrects an issued invoice of the same order: the new one relates to it (TipoRelacion 04) and
    the old one is then cancelled with motive 01. A sale already in a global invoice is taken out of it as SAT
    requires (see ``global_invoices``) once its own invoice is stamped.
    """
    data = data.normalized()
    with transaction(url) as session:
        order = get_order(session, order_id)
        replaced = _replaced_invoice(session, order, replaces) if replaces else None
        if replaced is None:
            check_order(session, order_id)
        store, business = session.get(m.Store, order.store_id), session.get(m.Business, order.business_id)
        problems = check_fiscal_data(data, store.postal_code)
        if problems:
            raise InvoiceRefused(problems)
        concepts = tuple(order_concepts(order))
        amounts = totals(c.amount for c in concepts)
        invoice = m.Invoice(
            business_id=business.id,
            store_id=store.id,
            order_id=order.id,
            kind=InvoiceKind.INGRESO,
            status=InvoiceStatus.DRAFT,
            series=SERIES,
            receiver_rfc=data.rfc,
            receiver_name=data.name,
            receiver_postal_code=data.postal_code,
            receiver_tax_regime=data.regime,
            cfdi_use=data.use,
            email=data.email,
            payment_form=payment_form(session, order),
            subtotal=amounts.subtotal,
            tax=amounts.tax,
            total=amounts.total,
            active_key=f"order:{order.id}",
            related_uuid=replaced.uuid if replaced else None,
            relation_type=RELATION_SUBSTITUTION if replaced else None,
        )
        if replaced is not None:
            replaced.active_key = None
            session.flush()
        if not add_draft(session, invoice, actor):
            raise refuse("order", "order_already_invoiced")
        document = CfdiDocument(
            kind=INGRESO,
            series=SERIES,
            folio=invoice.folio,
            issued_at=issue_time(business),
            expedition_postal_code=store.postal_code,
            issuer=issuer_of(business),
            receiver=Receiver(data.rfc, data.name, data.postal_code, data.regime, data.use),
            payment_form=invoice.payment_form,
            concepts=concepts,
            relation_type=invoice.relation_type,
            related_uuid=invoice.related_uuid,
        )
        draft_id, customer_id = invoice.id, order.customer_id
    invoice = issue_draft(draft_id, document, issuer, actor, url)
    if save_profile:
        with transaction(url) as session:
            save_fiscal_profile(session, customer_id, data, consent=True, actor=actor)
    if replaced is not None:
        _cancel_replaced(replaced.id, invoice, issuer, actor, url)
    take_out_of_global(order_id, issuer=issuer, actor=actor, url=url)
    return invoice


def _replaced_invoice(session: Session, order: m.Order, invoice_id: int) -> m.Invoice:
    replaced = get_invoice(session, invoice_id)
    issued = (InvoiceStatus.SEALED, InvoiceStatus.STAMPED)
    if replaced.kind != InvoiceKind.INGRESO or replaced.order_id != order.id or replaced.status not in issued:
        raise refuse("invoice", "invoice_not_active", invoice=invoice_id)
    return replaced


def _cancel_replaced(
    replaced_id: int, substitute: m.Invoice, issuer: CfdiIssuer, actor: str, url: Optional[str]
) -> None:
    """Motive 01 with the new UUID; if SAT cannot be reached now, staff retries `comanda cfdi cancel`."""
    try:
        cancel_invoice(
            replaced_id,
            CancellationMotive.WITH_ERRORS_WITH_RELATION,
            issuer=issuer,
            actor=actor,
            substitute_uuid=substitute.uuid,
            url=url,
        )
    except ComandaError as exc:
        log.warning("invoice %s replaces %s, but cancelling the old one failed: %s", substitute.id, replaced_id, exc)
        with transaction(url) as session:
            audit(
                session,
                actor,
                "cancel_failed",
                get_invoice(session, replaced_id),
                reason=exc.message,
                substitute_uuid=substitute.uuid,
            )
