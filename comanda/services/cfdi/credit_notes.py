"""Credit notes: the Egreso CFDI for money given back on an invoiced sale (returns, refunds, discounts).

It relates to the invoice it credits with TipoRelacion 01, goes to the same receiver with uso G02
(devoluciones, descuentos o bonificaciones) when the receiver's regime allows it and S01 otherwise, and keeps
the original's forma de pago. Returned units keep their line's SAT keys and price; a plain amount becomes one
"bonificación" concepto. A credit note of a global invoice carries the same InformacionGlobal. No credit
note may take the invoice below zero: the live ones already issued count.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, List, Mapping, Optional, Tuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.db import transaction
from comanda.enums import InvoiceKind, InvoiceStatus
from comanda.errors import NotFound
from comanda.i18n import t
from comanda.money import format_money, round_money
from comanda.services.cfdi.catalogs import GENERIC_USE, person_type, use_allowed
from comanda.services.cfdi.documents import EGRESO, RELATION_CREDIT_NOTE, CfdiDocument, CfdiIssuer, Concept, Receiver
from comanda.services.cfdi.global_invoices import parse_period
from comanda.services.cfdi.lifecycle import LIVE, add_draft, issue_draft
from comanda.services.cfdi.problems import refuse
from comanda.services.cfdi.sales import issue_time, issuer_of
from comanda.services.cfdi.taxes import split_iva_included, totals

SERIES = "NC"
CREDIT_USE = "G02"
BONUS_PROD_SERV, BONUS_UNIT = "84111506", "ACT"


def issue_credit_note(
    invoice_id: int,
    *,
    issuer: CfdiIssuer,
    actor: str,
    lines: Optional[Mapping[int, int]] = None,
    amount: Optional[Decimal] = None,
    url: Optional[str] = None,
    payment_form: Optional[str] = None,
) -> m.Invoice:
    """Credit an issued Ingreso or global invoice: ``lines`` maps order line ids to units given back;
    ``amount`` (IVA included) credits money without units; with neither, every line in full. The forma de pago
    is the original's (money back the way it came) unless ``payment_form`` says otherwise (store credit: 17)."""
    with transaction(url) as session:
        # Locked (PostgreSQL) so two credit notes of one invoice count each other's draft.
        original = session.execute(
            select(m.Invoice).where(m.Invoice.id == invoice_id).with_for_update()
        ).scalar_one_or_none()
        if original is None:
            raise NotFound(f"no invoice {invoice_id}", invoice_id=invoice_id)
        if original.kind == InvoiceKind.EGRESO or original.status not in (InvoiceStatus.SEALED, InvoiceStatus.STAMPED):
            raise refuse("invoice", "invoice_not_active", invoice=invoice_id)
        concepts = _bonus(amount) if amount is not None else _returned_units(session, original, lines)
        amounts = totals(c.amount for c in concepts)
        available = original.total - credited_amount(session, original)
        if amounts.total <= 0:
            raise refuse("invoice", "credit_amount_invalid", amount=format_money(amounts.total))
        if amounts.total > available:
            raise refuse(
                "invoice",
                "credit_exceeds_invoice",
                amount=format_money(amounts.total),
                available=format_money(available),
            )
        receiver = _receiver(original)
        invoice = m.Invoice(
            business_id=original.business_id,
            store_id=original.store_id,
            order_id=original.order_id,
            kind=InvoiceKind.EGRESO,
            status=InvoiceStatus.DRAFT,
            series=SERIES,
            receiver_rfc=receiver.rfc,
            receiver_name=receiver.name,
            receiver_postal_code=receiver.postal_code,
            receiver_tax_regime=receiver.tax_regime,
            cfdi_use=receiver.cfdi_use,
            email=original.email,
            payment_form=payment_form or original.payment_form,
            subtotal=amounts.subtotal,
            tax=amounts.tax,
            total=amounts.total,
            related_uuid=original.uuid,
            relation_type=RELATION_CREDIT_NOTE,
        )
        add_draft(session, invoice, actor)
        store, business = session.get(m.Store, original.store_id), session.get(m.Business, original.business_id)
        document = CfdiDocument(
            kind=EGRESO,
            series=SERIES,
            folio=invoice.folio,
            issued_at=issue_time(business),
            expedition_postal_code=store.postal_code,
            issuer=issuer_of(business),
            receiver=receiver,
            payment_form=payment_form or original.payment_form,
            concepts=concepts,
            relation_type=RELATION_CREDIT_NOTE,
            related_uuid=original.uuid,
            global_info=parse_period(original.global_period).info if original.kind == InvoiceKind.GLOBAL else None,
        )
        draft_id = invoice.id
    return issue_draft(draft_id, document, issuer, actor, url)


def credited_amount(session: Session, invoice: m.Invoice) -> Decimal:
    """What live credit notes already take off an invoice (drafts included: they may yet be stamped)."""
    total = session.execute(
        select(func.coalesce(func.sum(m.Invoice.total), 0)).where(
            m.Invoice.related_uuid == invoice.uuid,
            m.Invoice.relation_type == RELATION_CREDIT_NOTE,
            m.Invoice.status.in_(LIVE),
        )
    ).scalar()
    return round_money(Decimal(str(total)))  # SQLite sums money as floats


def _receiver(original: m.Invoice) -> Receiver:
    kind = person_type(original.receiver_rfc)
    use = CREDIT_USE if use_allowed(CREDIT_USE, original.receiver_tax_regime, kind) else GENERIC_USE
    return Receiver(
        original.receiver_rfc, original.receiver_name, original.receiver_postal_code, original.receiver_tax_regime, use
    )


def _bonus(amount: Decimal) -> Tuple[Concept, ...]:
    return (Concept(BONUS_PROD_SERV, BONUS_UNIT, t("cfdi.concept.bonus", "es"), None, split_iva_included(amount)),)


def _returned_units(session: Session, original: m.Invoice, lines: Optional[Mapping[int, int]]) -> Tuple[Concept, ...]:
    covered = _covered_lines(session, original)
    wanted: Dict[int, int] = dict(lines) if lines is not None else {line.id: line.quantity for line in covered.values()}
    concepts: List[Concept] = []
    for line_id, units in wanted.items():
        line = covered.get(line_id)
        if line is None:
            raise refuse("invoice", "credit_line_unknown", line=line_id)
        if not 0 < units <= line.quantity:
            raise refuse("invoice", "credit_quantity", line=line_id, quantity=line.quantity)
        gross = round_money(line.line_total * units / line.quantity)
        concepts.append(
            Concept(
                line.sat_prod_serv,
                line.sat_unit,
                t("cfdi.concept.return", "es", description=line.description),
                line.sku,
                split_iva_included(gross, units),
            )
        )
    return tuple(concepts)


def _covered_lines(session: Session, original: m.Invoice) -> Dict[int, m.OrderLine]:
    """The order lines an invoice covers: its order's, or every order's in a global invoice."""
    if original.kind == InvoiceKind.GLOBAL:
        order_ids = select(m.InvoiceOrder.order_id).where(m.InvoiceOrder.invoice_id == original.id)
    else:
        order_ids = select(m.Order.id).where(m.Order.id == original.order_id)
    rows = session.execute(select(m.OrderLine).where(m.OrderLine.order_id.in_(order_ids))).scalars()
    return {line.id: line for line in rows}
