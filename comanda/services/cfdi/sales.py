"""What a sale contributes to a CFDI: its issuer, its conceptos, its forma de pago, the time of issue."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Dict, Iterable, List

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import local_now
from comanda.enums import CardFunding, PaymentMethod, PaymentStatus, values_in
from comanda.errors import ConfigError, InvalidInput
from comanda.i18n import t
from comanda.services.cfdi.documents import Concept, Issuer
from comanda.services.cfdi.taxes import split_iva_included

# Conceptos Comanda adds itself (descriptions are in Spanish: CFDI are Spanish documents).
DELIVERY_PROD_SERV, DELIVERY_UNIT = "78102203", "E48"  # Servicios de envío, recogida o entrega · servicio
# SAT c_FormaPago by payment method: a card is 04 (credit) unless the provider says debit or prepaid (28);
# OXXO is cash paid at the store's counter of a third party (01); SPEI is an electronic transfer (03).
PAYMENT_FORMS = {
    PaymentMethod.CASH: "01",
    PaymentMethod.OXXO: "01",
    PaymentMethod.SPEI: "03",
    PaymentMethod.STORE_CREDIT: "17",  # compensación
}
CARD_CREDIT, CARD_DEBIT = "04", "28"
# A payment that took the order's money, whatever was given back since (a flagged one is for staff to settle).
SETTLED = values_in((PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED))


def issuer_of(business: m.Business) -> Issuer:
    if not (business.issuer_rfc and business.issuer_legal_name and business.issuer_tax_regime and business.issuer_csd):
        raise ConfigError(
            f"business {business.id} has no complete CFDI issuer (RFC, legal name, regime, CSD): "
            "set `issuer` in its catalog and load it again"
        )
    return Issuer(business.issuer_rfc, business.issuer_legal_name, business.issuer_tax_regime, business.issuer_csd)


def issue_time(business: m.Business) -> datetime:
    """Fecha: the local time where the CFDI is issued, to the second, without a zone (as SAT writes it)."""
    return local_now(business.timezone).replace(tzinfo=None, microsecond=0)


def payment_form(session: Session, order: m.Order) -> str:
    """The SAT forma de pago of how the order was paid: its paid payment (the largest, when store credit paid a
    part: SAT asks for the form of the larger amount), else the method it chose."""
    payment = (
        session.execute(
            select(m.Payment)
            .where(m.Payment.order_id == order.id, m.Payment.status.in_(SETTLED))
            .order_by(m.Payment.amount.desc(), m.Payment.id.desc())
        )
        .scalars()
        .first()
    )
    method = payment.method if payment else order.payment_method
    if method == PaymentMethod.CARD:
        debit = payment is not None and payment.card_funding in (CardFunding.DEBIT, CardFunding.PREPAID)
        return CARD_DEBIT if debit else CARD_CREDIT
    if method not in PAYMENT_FORMS:
        raise InvalidInput(f"order {order.id}: no SAT forma de pago for payment method {method!r}")
    return PAYMENT_FORMS[method]


def order_concepts(order: m.Order) -> List[Concept]:
    """One concepto per order line (SAT keys copied at sale time), and the delivery fee when there is one."""
    concepts = [
        Concept(
            line.sat_prod_serv,
            line.sat_unit,
            line.description,
            line.sku,
            split_iva_included(line.line_total, line.quantity),
        )
        for line in order.lines
    ]
    if order.delivery_fee:
        concepts.append(
            Concept(
                DELIVERY_PROD_SERV,
                DELIVERY_UNIT,
                t("cfdi.concept.delivery", "es"),
                None,
                split_iva_included(order.delivery_fee),
            )
        )
    charged = sum((c.amount.total for c in concepts), Decimal("0.00"))
    if charged != order.total:
        raise InvalidInput(
            f"order {order.id}: its lines and delivery fee add up to {charged}, not its total {order.total}",
            order_id=order.id,
        )
    return concepts


def main_payment_form(session: Session, orders: Iterable[m.Order]) -> str:
    """With sales paid in several ways, SAT asks for the forma de pago of the largest amount."""
    amounts: Dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for order in orders:
        amounts[payment_form(session, order)] += order.total
    return max(sorted(amounts), key=lambda form: amounts[form])


def order_ticket(order: m.Order) -> str:
    """NoIdentificacion of a sale in a global invoice: its ticket, or its number when it has none."""
    return order.ticket_code or f"P-{order.id}"
