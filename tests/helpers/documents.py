"""Rows of the document store for channel tests: an order of a conversation and its invoice."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from comanda import models as m
from comanda.services.customers import find_or_create_customer, touch_conversation

PDF = b"%PDF-1.4 comanda test invoice"
XML = '<?xml version="1.0" encoding="UTF-8"?><cfdi:Comprobante Folio="901"/>'


def invoice_for(session: Session, conversation_id: str, pdf: bytes = PDF, xml: str = XML) -> int:
    """An invoiced order of this conversation (test document, not stamped); the invoice id."""
    conversation = session.get(m.Conversation, conversation_id)
    store = session.get(m.Store, conversation.store_id)
    order = m.Order(
        business_id=store.business_id,
        store_id=store.id,
        customer_id=conversation.customer_id,
        conversation_id=conversation.id,
        channel=conversation.channel,
        subtotal=Decimal("86.21"),
        total=Decimal("100.00"),
    )
    session.add(order)
    session.flush()
    invoice = m.Invoice(
        business_id=store.business_id,
        store_id=store.id,
        order_id=order.id,
        kind="ingreso",
        status="sealed",
        series="F",
        folio=str(900 + order.id),
        receiver_rfc="XAXX010101000",
        receiver_name="PUBLICO EN GENERAL",
        receiver_postal_code="06000",
        receiver_tax_regime="616",
        cfdi_use="S01",
        subtotal=Decimal("86.21"),
        tax=Decimal("13.79"),
        total=Decimal("100.00"),
        test_document=True,
        pdf=pdf,
        xml=xml,
    )
    session.add(invoice)
    session.flush()
    return invoice.id


def conversation(session: Session, phone: str, store: str = "centro") -> str:
    """A WhatsApp conversation of a new customer at ``store``; its id."""
    customer = find_or_create_customer(session, phone, None, "Ana")
    return touch_conversation(session, store, customer, "whatsapp", phone.lstrip("+")).id
