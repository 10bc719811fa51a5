"""Invoice downloads by signed link: ``GET /documents/invoices/<id>.<pdf|xml>?expires=…&sig=…``.

The chat sends invoices as WhatsApp documents by link (comanda.services.cfdi.links), and WhatsApp fetches
them from here. A missing, wrong or expired signature is 403; an invoice without that document is 404.
"""

from __future__ import annotations

from sanic import Blueprint, response
from sanic.exceptions import Forbidden, NotFound
from sanic.request import Request
from sanic.response import HTTPResponse

from comanda.concurrency import in_thread
from comanda.db import new_session
from comanda.errors import ComandaError
from comanda.services import documents
from comanda.services.cfdi.links import link_is_valid
from comanda.services.documents import Document

bp = Blueprint("documents", url_prefix="/documents")


def _document(invoice_id: int, fmt: str) -> Document:
    with new_session() as session:
        # The link's language is not known here; file names are the Spanish ones, as on the CFDI itself.
        return documents.invoice_document(session, invoice_id, fmt, "es")


@bp.get("/invoices/<name:str>")
async def invoice_document(request: Request, name: str) -> HTTPResponse:
    number, _, fmt = name.partition(".")  # "12.pdf"
    if not (number.isascii() and number.isdigit()) or not link_is_valid(
        int(number), fmt, request.args.get("expires", ""), request.args.get("sig", "")
    ):
        raise Forbidden("this link is not valid or has expired")
    invoice_id = int(number)
    try:
        document = await in_thread(_document, invoice_id, fmt)
    except ComandaError as exc:
        raise NotFound(exc.message) from None
    return response.raw(
        document.content,
        content_type=document.mime_type,
        headers={
            "Content-Disposition": f'attachment; filename="{document.filename}"',
            "Cache-Control": "private, no-store",
        },
    )
