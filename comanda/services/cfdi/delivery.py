"""E-mailing an invoice's PDF and XML to the customer, through any ``Mailer`` (integrations.email: SMTP)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Optional, Protocol

from comanda import models as m
from comanda.db import transaction
from comanda.errors import InvalidInput
from comanda.i18n import t
from comanda.money import format_money
from comanda.services.cfdi.lifecycle import ISSUED, audit, get_invoice
from comanda.services.cfdi.links import FORMATS, document_filename


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver the message (its From is the mailer's); raise a ComandaError when it cannot."""


def invoice_email(invoice: m.Invoice, business_name: str, to: str, language: str) -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = t(
        "cfdi.email.subject", language, business=business_name, folio=f"{invoice.series}{invoice.folio}"
    )
    body = t(
        "cfdi.email.body",
        language,
        business=business_name,
        folio=f"{invoice.series}{invoice.folio}",
        total=format_money(invoice.total),
        uuid=invoice.uuid,
    )
    if invoice.test_document:
        body += "\n\n" + t("cfdi.test_notice", language)
    message.set_content(body)
    for fmt, content in (("pdf", invoice.pdf), ("xml", invoice.xml.encode() if invoice.xml else None)):
        if content:
            maintype, subtype = FORMATS[fmt].split("/")
            message.add_attachment(
                content, maintype=maintype, subtype=subtype, filename=document_filename(invoice, fmt, language)
            )
    return message


def email_invoice(
    invoice_id: int, *, mailer: Mailer, language: str, actor: str, to: Optional[str] = None, url: Optional[str] = None
) -> str:
    """Send the invoice to ``to`` (default: the address given for it); returns the address used."""
    with transaction(url) as session:
        invoice = get_invoice(session, invoice_id)
        recipient = to or invoice.email
        if not recipient:
            raise InvalidInput(f"invoice {invoice_id} has no e-mail address: pass one")
        if invoice.status not in ISSUED:
            raise InvalidInput(f"invoice {invoice_id} is {invoice.status}: it is not a document to send")
        message = invoice_email(invoice, session.get(m.Business, invoice.business_id).name, recipient, language)
    mailer.send(message)
    with transaction(url) as session:
        audit(session, actor, "emailed", get_invoice(session, invoice_id), to=recipient)
    return recipient
