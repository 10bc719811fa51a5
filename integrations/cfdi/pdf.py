"""The printed representation of a CFDI: satcfdi's template, rendered to PDF by WeasyPrint. A document without
fiscal validity (local PAC, test accounts) carries a banner saying so on its first page."""

from __future__ import annotations

from html import escape

import weasyprint
from satcfdi.cfdi import CFDI
from satcfdi.render import PDF_CSS, html_str

from comanda.i18n import t

BANNER_STYLE = (
    "border:2px solid #b00020;color:#b00020;font:bold 11pt Arial;padding:6pt;margin-bottom:8pt;text-align:center"
)


def printable_html(xml: bytes, test: bool) -> str:
    html = html_str(CFDI.from_string(xml))
    if not test:
        return html
    banner = f'<div class="comanda-test" style="{BANNER_STYLE}">{escape(t("cfdi.test_notice", "es"))}</div>'
    head, body_tag, rest = html.partition("<body>")
    return f"{head}{body_tag}{banner}{rest}" if body_tag else banner + html


def render_pdf(xml: bytes, test: bool) -> bytes:
    return weasyprint.HTML(string=printable_html(xml, test)).write_pdf(stylesheets=[PDF_CSS])


class SatcfdiPdf:
    """``CfdiIssuer.render_pdf`` for every adapter: satcfdi's template, whoever stamped the CFDI."""

    def render_pdf(self, xml: bytes, test: bool) -> bytes:
        return render_pdf(xml, test)
