"""The document store: the files the bot may send, named by id and never by a path.

Today these are invoices' PDF and XML, kept in the database with the invoice. A bot message names one
as ``{"invoice_id": 42, "format": "pdf"}`` and the channel uploads it at send time; only the
conversation whose order the invoice is for may receive it. Whoever names a document that does not
exist, or is not theirs, gets the same NotFound (its existence is not revealed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy.orm import Session

from comanda import models as m
from comanda.errors import InvalidInput, NotFound
from comanda.services.cfdi.links import FORMATS, document_filename


@dataclass(frozen=True)
class Document:
    content: bytes
    mime_type: str
    filename: str


def invoice_document(
    session: Session, invoice_id: int, fmt: str, language: str, conversation_id: Optional[str] = None
) -> Document:
    """The invoice's PDF or XML with its file name in ``language``; for ``conversation_id``, only if the
    invoice is for an order of that conversation."""
    if fmt not in FORMATS:
        raise InvalidInput(f"an invoice document is one of {', '.join(FORMATS)}, not {fmt!r}")
    invoice = session.get(m.Invoice, invoice_id)
    order = session.get(m.Order, invoice.order_id) if invoice is not None and invoice.order_id else None
    if invoice is None or (conversation_id is not None and (order is None or order.conversation_id != conversation_id)):
        raise NotFound(f"no invoice {invoice_id} for this conversation")
    content = invoice.pdf if fmt == "pdf" else (invoice.xml.encode() if invoice.xml else None)
    if not content:
        raise NotFound(f"invoice {invoice_id} has no {fmt.upper()}")
    return Document(content, FORMATS[fmt], document_filename(invoice, fmt, language))
