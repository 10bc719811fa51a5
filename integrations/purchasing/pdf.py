"""A purchase order as a one-page A4 PDF, rendered by WeasyPrint (the library that prints the CFDI PDFs)
from plain HTML: every value is escaped, nothing is fetched."""

from __future__ import annotations

from html import escape

import weasyprint

from comanda.services.purchasing import PurchaseOrderDocument

STYLE = """
@page { size: A4; margin: 18mm 16mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; color: #222; }
h1 { font-size: 18pt; margin: 0 0 4pt; }
.meta { width: 100%; margin: 10pt 0 14pt; border-collapse: collapse; }
.meta th { text-align: left; width: 32%; color: #555; font-weight: normal; padding: 2pt 0; }
.lines { width: 100%; border-collapse: collapse; }
.lines th { background: #f0ede6; text-align: left; padding: 4pt; border-bottom: 1px solid #999; }
.lines td { padding: 4pt; border-bottom: 1px solid #ddd; }
.num { text-align: right; }
.total td { font-weight: bold; border-top: 2px solid #333; border-bottom: none; }
footer { margin-top: 18pt; color: #555; }
"""


def printable_html(doc: PurchaseOrderDocument) -> str:
    e = escape
    meta = [
        (doc.labels["number"], doc.number),
        (doc.labels["date"], doc.dated),
        (doc.labels["supplier"], doc.supplier),
        (doc.labels["deliver_to"], doc.deliver_to),
        (doc.labels["expected"], doc.expected),
    ]
    if doc.rfc:
        meta.insert(1, (doc.labels["rfc"], doc.rfc))
    rows = "".join(
        f"<tr><td>{e(line.code)}</td><td>{e(line.name)}</td><td>{e(line.unit)}</td>"
        f'<td class="num">{e(line.quantity)}</td><td class="num">{e(line.unit_cost)}</td>'
        f'<td class="num">{e(line.total)}</td></tr>'
        for line in doc.lines
    )
    headings = "".join(f"<th{' class=num' if i >= 3 else ''}>{e(h)}</th>" for i, h in enumerate(doc.headings))
    return (
        f'<!doctype html><html lang="{e(doc.language)}"><head><meta charset="utf-8">'
        f"<title>{e(doc.title)} {e(doc.number)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(doc.title)} {e(doc.number)}</h1><div>{e(doc.business)}</div>"
        '<table class="meta">'
        + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in meta)
        + f'</table><table class="lines"><thead><tr>{headings}</tr></thead><tbody>{rows}'
        f'<tr class="total"><td colspan="5">{e(doc.labels["total"])}</td><td class="num">{e(doc.total)}</td></tr>'
        f"</tbody></table><footer>{e(doc.footer)}</footer></body></html>"
    )


class WeasyPrinter:
    """``PurchaseOrderPrinter`` for the core's ``send_order``."""

    def render_pdf(self, document: PurchaseOrderDocument) -> bytes:
        return weasyprint.HTML(string=printable_html(document)).write_pdf()
