"""What the CFDI tests share: SAT's test taxpayers, paid orders built with the models, a PAC that fails on
demand, and the SAT arithmetic rules every XML is checked against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import List, Optional, Sequence, Tuple

from lxml import etree
from sqlalchemy import select

from comanda import models as m
from comanda.db import transaction
from comanda.money import money
from comanda.services.cfdi.fiscal import FiscalData
from integrations.cfdi.local import LocalIssuer

CFDI = "{http://www.sat.gob.mx/cfd/4}"
# A company and a person from SAT's public test data (valid check digits), as SAT's taxpayer list has them.
COMPANY = FiscalData("EKU9003173C9", "ESCUELA KEMPER URGATE", "42501", "601", "G03", "compras@kemper.example")
PERSON = FiscalData("CACX7605101P8", "XOCHILT CASAS CHAVEZ", "36257", "612", "G03", "xochilt@example.com")
REGISTERED = {data.rfc: data for data in (COMPANY, PERSON)}
# 2026-11-20 12:00 in Mexico City (UTC-6): inside November for the same-month deadline.
NOVEMBER_20 = datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    unit_price: Optional[Decimal] = None  # IVA included; default: the catalog price


def paid_order(
    lines: Sequence[Line],
    *,
    method: str = "card",
    card_funding: Optional[str] = None,
    paid_at: datetime = NOVEMBER_20,
    store_id: str = "centro",
    delivery_fee: Decimal = Decimal("0"),
    phone: str = "+525512345678",
    payment_status: str = "paid",
    ticket: Optional[str] = None,
) -> int:
    """A paid order of the demo business, with its lines (SAT keys from the catalog) and its payment row."""
    with transaction() as session:
        customer = session.execute(select(m.Customer).where(m.Customer.phone == phone)).scalar_one_or_none()
        if customer is None:
            customer = m.Customer(phone=phone, name="Ana")
            session.add(customer)
            session.flush()
        rows: List[m.OrderLine] = []
        for line in lines:
            product = session.execute(select(m.Product).where(m.Product.sku == line.sku)).scalar_one()
            price = money(line.unit_price if line.unit_price is not None else product.price)
            rows.append(
                m.OrderLine(
                    product_id=product.id,
                    sku=product.sku,
                    description=product.name_es,
                    quantity=line.quantity,
                    unit_price=price,
                    line_total=price * line.quantity,
                    sat_prod_serv=product.sat_prod_serv,
                    sat_unit=product.sat_unit,
                )
            )
        subtotal = sum((r.line_total for r in rows), Decimal("0.00"))
        store = session.get(m.Store, store_id)
        order = m.Order(
            business_id=store.business_id,
            store_id=store_id,
            customer_id=customer.id,
            channel="whatsapp",
            status="received",
            payment_status=payment_status,
            payment_method=method,
            subtotal=subtotal,
            delivery_fee=money(delivery_fee),
            total=subtotal + money(delivery_fee),
            paid_at=paid_at,
            created_at=paid_at,
            ticket_code=ticket,
            lines=rows,
        )
        session.add(order)
        session.flush()
        session.add(
            m.Payment(
                order_id=order.id,
                provider="sandbox",
                method=method,
                status="paid",
                amount=order.total,
                card_funding=card_funding,
                paid_at=paid_at,
            )
        )
        return order.id


def customer_of(order_id: int) -> int:
    with transaction() as session:
        return session.get(m.Order, order_id).customer_id


def attributes(xml: str, path: str) -> List[dict]:
    return [dict(e.attrib) for e in etree.fromstring(xml.encode()).iterfind(path)]


def _cents(value: Decimal, rounding: str) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=rounding)


def sat_arithmetic_errors(xml: str) -> List[str]:
    """Anexo 20's arithmetic checks on a CFDI (MXN, 2 decimals), as a PAC applies them; empty when all hold."""
    root = etree.fromstring(xml.encode())
    errors, half_cent = [], Decimal("0.005")
    concept_tax: dict = {}
    for concept in root.iterfind(f"{CFDI}Conceptos/{CFDI}Concepto"):
        quantity, unit = Decimal(concept.get("Cantidad")), Decimal(concept.get("ValorUnitario"))
        amount = Decimal(concept.get("Importe"))
        q_half = Decimal(1).scaleb(quantity.as_tuple().exponent) / 2
        u_half = Decimal(1).scaleb(unit.as_tuple().exponent) / 2
        low, high = (
            _cents((quantity - q_half) * (unit - u_half), ROUND_FLOOR),
            _cents((quantity + q_half) * (unit + u_half), ROUND_CEILING),
        )
        if not low <= amount <= high:
            errors.append(f"Importe {amount} outside [{low}, {high}]")
        for tax in concept.iterfind(f"{CFDI}Impuestos/{CFDI}Traslados/{CFDI}Traslado"):
            base, rate, importe = Decimal(tax.get("Base")), Decimal(tax.get("TasaOCuota")), Decimal(tax.get("Importe"))
            low, high = _cents((base - half_cent) * rate, ROUND_FLOOR), _cents((base + half_cent) * rate, ROUND_CEILING)
            if not low <= importe <= high:
                errors.append(f"IVA {importe} of base {base} outside [{low}, {high}]")
            if base != amount:
                errors.append(f"Base {base} is not the concepto's Importe {amount}")
            key = (tax.get("Impuesto"), tax.get("TipoFactor"), tax.get("TasaOCuota"))
            sums = concept_tax.setdefault(key, [Decimal(0), Decimal(0)])
            sums[0] += base
            sums[1] += importe
    subtotal = sum(Decimal(c.get("Importe")) for c in root.iterfind(f"{CFDI}Conceptos/{CFDI}Concepto"))
    if Decimal(root.get("SubTotal")) != subtotal:
        errors.append(f"SubTotal {root.get('SubTotal')} is not the sum of Importe {subtotal}")
    summary = root.find(f"{CFDI}Impuestos")
    total_taxes = Decimal(summary.get("TotalImpuestosTrasladados")) if summary is not None else Decimal(0)
    traslados = list(summary.iterfind(f"{CFDI}Traslados/{CFDI}Traslado")) if summary is not None else []
    for tax in traslados:
        key = (tax.get("Impuesto"), tax.get("TipoFactor"), tax.get("TasaOCuota"))
        base, importe = concept_tax.get(key, (None, None))
        if (Decimal(tax.get("Base")), Decimal(tax.get("Importe"))) != (base, importe):
            errors.append(f"summary traslado {dict(tax.attrib)} is not the conceptos' sum {base}/{importe}")
    if sum((Decimal(t.get("Importe")) for t in traslados), Decimal(0)) != total_taxes:
        errors.append("TotalImpuestosTrasladados is not the sum of its traslados")
    if Decimal(root.get("Total")) != subtotal + total_taxes:
        errors.append(f"Total {root.get('Total')} is not SubTotal + taxes {subtotal + total_taxes}")
    return errors


