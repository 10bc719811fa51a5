"""Signed, expiring download links for an invoice's PDF and XML, and the chat messages that send them.

WhatsApp fetches a document from a URL when it sends it, so the back office serves
``/documents/invoices/<id>.<pdf|xml>?expires=<unix time>&sig=<HMAC-SHA256>``: only someone given the link can
download the document, and only until it expires (COMANDA_DOCUMENT_LINK_MINUTES). The HMAC key is
COMANDA_DOCUMENT_LINK_SECRET (generated once under var/secrets when not set).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Dict, List

from comanda import models as m
from comanda.clock import now
from comanda.i18n import t
from comanda.settings import setting, setting_int

FORMATS = {"pdf": "application/pdf", "xml": "application/xml"}


def _signature(invoice_id: int, fmt: str, expires: int) -> str:
    key = setting("COMANDA_DOCUMENT_LINK_SECRET").encode()
    return hmac.new(key, f"invoice:{invoice_id}.{fmt}:{expires}".encode(), hashlib.sha256).hexdigest()


def document_link(invoice_id: int, fmt: str) -> str:
    """A link to download the invoice's ``fmt`` (pdf or xml) that stops working after the set lifetime."""
    expires = int(now().timestamp()) + 60 * setting_int("COMANDA_DOCUMENT_LINK_MINUTES")
    base = setting("COMANDA_BACKOFFICE_URL").rstrip("/")
    return f"{base}/documents/invoices/{invoice_id}.{fmt}?expires={expires}&sig={_signature(invoice_id, fmt, expires)}"


def link_is_valid(invoice_id: int, fmt: str, expires: str, signature: str) -> bool:
    """Whether a link's signature is ours and it has not expired (compared in constant time)."""
    if fmt not in FORMATS or not (expires.isascii() and expires.isdigit()):
        return False
    if not hmac.compare_digest(_signature(invoice_id, fmt, int(expires)).encode(), signature.encode()):
        return False
    return now().timestamp() < int(expires)


def document_filename(invoice: m.Invoice, fmt: str, language: str) -> str:
    """ "factura-F12.pdf", "credit-note-NC3.xml": the kind in the customer's language, series and folio."""
    return f"{t(f'cfdi.filename.{invoice.kind}', language)}-{invoice.series}{invoice.folio}.{fmt}"


def invoice_document_messages(invoice: m.Invoice, language: str) -> List[Dict[str, object]]:
    """Rasa custom messages that send the PDF (when rendered) and the XML as WhatsApp documents."""
    formats = ["pdf", "xml"] if invoice.pdf else ["xml"]
    return [
        {
            "type": "document",
            "document": {"link": document_link(invoice.id, fmt), "filename": document_filename(invoice, fmt, language)},
        }
        for fmt in formats
    ]
