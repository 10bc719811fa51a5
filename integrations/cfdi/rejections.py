"""A PAC's refusal in plain words: SAT's validation messages mapped to the codes the local checks use.

Since CFDI 4.0 SAT checks the receiver against its list of registered taxpayers (LCO): the name, the
DomicilioFiscalReceptor (postal code) and the régimen must be the ones on the customer's Constancia de
Situación Fiscal. Those refusals name the field in SAT's message (CFDI40145 "Nombre", CFDI40147
"DomicilioFiscalReceptor", "RegimenFiscalReceptor", "UsoCFDI", an RFC not in the list), and PACs relay the
message, so the field is found by those words, accents and case aside. Anything else is ``pac_rejected``.
"""

from __future__ import annotations

import unicodedata
from typing import Tuple

from comanda.services.cfdi.documents import Receiver
from comanda.services.cfdi.problems import InvoiceRefused, refuse

# First match wins: SAT's postal-code message also says "nombre asociado al RFC".
FIELD_WORDS: Tuple[Tuple[Tuple[str, ...], str, str], ...] = (
    (("domiciliofiscal", "codigo postal"), "postal_code", "postal_code_mismatch"),
    (("usocfdi", "uso del cfdi", "uso de cfdi"), "use", "use_not_allowed"),
    (("regimenfiscal", "regimen fiscal"), "regime", "regime_mismatch"),
    (("inscritos no cancelados", "rfc del receptor no existe", "no existe en la lista"), "rfc", "rfc_not_registered"),
    (("nombre", "razon social"), "name", "name_mismatch"),
)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def rejection(message: str, receiver: Receiver) -> InvoiceRefused:
    """The InvoiceRefused for a PAC's error message about a CFDI for ``receiver``."""
    plain = _plain(message)
    for words, field, code in FIELD_WORDS:
        if any(word in plain for word in words):
            return refuse(field, code, rfc=receiver.rfc, use=receiver.cfdi_use, regime=receiver.tax_regime)
    return refuse("invoice", "pac_rejected", reason=" ".join(message.split())[:300])