def totals_of(xml: str) -> Tuple[Decimal, Decimal, Decimal]:
    root = etree.fromstring(xml.encode())
    summary = root.find(f"{CFDI}Impuestos")
    return (
        Decimal(root.get("SubTotal")),
        Decimal(summary.get("TotalImpuestosTrasladados")),
        Decimal(root.get("Total")),
    )


def assert_valid_cfdi(xml: str) -> None:
    """SAT's schema, the seal against the certificate in the XML, and Anexo 20's arithmetic."""
    from integrations.cfdi.validation import schema_errors, seal_is_valid

    assert schema_errors(xml.encode()) == []
    assert seal_is_valid(xml.encode())
    assert sat_arithmetic_errors(xml) == []


def audit_actions(invoice_id: int) -> List[str]:
    with transaction() as session:
        return list(
            session.execute(
                select(m.AuditEvent.action)
                .where(m.AuditEvent.entity_type == "invoice", m.AuditEvent.entity_id == str(invoice_id))
                .order_by(m.AuditEvent.id)
            ).scalars()
        )


def reload(invoice_id: int) -> m.Invoice:
    with transaction() as session:
        return session.get(m.Invoice, invoice_id)


class FailingIssuer(LocalIssuer):
    """The local PAC, but issuing or cancelling fails the way a PAC can."""

    def __init__(self, issue_error=None, cancel_error=None):
        self.issue_error, self.cancel_error = issue_error, cancel_error

    def issue(self, document):
        if self.issue_error:
            raise self.issue_error
        return super().issue(document)

    def cancel(self, request):
        if self.cancel_error:
            raise self.cancel_error
        return super().cancel(request)
