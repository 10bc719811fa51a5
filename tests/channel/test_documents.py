"""The bot sends documents only from the document store, by id, to the conversation they belong to: a
file path in a bot message is refused (issue 10 item 3: the Rasa token must not read the server's files)."""

import pytest

from comanda import models as m
from comanda.db import transaction
from comanda.errors import NotFound
from comanda.services.documents import invoice_document
from integrations.whatsapp.messages import media_problem
from tests.helpers.documents import PDF, XML, invoice_for
from tests.helpers.documents import conversation as new_conversation


def envelope(kind, body):
    return {"messaging_product": "whatsapp", "to": "521", "type": kind, kind: body}


@pytest.mark.parametrize(
    "message",
    [
        envelope("document", {"path": "var/secrets/sandbox-webhook-secret"}),
        envelope("document", {"path": "/etc/passwd", "link": "https://example.com/x.pdf"}),
        envelope("image", {"path": "/tmp/x.png"}),
        envelope("document", {"invoice_id": 42, "format": "exe"}),
        envelope("document", {"invoice_id": "../../x", "format": "pdf"}),
        envelope("image", {"invoice_id": 42, "format": "pdf"}),
        envelope("document", {"link": "https://example.com/x.pdf", "id": "123"}),
        envelope("document", {"filename": "nothing-to-send.pdf"}),
        envelope("document", "var/secrets/rasa-token"),
    ],
)
def test_paths_and_malformed_documents_are_refused(message):
    assert media_problem(message)


@pytest.mark.parametrize(
    "message",
    [
        envelope("document", {"invoice_id": 42, "format": "pdf", "filename": "factura-F1.pdf"}),
        envelope("document", {"link": "https://example.com/documents/invoices/1.pdf?sig=x", "filename": "f.pdf"}),
        envelope("image", {"id": "1234567890"}),
        envelope("text", {"body": "path: /etc/passwd"}),
        envelope("template", {"name": "comanda_reengagement", "language": {"code": "es_MX"}}),
    ],
)
def test_document_store_references_links_and_media_ids_pass(message):
    assert media_problem(message) is None


def test_an_invoice_goes_only_to_its_own_conversation(demo):
    with transaction() as session:
        mine = new_conversation(session, "+525511110001")
        other = new_conversation(session, "+525511110002")
        invoice_id = invoice_for(session, mine)
    with transaction() as session:
        pdf = invoice_document(session, invoice_id, "pdf", "en", conversation_id=mine)
        xml = invoice_document(session, invoice_id, "xml", "es", conversation_id=mine)
        folio = session.get(m.Invoice, invoice_id).folio
        assert (pdf.content, pdf.mime_type, pdf.filename) == (PDF, "application/pdf", f"invoice-F{folio}.pdf")
        assert (xml.content, xml.filename) == (XML.encode(), f"factura-F{folio}.xml")
        with pytest.raises(NotFound):
            invoice_document(session, invoice_id, "pdf", "es", conversation_id=other)
        with pytest.raises(NotFound):
            invoice_document(session, invoice_id + 1, "pdf", "es", conversation_id=mine)
