"""What the core asks of a signer/PAC, without knowing any: a neutral CFDI description and a protocol.

``integrations.cfdi`` turns a ``CfdiDocument`` into a CFDI 4.0 with satcfdi, seals it with the business's CSD
and has it stamped (or, for Facturapi, sends it to be built, sealed and stamped there). Customer-fixable
rejections come back as ``InvoiceRefused`` (mapped to the same codes as the local checks), outages as
``PacUnavailable``, a stamp that may have happened without Comanda getting it as ``StampUnconfirmed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Protocol, Tuple

from comanda.enums import RelationType
from comanda.services.cfdi.taxes import TaxedAmount, Totals, totals

INGRESO, EGRESO = "I", "E"
PAYMENT_METHOD_PUE = "PUE"  # paid in full before the invoice: every Comanda sale
RELATION_CREDIT_NOTE, RELATION_SUBSTITUTION = RelationType.CREDIT_NOTE.value, RelationType.SUBSTITUTION.value


@dataclass(frozen=True)
class Issuer:
    rfc: str
    name: str
    tax_regime: str
    csd: str  # basename of the .cer/.key pair in COMANDA_CFDI_CSD_DIR


@dataclass(frozen=True)
class Receiver:
    rfc: str
    name: str
    postal_code: str  # DomicilioFiscalReceptor
    tax_regime: str
    cfdi_use: str


@dataclass(frozen=True)
class Concept:
    sat_prod_serv: str
    sat_unit: str
    description: str
    sku: Optional[str]  # NoIdentificacion
    amount: TaxedAmount


@dataclass(frozen=True)
class GlobalInfo:
    """InformacionGlobal of a factura global: Periodicidad 01 daily / 04 monthly, Meses 01-12, Año."""

    periodicity: str
    months: str
    year: int


@dataclass(frozen=True)
class CfdiDocument:
    kind: str  # INGRESO | EGRESO
    series: str
    folio: str
    issued_at: datetime  # naive, the local time where it is issued (Fecha)
    expedition_postal_code: str  # LugarExpedicion: the store's postal code
    issuer: Issuer
    receiver: Receiver
    payment_form: str  # SAT c_FormaPago
    concepts: Tuple[Concept, ...]
    payment_method: str = PAYMENT_METHOD_PUE
    relation_type: Optional[str] = None
    related_uuid: Optional[str] = None
    global_info: Optional[GlobalInfo] = None

    @property
    def totals(self) -> Totals:
        return totals(c.amount for c in self.concepts)


@dataclass(frozen=True)
class StampedCfdi:
    uuid: str  # the folio fiscal; for the local PAC a locally generated id (nothing was stamped)
    xml: bytes
    stamped: bool  # False: sealed only (the local PAC), there is no Timbre Fiscal Digital
    test: bool  # True: no fiscal validity (local PAC, or a provider's test account)
    totals: Totals  # as stamped: a PAC that builds the CFDI itself (Facturapi) rounds its own way
    provider_id: Optional[str] = None  # the provider's own id when it is not the UUID


@dataclass(frozen=True)
class CancellationRequest:
    uuid: str
    issuer_rfc: str
    csd: str
    provider_id: Optional[str]
    motive: str  # 01 | 02 | 03 | 04
    substitute_uuid: Optional[str] = None  # FolioSustitucion, motive 01 only


@dataclass(frozen=True)
class Cancellation:
    cancelled: bool  # False: SAT still waits (the receiver must accept, or it is being processed)
    receipt: Optional[str] = None  # the acuse, as the PAC returned it


class CfdiIssuer(Protocol):
    """A PAC adapter. ``name`` is what COMANDA_CFDI_PAC calls it and what invoices.pac records."""

    name: str

    def issue(self, document: CfdiDocument) -> StampedCfdi:
        """Build, seal and stamp. Raises InvoiceRefused (fixable data), PacUnavailable (nothing stamped) or
        StampUnconfirmed (the PAC may have stamped it: the answer was lost or unusable)."""

    def cancel(self, request: CancellationRequest) -> Cancellation:
        """Ask SAT, through the PAC, to cancel a stamped CFDI."""

    def render_pdf(self, xml: bytes, test: bool) -> bytes:
        """The printed representation; ``test`` marks it as a document without fiscal validity."""
