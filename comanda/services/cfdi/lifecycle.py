"""How an invoice row moves: draft → sealed or stamped (or rejected / failed / unconfirmed) → cancellation_pending
→ cancelled.

The PAC is never called inside a database transaction. The draft is committed first, and its ``active_key``
(unique) makes a second live invoice for the same order or period impossible even when two requests race;
then the PAC answers; then the outcome is recorded. A rejected or failed draft releases its key, so the
customer can correct the data and try again. A draft the PAC may have stamped without Comanda getting the CFDI
(``StampUnconfirmed``) is ``unconfirmed`` and keeps its key, so nothing is stamped twice; staff look at the PAC
and ``release_unconfirmed`` it. Every change writes an audit_events row as well.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import local_date, now
from comanda.db import insert_unless_duplicate, transaction
from comanda.enums import CancellationMotive, InvoiceKind, InvoiceStatus, values_in
from comanda.errors import ConfigError, InvalidInput, NotFound
from comanda.services.cfdi.documents import (
    RELATION_CREDIT_NOTE,
    RELATION_SUBSTITUTION,
    CancellationRequest,
    CfdiDocument,
    CfdiIssuer,
)
from comanda.services.cfdi.problems import InvoiceRefused, StampUnconfirmed, refuse

log = logging.getLogger(__name__)

# Counts as the order's or period's invoice (unconfirmed: the PAC may have stamped it, see StampUnconfirmed).
LIVE = values_in(
    (
        InvoiceStatus.DRAFT,
        InvoiceStatus.UNCONFIRMED,
        InvoiceStatus.SEALED,
        InvoiceStatus.STAMPED,
        InvoiceStatus.CANCELLATION_PENDING,
    )
)
ISSUED = values_in((InvoiceStatus.SEALED, InvoiceStatus.STAMPED, InvoiceStatus.CANCELLATION_PENDING))  # sealed CFDI
RETENTION_YEARS = 6  # CFF art. 30: 5 years from the annual return, filed the spring after the year of issue


def audit(session: Session, actor: str, action: str, invoice: m.Invoice, **data: object) -> None:
    session.add(
        m.AuditEvent(
            actor=actor,
            action=f"invoice.{action}",
            entity_type="invoice",
            entity_id=str(invoice.id),
            data={k: v for k, v in data.items() if v is not None},
        )
    )


def get_invoice(session: Session, invoice_id: int) -> m.Invoice:
    invoice = session.get(m.Invoice, invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id}", invoice_id=invoice_id)
    return invoice


def add_draft(session: Session, invoice: m.Invoice, actor: str) -> bool:
    """Insert a draft and number it (folio = id); False when a live invoice already holds its active_key."""
    if insert_unless_duplicate(session, invoice) is None:
        return False
    invoice.folio = str(invoice.id)
    audit(
        session,
        actor,
        InvoiceStatus.DRAFT,
        invoice,
        kind=invoice.kind,
        order_id=invoice.order_id,
        period=invoice.global_period,
        related_uuid=invoice.related_uuid,
    )
    return True


def issue_draft(
    invoice_id: int, document: CfdiDocument, issuer: CfdiIssuer, actor: str, url: Optional[str] = None
) -> m.Invoice:
    """Have the PAC seal and stamp a committed draft, and record what happened."""
    try:
        stamped = issuer.issue(document)
    except StampUnconfirmed as exc:
        with transaction(url) as session:
            _hold_draft(session, get_invoice(session, invoice_id), exc, issuer.name, actor)
        raise
    except Exception as exc:
        with transaction(url) as session:
            _close_draft(
                session,
                get_invoice(session, invoice_id),
                InvoiceStatus.REJECTED if isinstance(exc, InvoiceRefused) else InvoiceStatus.FAILED,
                str(exc),
                actor,
            )
        raise
    with transaction(url) as session:
        invoice = get_invoice(session, invoice_id)
        invoice.status = InvoiceStatus.STAMPED if stamped.stamped else InvoiceStatus.SEALED
        invoice.uuid, invoice.xml, invoice.test_document = stamped.uuid, stamped.xml.decode(), stamped.test
        invoice.pac, invoice.pac_document_id = issuer.name, stamped.provider_id
        invoice.subtotal, invoice.tax, invoice.total = stamped.totals.subtotal, stamped.totals.tax, stamped.totals.total
        invoice.issued_at = now()
        invoice.retain_until = date(document.issued_at.year + RETENTION_YEARS, 12, 31)
        audit(
            session,
            actor,
            invoice.status,
            invoice,
            uuid=stamped.uuid,
            pac=issuer.name,
            test=stamped.test,
            total=str(invoice.total),
        )
    try:
        pdf = issuer.render_pdf(stamped.xml, stamped.test)
    except Exception:  # noqa: BLE001 - the CFDI is stamped and kept; only its printed form is missing
        log.exception("invoice %s: stamped, but its PDF could not be rendered", invoice_id)
        return invoice
    with transaction(url) as session:
        invoice = get_invoice(session, invoice_id)
        invoice.pdf = pdf
    return invoice


def _close_draft(session: Session, invoice: m.Invoice, status: str, reason: str, actor: str) -> None:
    """A draft the PAC refused or never stamped: free its key (back to the invoice it was to replace)."""
    key, invoice.active_key = invoice.active_key, None
    invoice.status, invoice.rejection_reason = status, reason[:1000]
    if invoice.relation_type == RELATION_SUBSTITUTION and invoice.related_uuid:
        replaced = live_invoice_by_uuid(session, invoice.related_uuid)
        if replaced is not None and replaced.active_key is None:
            session.flush()  # the key leaves this row before the other takes it (it is unique)
            replaced.active_key = key
    audit(session, actor, status, invoice, reason=reason[:300])


def _hold_draft(session: Session, invoice: m.Invoice, exc: StampUnconfirmed, pac: str, actor: str) -> None:
    """A draft the PAC may have stamped: it keeps its key, and what the PAC said of it (UUID, its own id) is kept
    so staff can look it up there."""
    invoice.status, invoice.rejection_reason = InvoiceStatus.UNCONFIRMED, exc.message[:1000]
    invoice.uuid, invoice.pac, invoice.pac_document_id = exc.uuid, pac, exc.provider_id
    audit(session, actor, InvoiceStatus.UNCONFIRMED, invoice, uuid=exc.uuid, pac=pac, reason=exc.message[:300])


def release_unconfirmed(invoice_id: int, *, actor: str, url: Optional[str] = None) -> m.Invoice:
    """Staff checked the PAC: it holds no live CFDI for this unconfirmed draft (none was stamped, or staff
    cancelled it there). The draft becomes ``failed`` and its order or period can be invoiced again."""
    with transaction(url) as session:
        invoice = get_invoice(session, invoice_id)
        if invoice.status != InvoiceStatus.UNCONFIRMED:
            raise InvalidInput(
                f"invoice {invoice_id} is {invoice.status}, not {InvoiceStatus.UNCONFIRMED}: nothing to release"
            )
        _close_draft(
            session, invoice, InvoiceStatus.FAILED, "released by staff: the PAC holds no live CFDI for it", actor
        )
    return invoice


def live_invoice_by_uuid(session: Session, uuid: str) -> Optional[m.Invoice]:
    return session.execute(
        select(m.Invoice).where(m.Invoice.uuid == uuid, m.Invoice.status.in_(ISSUED))
    ).scalar_one_or_none()


def cancel_invoice(
    invoice_id: int,
    motive: str,
    *,
    issuer: CfdiIssuer,
    actor: str,
    substitute_uuid: Optional[str] = None,
    url: Optional[str] = None,
) -> m.Invoice:
    """Cancel a CFDI with SAT's motive: 01 errors, replaced by ``substitute_uuid`` (issued first, relating to
    this one with TipoRelacion 04); 02 errors, not replaced; 03 the sale did not happen; 04 a global invoice
    whose sale got its own invoice. SAT allows it until the month of the annual return of the year of issue
    (``cancellation_deadline``) and refuses a CFDI that live credit notes still relate to."""
    with transaction(url) as session:
        invoice = get_invoice(session, invoice_id)
        _check_cancellable(session, invoice, motive, substitute_uuid)
        if invoice.pac != issuer.name:
            raise ConfigError(
                f"invoice {invoice_id} was issued through {invoice.pac!r}; cancel it with that PAC "
                f"(COMANDA_CFDI_PAC), not {issuer.name!r}"
            )
        business = session.get(m.Business, invoice.business_id)
        request = CancellationRequest(
            invoice.uuid, business.issuer_rfc, business.issuer_csd, invoice.pac_document_id, motive, substitute_uuid
        )
    result = issuer.cancel(request)
    with transaction(url) as session:
        invoice = get_invoice(session, invoice_id)
        invoice.cancellation_motive, invoice.replaced_by_uuid = motive, substitute_uuid
        invoice.cancellation_receipt = result.receipt
        if result.cancelled:
            invoice.status, invoice.cancelled_at, invoice.active_key = InvoiceStatus.CANCELLED, now(), None
        else:
            invoice.status = InvoiceStatus.CANCELLATION_PENDING
        audit(session, actor, invoice.status, invoice, motive=motive, substitute_uuid=substitute_uuid)
    return invoice


def cancellation_deadline(issued_year: int, issuer_rfc: str) -> date:
    """The last day a CFDI of ``issued_year`` can be cancelled: the end of the month the issuer's annual
    return for that year is due (CFF art. 29-A since 2022): March for companies (12-character RFC),
    April for persons."""
    month = 3 if len(issuer_rfc) == 12 else 4
    return date(issued_year + 1, month + 1, 1) - timedelta(days=1)


def _check_cancellable(session: Session, invoice: m.Invoice, motive: str, substitute_uuid: Optional[str]) -> None:
    if CancellationMotive.parse(motive) is None:
        raise refuse("invoice", "cancel_motive_unknown", motive=motive)
    if invoice.status not in ISSUED:
        raise refuse("invoice", "invoice_not_active", invoice=invoice.id)
    if motive == CancellationMotive.NOMINATIVE_IN_GLOBAL and invoice.kind != InvoiceKind.GLOBAL:
        raise refuse("invoice", "cancel_motive_global_only")
    if motive == CancellationMotive.WITH_ERRORS_WITH_RELATION and not substitute_uuid:
        raise refuse("invoice", "cancel_substitute_required")
    if substitute_uuid is not None:
        substitute = live_invoice_by_uuid(session, substitute_uuid)
        if (
            motive != CancellationMotive.WITH_ERRORS_WITH_RELATION
            or substitute is None
            or substitute.related_uuid != invoice.uuid
            or substitute.relation_type != RELATION_SUBSTITUTION
        ):
            raise refuse("invoice", "cancel_substitute_invalid", uuid=substitute_uuid)
    business = session.get(m.Business, invoice.business_id)
    issued_year = invoice.issued_at.astimezone(ZoneInfo(business.timezone)).year
    last_day = cancellation_deadline(issued_year, business.issuer_rfc or "")
    if local_date(business.timezone) > last_day:
        raise refuse("invoice", "cancel_year_closed", year=issued_year, deadline=last_day.isoformat())
    credit_notes = session.execute(
        select(m.Invoice.id).where(
            m.Invoice.related_uuid == invoice.uuid,
            m.Invoice.relation_type == RELATION_CREDIT_NOTE,
            m.Invoice.status.in_(LIVE),
        )
    ).first()
    if credit_notes is not None:
        raise refuse("invoice", "cancel_has_credit_notes")
