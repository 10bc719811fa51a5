"""Finkok, through satcfdi's SOAP client: Comanda seals, Finkok stamps (``stamp``) and cancels with a
Cancelacion signed by the issuer's CSD (``cancel_signature``).

satcfdi's client posts without a timeout and to fixed hosts; the subclass here points it at FINKOK_URL (the
demo host by default) with COMANDA_CFDI_PAC_TIMEOUT and turns transport trouble into PacUnavailable (or, for a
stamping request that may have arrived, StampUnconfirmed: see ``transport``). SAT's validation errors
(incidencias CFDI40xxx) become the same problems the local checks report.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlparse

import requests
from lxml import etree
from satcfdi.cfdi import CFDI
from satcfdi.create.cancela import cancelacion
from satcfdi.exceptions import ResponseError
from satcfdi.pacs import Environment
from satcfdi.pacs.finkok import Finkok

from comanda.enums import PacName
from comanda.errors import ConfigError
from comanda.services.cfdi.documents import Cancellation, CancellationRequest, CfdiDocument, StampedCfdi
from comanda.services.cfdi.problems import PacUnavailable, StampUnconfirmed, refuse
from integrations.cfdi.build import sealed_xml
from integrations.cfdi.csd import load_signer
from integrations.cfdi.pdf import SatcfdiPdf
from integrations.cfdi.rejections import rejection
from integrations.cfdi.transport import server_error, unreachable
from integrations.cfdi.validation import CfdiInvalid, check_cfdi, stamped_totals

PRODUCTION_HOST = "facturacion.finkok.com"
AUTH_FAILED = "300"  # Finkok: usuario o contraseña inválidos
PENDING_WORDS = ("proceso", "pendiente")  # EstatusCancelacion while the receiver may still accept or refuse


class _FinkokClient(Finkok):
    def __init__(self, username: str, password: str, url: str, timeout: float) -> None:
        super().__init__(username, password, Environment.TEST)
        self._host, self._timeout = url.rstrip("/"), timeout
        self.last_response: Optional[etree._Element] = None

    @property
    def host(self) -> str:
        return self._host

    def _perform_request(self, url: str, envelope: etree._Element) -> etree._Element:
        stamping = url == self.stamp_url
        try:
            response = requests.post(
                url=url,
                data=etree.tostring(envelope),
                timeout=self._timeout,
                headers={"Content-Type": "text/xml; charset=utf-8"},
            )
        except requests.RequestException as exc:
            raise unreachable("Finkok", exc, stamping) from exc
        if response.status_code >= 500:
            raise server_error("Finkok", response.status_code, stamping)
        try:
            self.last_response = etree.fromstring(response.content)
        except etree.XMLSyntaxError:
            if response.status_code >= 400:
                raise ConfigError(
                    f"Finkok answered HTTP {response.status_code} at {url}: is FINKOK_URL right?"
                ) from None
            if stamping:
                raise StampUnconfirmed(
                    f"Finkok answered the stamping request with {response.content[:200]!r}"
                ) from None
            raise PacUnavailable(f"Finkok answered with {response.content[:200]!r}") from None
        return self.last_response


class FinkokIssuer(SatcfdiPdf):
    name = PacName.FINKOK.value

    def __init__(self, username: str, password: str, url: str, timeout: float) -> None:
        if not username or not password:
            raise ConfigError("COMANDA_CFDI_PAC=finkok needs FINKOK_USERNAME and FINKOK_PASSWORD")
        self._client = _FinkokClient(username, password, url, timeout)
        self._test = urlparse(url).hostname != PRODUCTION_HOST

    def issue(self, document: CfdiDocument) -> StampedCfdi:
        sealed = CFDI.from_string(sealed_xml(document))
        try:
            stamped = self._client.stamp(sealed)
        except ResponseError as exc:
            raise self._refusal(str(exc), document) from exc
        uuid = stamped.document_id.upper()
        try:
            check_cfdi(stamped.xml)
        except CfdiInvalid as exc:
            raise StampUnconfirmed(
                f"Finkok stamped {uuid}, but the CFDI it returned: {exc.message}", uuid=uuid
            ) from exc
        return StampedCfdi(uuid, stamped.xml, stamped=True, test=self._test, totals=stamped_totals(stamped.xml))

    def _refusal(self, message: str, document: CfdiDocument) -> Exception:
        code = message.split(" - ", 1)[0].strip()
        if code == AUTH_FAILED:
            return ConfigError(f"Finkok refused the credentials (FINKOK_USERNAME / FINKOK_PASSWORD): {message}")
        if code.startswith("CFDI"):
            return rejection(message, document.receiver)
        return PacUnavailable(f"Finkok did not stamp the CFDI: {message}")

    def cancel(self, request: CancellationRequest) -> Cancellation:
        signer = load_signer(request.csd, request.issuer_rfc)
        folio = cancelacion.Folio(request.uuid, request.motive, request.substitute_uuid)
        try:
            acknowledgment = self._client.cancel_comprobante(cancelacion.Cancelacion(signer, folio))
        except ResponseError as exc:
            raise refuse("invoice", "pac_rejected", reason=str(exc)) from exc
        if acknowledgment.code not in ("201", "202"):  # SAT: request received / already cancelled
            raise refuse("invoice", "pac_rejected", reason=f"EstatusUUID {acknowledgment.code}")
        response = self._client.last_response
        assert response is not None  # the answer to the request cancel_comprobante just made
        status = response.findtext(".//apps:EstatusCancelacion", "", self._client.namespaces)
        pending = any(word in status.lower() for word in PENDING_WORDS)
        receipt = acknowledgment.acuse.decode() if acknowledgment.acuse else None
        return Cancellation(cancelled=not pending, receipt=receipt)
