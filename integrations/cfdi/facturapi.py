"""Facturapi (REST, facturapi.io/v2): Facturapi builds, seals (with the CSD the business uploaded to it) and
stamps the CFDI from JSON; Comanda then downloads the XML and checks it like its own.

POST /invoices creates it, GET /invoices/{id}/xml fetches it, DELETE /invoices/{id}?motive=&substitution=
cancels it (GET /invoices/{id}/cancellation_receipt/xml is the acuse). Errors come as HTTP 4xx with a JSON
``message``, SAT's validation text included, mapped like any PAC's. Unit prices go IVA included
(``tax_included``), as the customer paid them, and Facturapi works out each item's base and IVA itself; the
invoice records the totals it stamped.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import requests

from comanda.errors import ConfigError
from comanda.services.cfdi.documents import (
    Cancellation,
    CancellationRequest,
    CfdiDocument,
    Concept,
    StampedCfdi,
)
from comanda.services.cfdi.problems import PacUnavailable, refuse
from comanda.services.cfdi.taxes import IVA_RATE, UNIT_VALUE_PLACES
from integrations.cfdi.pdf import render_pdf
from integrations.cfdi.rejections import rejection
from integrations.cfdi.validation import check_cfdi, stamped_totals

PERIODICITY = {"01": "day", "02": "week", "03": "fortnight", "04": "month", "05": "two_months"}


def _number(value: Any) -> float:
    """JSON has no decimal type: amounts go as numbers with at most 6 decimals, which a float renders exactly."""
    return float(value)


def _item(concept: Concept) -> Dict[str, Any]:
    amount = concept.amount
    price = (amount.total / amount.quantity).quantize(UNIT_VALUE_PLACES)
    product: Dict[str, Any] = {
        "description": concept.description, "product_key": concept.sat_prod_serv, "unit_key": concept.sat_unit,
        "price": _number(price), "tax_included": True,
        "taxes": [{"type": "IVA", "rate": _number(IVA_RATE)}] if amount.base > 0 else [],
        "taxability": "02" if amount.base > 0 else "01",
    }
    if concept.sku:
        product["sku"] = concept.sku
    return {"quantity": amount.quantity, "product": product}


def invoice_body(document: CfdiDocument) -> Dict[str, Any]:
    """The POST /invoices body for a document (Facturapi v2)."""
    receiver = document.receiver
    body: Dict[str, Any] = {
        "type": document.kind,
        "customer": {"legal_name": receiver.name, "tax_id": receiver.rfc, "tax_system": receiver.tax_regime,
                     "address": {"zip": receiver.postal_code}},
        "items": [_item(c) for c in document.concepts],
        "use": receiver.cfdi_use, "payment_form": document.payment_form, "payment_method": document.payment_method,
        "series": document.series, "folio_number": int(document.folio),
    }
    if document.related_uuid:
        body["related_documents"] = [{"relationship": document.relation_type, "documents": [document.related_uuid]}]
    if document.global_info:
        info = document.global_info
        body["global"] = {"periodicity": PERIODICITY[info.periodicity], "months": info.months, "year": info.year}
    return body


class FacturapiIssuer:
    name = "facturapi"

    def __init__(self, api_key: str, url: str, timeout: float) -> None:
        if not api_key:
            raise ConfigError("COMANDA_CFDI_PAC=facturapi needs FACTURAPI_API_KEY")
        self._key, self._url, self._timeout = api_key, url.rstrip("/"), timeout

    def _request(self, method: str, path: str, document: Optional[CfdiDocument] = None,
                 **kwargs: Any) -> requests.Response:
        try:
            response = requests.request(method, f"{self._url}{path}", timeout=self._timeout,
                                        headers={"Authorization": f"Bearer {self._key}"}, **kwargs)
        except requests.RequestException as exc:
            raise PacUnavailable(f"Facturapi is unreachable: {exc}")
        if response.status_code in (401, 403):
            raise ConfigError(f"Facturapi refused FACTURAPI_API_KEY (HTTP {response.status_code})")
        if response.status_code >= 500 or response.status_code == 429:
            raise PacUnavailable(f"Facturapi answered HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text or response.reason
            if document is not None:
                raise rejection(message, document.receiver)
            raise refuse("invoice", "pac_rejected", reason=message)
        return response

    def issue(self, document: CfdiDocument) -> StampedCfdi:
        created = self._request("POST", "/invoices", document, json=invoice_body(document)).json()
        xml = self._request("GET", f"/invoices/{created['id']}/xml").content
        check_cfdi(xml)
        return StampedCfdi(created["uuid"].upper(), xml, stamped=True, test=not created.get("livemode", False),
                           totals=stamped_totals(xml), provider_id=created["id"])

    def cancel(self, request: CancellationRequest) -> Cancellation:
        params = {"motive": request.motive}
        if request.substitute_uuid:
            params["substitution"] = request.substitute_uuid
        invoice = self._request("DELETE", f"/invoices/{request.provider_id}", params=params).json()
        if invoice.get("status") != "canceled":
            return Cancellation(cancelled=False)
        receipt = self._request("GET", f"/invoices/{request.provider_id}/cancellation_receipt/xml").text
        return Cancellation(cancelled=True, receipt=receipt)

    def render_pdf(self, xml: bytes, test: bool) -> bytes:
        return render_pdf(xml, test)
