"""Handing invoices over: e-mail over SMTP (a local aiosmtpd server) and signed, expiring download links sent
as WhatsApp documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Iterator, Tuple
from urllib.parse import parse_qs, urlparse

import pytest

from comanda import models as m
from comanda.db import transaction
from comanda.errors import InvalidInput
from comanda.services.cfdi.delivery import email_invoice
from comanda.services.cfdi.invoicing import issue_invoice
from comanda.services.cfdi.links import document_link, invoice_document_messages, link_is_valid
from integrations.cfdi.local import LocalIssuer
from integrations.cfdi.pdf import printable_html, render_pdf
from integrations.email.smtp import EmailFailed, SmtpMailer, mailer_from_settings
from tests.helpers.cfdi import COMPANY, NOVEMBER_20, Line, audit_actions, paid_order
from tests.helpers.clock import clock_at
from tests.helpers.net import free_port
from tests.helpers.smtp import Inbox, smtp_server


@pytest.fixture
def mail_server() -> Iterator[Tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def invoice(demo):
    with clock_at(NOVEMBER_20):
        yield issue_invoice(
            paid_order([Line("TACO-PASTOR", 3), Line("HORCHATA", 1)]), COMPANY, issuer=LocalIssuer(), actor="test"
        )


def test_invoice_is_emailed_with_its_pdf_and_xml(invoice, mail_server, monkeypatch):
    inbox, port = mail_server
    monkeypatch.setenv("COMANDA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("COMANDA_SMTP_PORT", str(port))
    monkeypatch.setenv("COMANDA_SMTP_SECURITY", "none")
    monkeypatch.setenv("COMANDA_SMTP_FROM", "facturas@cafe-esquina.example")
    sent_to = email_invoice(invoice.id, mailer=mailer_from_settings(), language="en", actor="test")
    assert sent_to == "compras@kemper.example"
    assert inbox.envelopes == [("facturas@cafe-esquina.example", ["compras@kemper.example"])]
    message = inbox.messages[0]
    assert message["Subject"] == f"Café Esquina: your invoice F{invoice.folio}"
    body = message.get_body(("plain",)).get_content()
    assert invoice.uuid in body and "$101.00" in body and "TEST DOCUMENT" in body
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert attachments[f"invoice-F{invoice.folio}.pdf"] == invoice.pdf
    assert attachments[f"invoice-F{invoice.folio}.xml"] == invoice.xml.encode()
    assert audit_actions(invoice.id)[-1] == "invoice.emailed"


def test_email_in_spanish_to_another_address(invoice, mail_server):
    inbox, port = mail_server
    email_invoice(
        invoice.id,
        mailer=SmtpMailer("127.0.0.1", port, "f@x.mx", "none"),
        language="es",
        actor="test",
        to="ana@example.com",
    )
    message = inbox.messages[0]
    assert message["To"] == "ana@example.com" and message["Subject"].endswith(f"tu factura F{invoice.folio}")
    assert "DOCUMENTO DE PRUEBA" in message.get_body(("plain",)).get_content()
    assert {p.get_filename() for p in message.iter_attachments()} == {
        f"factura-F{invoice.folio}.pdf",
        f"factura-F{invoice.folio}.xml",
    }


def test_email_failures_are_plain(invoice, monkeypatch):
    monkeypatch.delenv("COMANDA_SMTP_HOST", raising=False)
    assert mailer_from_settings() is None
    with pytest.raises(EmailFailed):
        email_invoice(
            invoice.id,
            mailer=SmtpMailer("127.0.0.1", free_port(), "f@x.mx", "none", timeout=2),
            language="es",
            actor="test",
        )
    with transaction() as session:
        session.get(m.Invoice, invoice.id).email = None
    with pytest.raises(InvalidInput):
        email_invoice(invoice.id, mailer=SmtpMailer("127.0.0.1", 1, "f@x.mx", "none"), language="es", actor="t")


def test_whatsapp_documents_are_signed_expiring_links(invoice, monkeypatch):
    monkeypatch.setenv("COMANDA_DOCUMENT_LINK_SECRET", "test-secret")
    monkeypatch.setenv("COMANDA_BACKOFFICE_URL", "https://shop.example")
    with clock_at(NOVEMBER_20):
        messages = invoice_document_messages(invoice, "es")
    assert [m["type"] for m in messages] == ["document", "document"]
    assert [m["document"]["filename"] for m in messages] == [
        f"factura-F{invoice.folio}.pdf",
        f"factura-F{invoice.folio}.xml",
    ]
    link = urlparse(messages[0]["document"]["link"])
    assert (link.scheme, link.netloc, link.path) == ("https", "shop.example", f"/documents/invoices/{invoice.id}.pdf")
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert int(query["expires"]) == int((NOVEMBER_20 + timedelta(days=1)).timestamp())
    with clock_at(NOVEMBER_20 + timedelta(hours=23)):
        assert link_is_valid(invoice.id, "pdf", query["expires"], query["sig"])
        assert not link_is_valid(invoice.id, "xml", query["expires"], query["sig"])  # signed for the PDF only
        assert not link_is_valid(invoice.id + 1, "pdf", query["expires"], query["sig"])
        assert not link_is_valid(invoice.id, "pdf", str(int(query["expires"]) + 60), query["sig"])
        assert not link_is_valid(invoice.id, "pdf", query["expires"], "0" * 64)
        assert not link_is_valid(invoice.id, "zip", query["expires"], query["sig"])
    with clock_at(NOVEMBER_20 + timedelta(days=1)):
        assert not link_is_valid(invoice.id, "pdf", query["expires"], query["sig"])
    monkeypatch.setenv("COMANDA_DOCUMENT_LINK_SECRET", "another-secret")
    with clock_at(NOVEMBER_20):
        assert not link_is_valid(invoice.id, "pdf", query["expires"], query["sig"])
        assert "expires=" in document_link(invoice.id, "xml")


def test_test_documents_say_so_on_the_pdf(invoice):
    marked, plain = printable_html(invoice.xml.encode(), True), printable_html(invoice.xml.encode(), False)
    assert "DOCUMENTO DE PRUEBA" in marked and marked.index("DOCUMENTO DE PRUEBA") < marked.index("EKU9003173C9")
    assert "DOCUMENTO DE PRUEBA" not in plain and invoice.uuid not in plain  # sealed only: no TFD to show
    assert render_pdf(invoice.xml.encode(), False).startswith(b"%PDF")


def test_odd_characters_in_a_link_are_just_not_valid(invoice):
    link = urlparse(document_link(invoice.id, "pdf"))
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert link_is_valid(invoice.id, "pdf", query["expires"], query["sig"])
    assert not link_is_valid(invoice.id, "pdf", "²", query["sig"])  # a digit to str.isdigit, not to int()
    assert not link_is_valid(invoice.id, "pdf", query["expires"], "é" * 64)
