"""Invoice downloads from the running back office: a signed, unexpired link gives the PDF or the XML; a bad
or expired signature is 403, an unknown invoice 404."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlparse

import pytest
import requests

from comanda.db import dispose_engines
from comanda.services.cfdi.invoicing import issue_invoice
from comanda.services.cfdi.links import document_link, invoice_document_messages
from integrations.cfdi.local import LocalIssuer
from tests.helpers.cfdi import COMPANY, NOVEMBER_20, Line, paid_order
from tests.helpers.clock import clock_at


@pytest.fixture
def invoice(database, backoffice, monkeypatch):
    monkeypatch.setenv("COMANDA_DATABASE_URL", database)
    monkeypatch.setenv("COMANDA_BACKOFFICE_URL", backoffice)
    with clock_at(NOVEMBER_20):
        issued = issue_invoice(
            paid_order([Line("TACO-PASTOR", 3), Line("HORCHATA", 1)], phone="+525599990000"),
            COMPANY,
            issuer=LocalIssuer(),
            actor="test",
        )
    yield issued
    dispose_engines()


def test_signed_links_download_the_documents(invoice):
    pdf, xml = [m["document"] for m in invoice_document_messages(invoice, "en")]
    response = requests.get(pdf["link"], timeout=10)
    assert response.status_code == 200 and response.content == invoice.pdf
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="factura-F{invoice.folio}.pdf"'
    response = requests.get(xml["link"], timeout=10)
    assert response.status_code == 200 and response.content == invoice.xml.encode()
    assert response.headers["Content-Type"].startswith("application/xml")


def test_bad_or_expired_signatures_are_forbidden(invoice, backoffice):
    link = urlparse(document_link(invoice.id, "pdf"))
    base = f"{backoffice}{link.path}"
    query = dict(part.split("=") for part in link.query.split("&"))
    tampered = {**query, "sig": query["sig"][:-1] + ("0" if query["sig"][-1] != "0" else "1")}
    assert requests.get(base, params=tampered, timeout=10).status_code == 403
    assert requests.get(base, timeout=10).status_code == 403
    assert requests.get(base.replace(".pdf", ".xml"), params=query, timeout=10).status_code == 403
    with clock_at(datetime(2020, 1, 1, tzinfo=timezone.utc)):
        expired = document_link(invoice.id, "pdf")
    assert requests.get(expired, timeout=10).status_code == 403
    assert requests.get(base, params=query, timeout=10).status_code == 200


def test_unknown_invoice_is_not_found(invoice):
    assert requests.get(document_link(invoice.id + 1000, "pdf"), timeout=10).status_code == 404


def test_odd_characters_are_forbidden_not_a_crash(invoice, backoffice):
    query = urlparse(document_link(invoice.id, "pdf")).query
    assert requests.get(f"{backoffice}/documents/invoices/².pdf?{query}", timeout=10).status_code == 403
    assert requests.get(f"{backoffice}/documents/invoices/{invoice.id}.pdf?{query}é", timeout=10).status_code == 403
