"""The embedded default PAC: seals for real, stamps nothing. For the demo, development and tests only.

The CFDI is built, sealed with the business's CSD, validated against SAT's schema and its seal verified, like
any other; but no PAC certifies it, so it has no Timbre Fiscal Digital and no fiscal validity. It is stored
as ``sealed`` and marked as a test document (a banner on the PDF, a notice in the e-mail). The UUID recorded
is generated here, only so credit notes, substitutions and cancellations can be tried end to end.
"""

from __future__ import annotations

import uuid

from comanda.enums import PacName
from comanda.services.cfdi.documents import Cancellation, CancellationRequest, CfdiDocument, StampedCfdi
from integrations.cfdi.build import sealed_xml
from integrations.cfdi.pdf import SatcfdiPdf


class LocalIssuer(SatcfdiPdf):
    name = PacName.LOCAL.value

    def issue(self, document: CfdiDocument) -> StampedCfdi:
        return StampedCfdi(
            str(uuid.uuid4()).upper(), sealed_xml(document), stamped=False, test=True, totals=document.totals
        )

    def cancel(self, request: CancellationRequest) -> Cancellation:
        return Cancellation(cancelled=True)
