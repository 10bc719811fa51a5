"""Facturapi (REST, facturapi.io/v2): Facturapi builds, seals (with the CSD the business uploaded to it) and
stamps the CFDI from JSON; Comanda then downloads the XML and checks it like its own.

POST /invoices creates it, GET /invoices/{id}/xml fetches it, DELETE /invoices/{id}?motive=&substitution=
cancels it (GET /invoices/{id}/cancellation_receipt/xml is the acuse). Errors come as HTTP 4xx with a JSON
``message``, SAT's validation text included, mapped like any PAC's. Unit prices go IVA included
(``tax_included``), as the customer paid them, and Facturapi works out each item's base and IVA itself; the
invoice records the totals it stamped. Once POST /invoices has answered, the CFDI exists at SAT, or will (a 202
``pending`` invoice Facturapi keeps trying to stamp): if it is not stamped yet, or its XML cannot be fetched or
checked, the draft is left ``unconfirmed`` with Facturapi's id, never freed to be stamped again.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from typing import Any, Dict, Optional

import requests

from comanda.enums import PacName
from comanda.errors import ComandaError, ConfigError
from comanda.services.cfdi.documents import (
    Cancellation,
    CancellationRequest,
    CfdiDocument,
    Concept,
    StampedCfdi,
)
from comanda.services.cfdi.problems import StampUnconfirmed, refuse
from comanda.services.cfdi.taxes import IVA_RATE, UNIT_VALUE_PLACES
from integrations.cfdi.build import NOT_TAXED, TAXED
from integrations.cfdi.pdf import SatcfdiPdf
from integrations.cfdi.rejections import rejection
from integrations.cfdi.transport import server_error, unreachable
from integrations.cfdi.validation import check_cfdi, stamped_totals

PERIODICITY = {"01": "day", "02": "week", "03": "fortnight", "04": "month", "05": "two_months"}
ACCEPTED = 202  # POST /invoices: SAT did not answer in time; Facturapi retries the stamp for a while (status pending)


def _number(value: Any) -> float:
    """JSON has no decimal type: amounts go as numbers with at most 6 decimals, which a float renders exactly."""
    return float(value)


def _item(concept: Concept) -> Dict[str, Any]:
    amount = concept.amount
    price = (amount.total / amount.quantity).quantize(UNIT_VALUE_PLACES, ROUND_HALF_UP)
    product: Dict[str, Any] = {
        "description": concept.description,
        "product_key": concept.sat_prod_serv,
        "unit_key": concept.sat_unit,
        "price": _number(price),
        "tax_included": True,
        "taxes": [{"type": "IVA", "rate": _number(IVA_RATE)}] if amount.base > 0 else [],
        "taxability": TAXED if amount.base > 0 else NOT_TAXED,
    }
    if concept.sku:
        product["sku"] = concept.sku
    return {"quantity": amount.quantity, "product": product}


def invoice_body(document: CfdiDocument) -> Dict[str, Any]:
    """The POST /invoices body for a document (Facturapi v2)."""
    receiver = document.receiver
    body: Dict[str, Any] = {
        "type": document.kind,
        "customer": {
            "legal_name": receiver.name,
            "tax_id": receiver.rfc,
            "tax_system": receiver.tax_regime,
            "address": {"zip": receiver.postal_code},
        },
        "items": [_item(c) for c in document.concepts],
        "use": receiver.cfdi_use,
        "payment_form": document.payment_form,
        "payment_method": document.payment_method,
        "series": document.series,
        "folio_number": int(document.folio),
    }
    if document.related_uuid:
        body["related_documents"] = [{"relationship": document.relation_type, "documents": [document.related_uuid]}]
    if document.global_info:
        info = document.global_info
        body["global"] = {"periodicity": PERIODICITY[info.periodicity], "months": info.months, "year": info.year}
    return body


def answer_object(response: requests.Response) -> Dict[str, Any]:
    """Facturapi's JSON object, or {} for anything else it may answer (HTML from a proxy, a list, nothing)."""
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class FacturapiIssuer(SatcfdiPdf):
    name = PacName.FACTURAPI.value

    def __init__(self, api_key: str, url: str, timeout: float) -> None:
        if not api_key:
            raise ConfigError("COMANDA_CFDI_PAC=facturapi needs FACTURAPI_API_KEY")
        self._key, self._url, self._timeout = api_key, url.rstrip("/"), timeout

    def _request(
        self, method: str, path: str, document: Optional[CfdiDocument] = None, **kwargs: Any
    ) -> requests.Response:
        """``document``: the CFDI this request stamps (POST /invoices), whose refusals name the field to fix."""
        try:
            response = requests.request(
                method,
                f"{self._url}{path}",
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._key}"},
                **kwargs,
            )
        except requests.RequestException as exc:
            raise unreachable("Facturapi", exc, stamping=document is not None) from exc
        if response.status_code in (401, 403):
            raise ConfigError(f"Facturapi refused FACTURAPI_API_KEY (HTTP {response.status_code})")
        if response.status_code >= 500 or response.status_code == 429:
            raise server_error("Facturapi", response.status_code, stamping=document is not None)
        if response.status_code >= 400:
            message = str(answer_object(response).get("message") or response.text or response.reason)
            if document is not None:
                raise rejection(message, document.receiver)
            raise refuse("invoice", "pac_rejected", reason=message)
        return response

    def issue(self, document: CfdiDocument) -> StampedCfdi:
        response = self._request("POST", "/invoices", document, json=invoice_body(document))
        created = answer_object(response)
        provider_id, uuid = created.get("id"), created.get("uuid") or ""
        if not isinstance(provider_id, str) or not provider_id or not isinstance(uuid, str):
            raise StampUnconfirmed(f"Facturapi answered the stamping request with {response.text[:200]!r}")
        uuid = uuid.upper()
        if response.status_code == ACCEPTED or not uuid:  # SAT was slow: Facturapi keeps trying to stamp it
            raise StampUnconfirmed(
                f"Facturapi took invoice {provider_id} as {created.get('status')!r}, not stamped "
                f"yet (HTTP {response.status_code})",
                provider_id=provider_id,
            )
        try:
            xml = self._request("GET", f"/invoices/{provider_id}/xml").content
            check_cfdi(xml)
        except ComandaError as exc:
            raise StampUnconfirmed(
                f"Facturapi stamped {uuid} (invoice {provider_id}), but its XML: {exc.message}",
                uuid=uuid,
                provider_id=provider_id,
            ) from exc
        return StampedCfdi(
            uuid,
            xml,
            stamped=True,
            test=not created.get("livemode", False),
            totals=stamped_totals(xml),
            provider_id=provider_id,
        )

    def cancel(self, request: CancellationRequest) -> Cancellation:
        params = {"motive": request.motive}
        if request.substitute_uuid:
            params["substitution"] = request.substitute_uuid
        invoice = answer_object(self._request("DELETE", f"/invoices/{request.provider_id}", params=params))
        if invoice.get("status") != "canceled":
            return Cancellation(cancelled=False)
        receipt = self._request("GET", f"/invoices/{request.provider_id}/cancellation_receipt/xml").text
        return Cancellation(cancelled=True, receipt=receipt)
