"""Invoice downloads by signed link: ``GET /documents/invoices/<id>.<pdf|xml>?expires=…&sig=…``.

The chat sends invoices as WhatsApp documents by link (comanda.services.cfdi.links), and WhatsApp fetches
them from here. A missing, wrong or expired signature is 403; an invoice without that document is 404.
"""

from __future__ import annotations

from typing import Optional, Tuple

from sanic import Blueprint, response
from sanic.exceptions import Forbidden, NotFound
from sanic.request import Request
from sanic.response import HTTPResponse

from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session
from comanda.services.cfdi.links import FORMATS, document_filename, link_is_valid

bp = Blueprint("documents", url_prefix="/documents")


def _document(invoice_id: int, fmt: str) -> Tuple[Optional[bytes], Optional[str]]:
    with new_session() as session:
        invoice = session.get(m.Invoice, invoice_id)
        if invoice is None:
            return None, None
        content = invoice.pdf if fmt == "pdf" else (invoice.xml.encode() if invoice.xml else None)
        # The link's language is not known here; file names are the Spanish ones, as on the CFDI itself.
        return content, document_filename(invoice, fmt, "es")


@bp.get("/invoices/<name:str>")
async def invoice_document(request: Request, name: str) -> HTTPResponse:
    number, _, fmt = name.partition(".")  # "12.pdf"
    if not (number.isascii() and number.isdigit()) or not link_is_valid(
        int(number), fmt, request.args.get("expires", ""), request.args.get("sig", "")
    ):
        raise Forbidden("this link is not valid or has expired")
    invoice_id = int(number)
    content, filename = await in_thread(_document, invoice_id, fmt)
    if not content:
        raise NotFound(f"invoice {invoice_id} has no {fmt.upper()}")
    return response.raw(
        content,
        content_type=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store"},
    )
