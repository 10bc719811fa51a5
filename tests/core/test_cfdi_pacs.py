"""The PAC adapters against local fakes of the providers' documented APIs, over real HTTP.

- Finkok: SOAP at /servicios/soap/stamp.wsdl (``stamp``: a sealed CFDI, base64, with username and password)
  and /servicios/soap/cancel.wsdl (``cancel_signature``: a Cancelacion signed with the CSD), answering with
  the envelopes Finkok documents (``stampResult``: xml, UUID, CodEstatus, Incidencias; ``cancel_signatureResult``:
  Folios/Folio/EstatusUUID, EstatusCancelacion, Acuse).
- Facturapi: REST at /v2 with a bearer key: POST /invoices (JSON), GET /invoices/{id}/xml, DELETE
  /invoices/{id}?motive=&substitution=, GET /invoices/{id}/cancellation_receipt/xml; errors as 4xx JSON
  ``{"message": ...}``.

Both fakes act as SAT would: they validate the CFDI (schema, seal), check the receiver against a small list of
registered taxpayers (name, postal code, régimen, as on their Constancia) with SAT's own error messages, and
stamp a real Timbre Fiscal Digital signed with another of SAT's test certificates.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest
import requests
from lxml import etree
from satcfdi.create.cfd import cfdi40
from satcfdi.models import Signer
from satcfdi.transform import xslt_transform

from comanda.errors import ConfigError
from comanda.services.cfdi.credit_notes import issue_credit_note
from comanda.services.cfdi.fiscal import FiscalData
from comanda.services.cfdi.global_invoices import issue_global_invoice
from comanda.services.cfdi.invoicing import issue_invoice
from comanda.services.cfdi.lifecycle import cancel_invoice
from comanda.services.cfdi.problems import InvoiceRefused, PacUnavailable, StampUnconfirmed
from integrations.cfdi import issuer
from integrations.cfdi.facturapi import FacturapiIssuer
from integrations.cfdi.finkok import FinkokIssuer
from integrations.cfdi.transport import server_error, unreachable
from integrations.cfdi.validation import schema_errors, seal_is_valid
from tests.helpers.cfdi import (
    CFDI,
    COMPANY,
    NOVEMBER_20,
    PERSON,
    REGISTERED,
    Line,
    assert_valid_cfdi,
    attributes,
    paid_order,
    reload,
)
from tests.helpers.clock import clock_at
from tests.helpers.fake_http import Answer, FakeHTTP, Request
from tests.helpers.net import free_port
from tests.helpers.paths import ROOT

CSD = ROOT / "data" / "demo" / "csd"
TFD = "http://www.sat.gob.mx/TimbreFiscalDigital"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
APPS = "apps.services.soap.core.views"
GENERIC = ("XAXX010101000", "XEXX010101000")
TACOS_AND_HORCHATA = [Line("TACO-PASTOR", 3), Line("HORCHATA", 1)]


def _signer(basename: str) -> Signer:
    return Signer.load(
        certificate=(CSD / f"{basename}.cer").read_bytes(),
        key=(CSD / f"{basename}.key").read_bytes(),
        password=(CSD / f"{basename}.txt").read_text().strip(),
    )


class FakeSat:
    """What SAT and a PAC do to a sealed CFDI: refuse it with SAT's messages, or add a Timbre Fiscal Digital."""

    def __init__(self) -> None:
        self.pac = _signer("jes900109q90_csd")  # stands in for SAT's stamping certificate
        self.stamped: Dict[str, bytes] = {}

    def refusal(self, xml: bytes) -> Optional[Tuple[str, str]]:
        if schema_errors(xml):
            return "301", "XML mal formado"
        if not seal_is_valid(xml):
            return "302", "Sello mal formado o inválido"
        receiver = etree.fromstring(xml).find(f"{CFDI}Receptor")
        rfc = receiver.get("Rfc")
        if rfc in GENERIC:
            return None
        known = REGISTERED.get(rfc)
        if known is None:
            return "CFDI40143", "Este RFC del receptor no existe en la lista de RFC inscritos no cancelados del SAT."
        if receiver.get("Nombre") != known.name:
            return "CFDI40145", (
                "El campo Nombre del receptor, debe pertenecer al nombre asociado al RFC registrado "
                "en el campo Rfc del Receptor."
            )
        if receiver.get("DomicilioFiscalReceptor") != known.postal_code:
            return "CFDI40147", (
                "El campo DomicilioFiscalReceptor del receptor, debe pertenecer al nombre asociado "
                "al RFC registrado en el campo Rfc del Receptor."
            )
        if receiver.get("RegimenFiscalReceptor") != known.regime:
            return "CFDI40158", "La clave del campo RegimenFiscalR debe corresponder con el RFC del receptor."
        return None

    def stamp(self, xml: bytes) -> Tuple[str, bytes]:
        root = etree.fromstring(xml)
        folio = str(uuid.uuid4()).upper()
        complemento = etree.SubElement(root, f"{CFDI}Complemento")
        tfd = etree.SubElement(complemento, f"{{{TFD}}}TimbreFiscalDigital", nsmap={"tfd": TFD})
        tfd.set(
            "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation",
            f"{TFD} http://www.sat.gob.mx/sitio_internet/cfd/TimbreFiscalDigital/TimbreFiscalDigitalv11.xsd",
        )
        for name, value in (
            ("Version", "1.1"),
            ("UUID", folio),
            ("FechaTimbrado", datetime.now().strftime("%Y-%m-%dT%H:%M:%S")),
            ("RfcProvCertif", "CVD110412TF6"),
            ("SelloCFD", root.get("Sello")),
            ("NoCertificadoSAT", self.pac.certificate_number),
        ):
            tfd.set(name, value)
        cadena = str(xslt_transform(tfd.tag, "1.1")(tfd))
        tfd.set("SelloSAT", self.pac.sign_sha256(cadena.encode()))
        stamped = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        self.stamped[folio] = stamped
        return folio, stamped

    def cancels_at_once(self, folio: str) -> bool:
        """Without the receiver's acceptance: the public in general, or up to $1,000 (SAT's rule since 2022)."""
        root = etree.fromstring(self.stamped[folio])
        return root.find(f"{CFDI}Receptor").get("Rfc") in GENERIC or Decimal(root.get("Total")) <= 1000


class FakeFinkok(FakeHTTP):
    USER, PASSWORD = "demo@comanda.example", "s3cret"

    def __init__(self) -> None:
        self.sat = FakeSat()
        super().__init__()

    def respond(self, request: Request) -> Answer:
        path, body = request.path, request.body
        operation = etree.fromstring(body).find(f"{{{SOAP}}}Body")[0]
        name = etree.QName(operation).localname
        field = lambda tag: operation.findtext(f"{{{etree.QName(operation).namespace}}}{tag}")  # noqa: E731
        if (field("username"), field("password")) != (self.USER, self.PASSWORD):
            return self._envelope(
                name,
                "http://facturacion.finkok.com/stamp",
                {"xml": "", "Incidencias": [("300", "Usuario y contraseña inválidos")]},
            )
        xml = base64.b64decode(field("xml"))
        if path.endswith("/servicios/soap/stamp.wsdl") and name == "stamp":
            refusal = self.sat.refusal(xml)
            if refusal:
                return self._envelope(
                    name, "http://facturacion.finkok.com/stamp", {"xml": "", "Incidencias": [refusal]}
                )
            folio, stamped = self.sat.stamp(xml)
            return self._envelope(
                name,
                "http://facturacion.finkok.com/stamp",
                {
                    "xml": stamped.decode(),
                    "UUID": folio,
                    "Fecha": "2026-11-20T12:00:01",
                    "CodEstatus": "Comprobante timbrado satisfactoriamente",
                    "Incidencias": [],
                    "NoCertificadoSAT": self.sat.pac.certificate_number,
                },
            )
        if path.endswith("/servicios/soap/cancel.wsdl") and name == "cancel_signature":
            return self._cancel(etree.fromstring(xml))
        return 404, "no such operation"

    def _cancel(self, cancellation: etree._Element):
        folio = cancellation.find("{http://cancelacfd.sat.gob.mx}Folios/{http://cancelacfd.sat.gob.mx}Folio")
        signed = cancellation.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is not None
        folio_uuid = folio.get("UUID")
        if (
            not signed
            or folio_uuid not in self.sat.stamped
            or (folio.get("Motivo") == "01") != bool(folio.get("FolioSustitucion"))
        ):
            status, text = "205", "No Encontrado o solicitud inválida"
        elif self.sat.cancels_at_once(folio_uuid):
            status, text = "201", "Cancelado sin aceptación"
        else:
            status, text = "201", "En proceso"
        acuse = f'<Acuse Fecha="2026-11-20T12:00:00" RfcEmisor="{cancellation.get("RfcEmisor")}" UUID="{folio_uuid}"/>'
        return self._envelope(
            "cancel_signature",
            "http://facturacion.finkok.com/cancel",
            {
                "Folios": [("Folio", {"UUID": folio_uuid, "EstatusUUID": status, "EstatusCancelacion": text})],
                "Acuse": acuse,
                "Fecha": "2026-11-20T12:00:00",
                "RfcEmisor": cancellation.get("RfcEmisor"),
            },
        )

    @staticmethod
    def _envelope(operation: str, namespace: str, result: Dict[str, Any]):
        envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"senv": SOAP, "tns": namespace, "s0": APPS})
        response = etree.SubElement(
            etree.SubElement(envelope, f"{{{SOAP}}}Body"), f"{{{namespace}}}{operation}Response"
        )
        node = etree.SubElement(response, f"{{{namespace}}}{operation}Result")
        for key, value in result.items():
            child = etree.SubElement(node, f"{{{APPS}}}{key}")
            if key == "Incidencias":
                for code, message in value:
                    incidence = etree.SubElement(child, f"{{{APPS}}}Incidencia")
                    etree.SubElement(incidence, f"{{{APPS}}}CodigoError").text = code
                    etree.SubElement(incidence, f"{{{APPS}}}MensajeIncidencia").text = message
            elif key == "Folios":
                for tag, fields in value:
                    item = etree.SubElement(child, f"{{{APPS}}}{tag}")
                    for name, text in fields.items():
                        etree.SubElement(item, f"{{{APPS}}}{name}").text = text
            else:
                child.text = value
        xml = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        return 200, xml, {"Content-Type": "text/xml; charset=utf-8"}


class FakeFacturapi(FakeHTTP):
    KEY = "sk_test_comanda"
    PERIODICITY = {"day": "01", "week": "02", "fortnight": "03", "month": "04", "two_months": "05"}

    def __init__(self) -> None:
        self.sat, self.invoices = FakeSat(), {}
        self.organization = _signer("eku9003173c9_csd")  # the CSD the business uploaded to Facturapi
        super().__init__()

    def respond(self, request: Request) -> Answer:
        method, path, query, body = request.method, request.path, request.query, request.body
        if request.headers.get("Authorization") != f"Bearer {self.KEY}":
            return self._json(401, {"message": "Unauthorized"})
        parts = path.removeprefix("/v2/invoices").strip("/").split("/")
        if method == "POST" and parts == [""]:
            return self._create(json.loads(body))
        invoice = self.invoices.get(parts[0])
        if invoice is None:
            return self._json(404, {"message": "Invoice not found"})
        if method == "GET" and parts[1:] == ["xml"]:
            return 200, invoice["xml"], {"Content-Type": "application/xml"}
        if method == "GET" and parts[1:] == ["cancellation_receipt", "xml"] and invoice["status"] == "canceled":
            return 200, f'<Acuse UUID="{invoice["uuid"]}"/>'.encode(), {"Content-Type": "application/xml"}
        if method == "DELETE" and parts[1:] == []:
            motive = query.get("motive", [""])[0]
            if motive not in ("01", "02", "03", "04") or (motive == "01") != ("substitution" in query):
                return self._json(400, {"message": "Motivo de cancelación inválido o sin folio de sustitución"})
            at_once = self.sat.cancels_at_once(invoice["uuid"])
            invoice.update(
                status="canceled" if at_once else "valid", cancellation_status="accepted" if at_once else "pending"
            )
            return self._json(200, self._public(invoice))
        return self._json(404, {"message": "Not found"})

    def _create(self, body: Dict[str, Any]):
        customer = body["customer"]
        conceptos = []
        for item in body["items"]:
            product, quantity = item["product"], Decimal(item["quantity"])
            assert product["tax_included"] is True
            gross = (Decimal(str(product["price"])) * quantity).quantize(Decimal("0.01"), ROUND_HALF_UP)
            base = (gross / Decimal("1.16")).quantize(Decimal("0.01"), ROUND_HALF_UP)
            conceptos.append(
                cfdi40.Concepto(
                    clave_prod_serv=product["product_key"],
                    cantidad=quantity,
                    clave_unidad=product["unit_key"],
                    descripcion=product["description"],
                    valor_unitario=(base / quantity).quantize(Decimal("0.000001")),
                    no_identificacion=product.get("sku"),
                    objeto_imp="02",
                    impuestos=cfdi40.Impuestos(
                        traslados=cfdi40.Traslado(
                            impuesto="002",
                            tipo_factor="Tasa",
                            tasa_o_cuota=Decimal("0.160000"),
                            base=base,
                            importe=gross - base,
                        )
                    ),
                )
            )
        related = body.get("related_documents")
        period = body.get("global")
        cfdi = cfdi40.Comprobante(
            emisor=cfdi40.Emisor(rfc=self.organization.rfc, nombre="ESCUELA KEMPER URGATE", regimen_fiscal="601"),
            lugar_expedicion="06000",
            receptor=cfdi40.Receptor(
                rfc=customer["tax_id"],
                nombre=customer["legal_name"],
                domicilio_fiscal_receptor=customer["address"]["zip"],
                regimen_fiscal_receptor=customer["tax_system"],
                uso_cfdi=body["use"],
            ),
            conceptos=conceptos,
            tipo_de_comprobante=body["type"],
            serie=body.get("series"),
            folio=str(body.get("folio_number")),
            forma_pago=body["payment_form"],
            metodo_pago=body["payment_method"],
            fecha=datetime(2026, 11, 20, 12, 0, 0),
            cfdi_relacionados=cfdi40.CfdiRelacionados(related[0]["relationship"], related[0]["documents"])
            if related
            else None,
            informacion_global=cfdi40.InformacionGlobal(
                self.PERIODICITY[period["periodicity"]], period["months"], period["year"]
            )
            if period
            else None,
        )
        cfdi.sign(self.organization)
        xml = cfdi.xml_bytes()
        refusal = self.sat.refusal(xml)
        if refusal:
            return self._json(400, {"message": f"{refusal[1]} ({refusal[0]})"})
        folio, stamped = self.sat.stamp(xml)
        invoice = {
            "id": uuid.uuid4().hex[:24],
            "uuid": folio,
            "status": "valid",
            "cancellation_status": "none",
            "livemode": False,
            "total": float(cfdi["Total"]),
            "xml": stamped,
        }
        self.invoices[invoice["id"]] = invoice
        return self._json(200, self._public(invoice))

    @staticmethod
    def _public(invoice: Dict[str, Any]) -> Dict[str, Any]:
        return {k: v for k, v in invoice.items() if k != "xml"}

    @staticmethod
    def _json(status: int, payload: Dict[str, Any]) -> Answer:
        return status, payload


@pytest.fixture
def finkok() -> Iterator[FakeFinkok]:
    with FakeFinkok() as fake:
        yield fake


@pytest.fixture
def facturapi() -> Iterator[FakeFacturapi]:
    with FakeFacturapi() as fake:
        yield fake


@pytest.fixture
def november(demo_sqlite):
    """PAC adapters speak HTTP to a fake; the database backend is tested by the invoicing tests."""
    with clock_at(NOVEMBER_20):
        yield demo_sqlite


def finkok_issuer(fake: FakeFinkok, password: str = FakeFinkok.PASSWORD) -> FinkokIssuer:
    return FinkokIssuer(FakeFinkok.USER, password, fake.url, timeout=10)


def facturapi_issuer(fake: FakeFacturapi, key: str = FakeFacturapi.KEY) -> FacturapiIssuer:
    return FacturapiIssuer(key, f"{fake.url}/v2", timeout=10)


def refusal_of(call, *args, **kwargs):
    with pytest.raises(InvoiceRefused) as info:
        call(*args, **kwargs)
    return [(p.field, p.code) for p in info.value.problems]


def wrong(data: FiscalData, **changes) -> FiscalData:
    return FiscalData(**{**data.__dict__, **changes})


MISMATCHES = [
    (dict(name="ESCUELA KEMPER"), ("name", "name_mismatch")),
    (dict(postal_code="06000"), ("postal_code", "postal_code_mismatch")),
    (dict(regime="626"), ("regime", "regime_mismatch")),
    (dict(rfc="URE180429TM6"), ("rfc", "rfc_not_registered")),
]


def test_finkok_stamps_what_comanda_sealed(november, finkok):
    invoice = issue_invoice(paid_order(TACOS_AND_HORCHATA), COMPANY, issuer=finkok_issuer(finkok), actor="test")
    assert (invoice.status, invoice.pac, invoice.test_document, invoice.total) == (
        "stamped",
        "finkok",
        True,
        Decimal("101.00"),
    )
    assert_valid_cfdi(invoice.xml)
    tfd = attributes(invoice.xml, f"{CFDI}Complemento/{{{TFD}}}TimbreFiscalDigital")[0]
    assert tfd["UUID"] == invoice.uuid and tfd["SelloCFD"] == attributes(invoice.xml, ".")[0]["Sello"]
    request = finkok.requests[0]
    assert request.path == "/servicios/soap/stamp.wsdl" and b"demo@comanda.example" in request.body
    assert invoice.pdf.startswith(b"%PDF")


@pytest.fixture(params=["finkok", "facturapi"])
def any_pac(request):
    """Each PAC adapter, talking to its fake."""
    fake = FakeFinkok() if request.param == "finkok" else FakeFacturapi()
    yield finkok_issuer(fake) if request.param == "finkok" else facturapi_issuer(fake)
    fake.close()


@pytest.mark.parametrize("changes, problem", MISMATCHES)
def test_rejections_say_which_field_to_fix(november, any_pac, changes, problem):
    order = paid_order(TACOS_AND_HORCHATA)
    assert refusal_of(issue_invoice, order, wrong(COMPANY, **changes), issuer=any_pac, actor="test") == [problem]
    assert reload(1).status == "rejected" and reload(1).active_key is None
    assert issue_invoice(order, COMPANY, issuer=any_pac, actor="test").status == "stamped"


def test_finkok_credentials_and_outages(november, finkok):
    order = paid_order(TACOS_AND_HORCHATA)
    with pytest.raises(ConfigError):
        issue_invoice(order, COMPANY, issuer=finkok_issuer(finkok, password="nope"), actor="test")
    down = FinkokIssuer(FakeFinkok.USER, FakeFinkok.PASSWORD, f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(PacUnavailable):
        issue_invoice(order, COMPANY, issuer=down, actor="test")
    assert [reload(i).status for i in (1, 2)] == ["failed", "failed"]
    assert issue_invoice(order, COMPANY, issuer=finkok_issuer(finkok), actor="test").status == "stamped"


def test_finkok_cancellation_and_substitution(november, finkok):
    pac = finkok_issuer(finkok)
    small = issue_invoice(paid_order(TACOS_AND_HORCHATA), PERSON, issuer=pac, actor="test")
    cancelled = cancel_invoice(small.id, "02", issuer=pac, actor="test")
    assert cancelled.status == "cancelled" and f'UUID="{small.uuid}"' in cancelled.cancellation_receipt
    big_order = paid_order([Line("TERMO", 4)])
    big = issue_invoice(big_order, COMPANY, issuer=pac, actor="test")
    pending = cancel_invoice(big.id, "03", issuer=pac, actor="test")
    assert (pending.status, reload(big.id).active_key) == ("cancellation_pending", f"order:{big_order}")
    order = paid_order([Line("TAZA", 1)])
    first = issue_invoice(order, PERSON, issuer=pac, actor="test")
    second = issue_invoice(order, wrong(PERSON, use="G01"), issuer=pac, actor="test", replaces=first.id)
    old = reload(first.id)
    assert (old.status, old.cancellation_motive, old.replaced_by_uuid) == ("cancelled", "01", second.uuid)
    sent = etree.fromstring(finkok.requests[-1].body).find(f"{{{SOAP}}}Body")[0]
    cancellation = etree.fromstring(base64.b64decode(sent.findtext("{http://facturacion.finkok.com/cancel}xml")))
    folio = cancellation.find("{http://cancelacfd.sat.gob.mx}Folios/{http://cancelacfd.sat.gob.mx}Folio")
    assert (folio.get("UUID"), folio.get("Motivo"), folio.get("FolioSustitucion")) == (first.uuid, "01", second.uuid)


def test_finkok_global_invoice_and_credit_note(demo_sqlite, finkok):
    pac = finkok_issuer(finkok)
    paid_order(TACOS_AND_HORCHATA, method="cash")
    with clock_at(datetime(2026, 11, 21, 18, tzinfo=NOVEMBER_20.tzinfo)):
        invoice = issue_global_invoice("centro", "2026-11-20", issuer=pac, actor="test")
        note = issue_credit_note(invoice.id, issuer=pac, actor="test", amount=Decimal("35.00"))
    assert_valid_cfdi(invoice.xml)
    assert_valid_cfdi(note.xml)
    assert (invoice.status, note.status, note.related_uuid) == ("stamped", "stamped", invoice.uuid)


def test_facturapi_builds_seals_and_stamps_from_json(november, facturapi):
    invoice = issue_invoice(
        paid_order(TACOS_AND_HORCHATA, card_funding="debit"), COMPANY, issuer=facturapi_issuer(facturapi), actor="test"
    )
    assert (invoice.status, invoice.pac, invoice.test_document) == ("stamped", "facturapi", True)
    assert invoice.pac_document_id in facturapi.invoices and invoice.total == Decimal("101.00")
    assert_valid_cfdi(invoice.xml)
    body = json.loads(facturapi.requests[0].body)
    assert body["customer"] == {
        "legal_name": "ESCUELA KEMPER URGATE",
        "tax_id": "EKU9003173C9",
        "tax_system": "601",
        "address": {"zip": "42501"},
    }
    assert (body["type"], body["use"], body["payment_form"], body["payment_method"], body["series"]) == (
        "I",
        "G03",
        "28",
        "PUE",
        "F",
    )
    assert body["items"][0] == {
        "quantity": 3,
        "product": {
            "description": "Taco al pastor",
            "product_key": "90101503",
            "unit_key": "E48",
            "price": 22.0,
            "tax_included": True,
            "taxes": [{"type": "IVA", "rate": 0.16}],
            "taxability": "02",
            "sku": "TACO-PASTOR",
        },
    }
    assert facturapi.requests[1].path == f"/v2/invoices/{invoice.pac_document_id}/xml"


def test_facturapi_credentials_and_outages(november, facturapi):
    order = paid_order(TACOS_AND_HORCHATA)
    with pytest.raises(ConfigError):
        issue_invoice(order, COMPANY, issuer=facturapi_issuer(facturapi, key="sk_test_wrong"), actor="test")
    with pytest.raises(PacUnavailable):
        issue_invoice(
            order,
            COMPANY,
            actor="test",
            issuer=FacturapiIssuer(FakeFacturapi.KEY, f"http://127.0.0.1:{free_port()}/v2", timeout=2),
        )
    assert issue_invoice(order, COMPANY, issuer=facturapi_issuer(facturapi), actor="test").status == "stamped"


def test_facturapi_credit_note_global_and_cancellations(demo_sqlite, facturapi):
    pac = facturapi_issuer(facturapi)
    with clock_at(NOVEMBER_20):
        invoice = issue_invoice(paid_order(TACOS_AND_HORCHATA), PERSON, issuer=pac, actor="test")
        note = issue_credit_note(invoice.id, issuer=pac, actor="test", amount=Decimal("22.00"))
    body = json.loads(facturapi.requests[-2].body)
    assert body["type"] == "E" and body["related_documents"] == [{"relationship": "01", "documents": [invoice.uuid]}]
    assert_valid_cfdi(note.xml)
    the_21st = datetime(2026, 11, 21, 18, tzinfo=NOVEMBER_20.tzinfo)
    with clock_at(the_21st):
        paid_order([Line("CONCHA", 2)], method="cash", paid_at=the_21st)
        cancelled = cancel_invoice(note.id, "02", issuer=pac, actor="test")
    assert cancelled.status == "cancelled" and cancelled.cancellation_receipt
    delete = next(r for r in facturapi.requests if r.method == "DELETE")
    assert delete.path == f"/v2/invoices/{note.pac_document_id}"
    with clock_at(datetime(2026, 11, 22, 18, tzinfo=NOVEMBER_20.tzinfo)):
        global_invoice = issue_global_invoice("centro", "2026-11-21", issuer=pac, actor="test")
    sent = json.loads(next(r for r in reversed(facturapi.requests) if r.method == "POST").body)
    assert sent["global"] == {"periodicity": "day", "months": "11", "year": 2026}
    assert sent["customer"]["tax_id"] == "XAXX010101000" and global_invoice.status == "stamped"


class SlowFinkok(FakeFinkok):
    """Finkok stamps, but answers only once the test has seen the issuer stop waiting (``late.set()``)."""

    def __init__(self) -> None:
        self.late = threading.Event()
        super().__init__()
        self.server.handle_error = lambda request, address: None  # its late answer finds the socket closed

    def respond(self, request: Request) -> Answer:
        answer = super().respond(request)
        self.late.wait(timeout=60)
        return answer

    def close(self) -> None:
        self.late.set()
        super().close()


class FacturapiWithoutXml(FakeFacturapi):
    """Facturapi stamps, but the stamped XML cannot be fetched."""

    def respond(self, request: Request) -> Answer:
        if request.method == "GET" and request.path.endswith("/xml"):
            return self._json(500, {"message": "Internal server error"})
        return super().respond(request)


def test_a_stamp_whose_answer_is_lost_is_never_made_twice(november):
    slow, blind = SlowFinkok(), FacturapiWithoutXml()
    try:
        finkok_order, facturapi_order = paid_order(TACOS_AND_HORCHATA), paid_order(TACOS_AND_HORCHATA)
        with pytest.raises(StampUnconfirmed):
            issue_invoice(
                finkok_order,
                COMPANY,
                actor="test",
                issuer=FinkokIssuer(FakeFinkok.USER, FakeFinkok.PASSWORD, slow.url, timeout=1),
            )
        slow.late.set()  # the stamp was made; its answer goes to an issuer that has given up
        with pytest.raises(StampUnconfirmed):
            issue_invoice(facturapi_order, COMPANY, issuer=facturapi_issuer(blind), actor="test")
        [made] = blind.invoices.values()
        held = [reload(1), reload(2)]
        assert [(i.status, i.active_key, i.pac) for i in held] == [
            ("unconfirmed", f"order:{finkok_order}", "finkok"),
            ("unconfirmed", f"order:{facturapi_order}", "facturapi"),
        ]
        assert (held[1].uuid, held[1].pac_document_id) == (made["uuid"], made["id"])  # to look it up at Facturapi
        assert refusal_of(issue_invoice, finkok_order, COMPANY, issuer=finkok_issuer(slow), actor="test") == [
            ("order", "order_already_invoiced")
        ]
        assert refusal_of(issue_invoice, facturapi_order, COMPANY, issuer=facturapi_issuer(blind), actor="test") == [
            ("order", "order_already_invoiced")
        ]
        assert len(slow.sat.stamped) == 1 and len(blind.invoices) == 1
    finally:
        slow.close()
        blind.close()


class PendingFacturapi(FakeFacturapi):
    """SAT is slow: Facturapi accepts the invoice (202) and will go on trying to stamp it."""

    def respond(self, request: Request) -> Answer:
        if request.method == "POST":
            return self._json(202, {"id": "inv_pending", "uuid": None, "status": "pending", "livemode": False})
        return super().respond(request)


def test_an_invoice_facturapi_is_still_stamping_keeps_the_order(november):
    fake = PendingFacturapi()
    try:
        order = paid_order(TACOS_AND_HORCHATA)
        with pytest.raises(StampUnconfirmed):
            issue_invoice(order, COMPANY, issuer=facturapi_issuer(fake), actor="test")
        held = reload(1)
        assert (held.status, held.pac_document_id, held.active_key) == ("unconfirmed", "inv_pending", f"order:{order}")
    finally:
        fake.close()


def test_what_a_failed_request_means_for_the_cfdi_it_carried():
    def failure(url: str, timeout: float = 2) -> requests.RequestException:
        with pytest.raises(requests.RequestException) as info:
            requests.post(url, timeout=timeout)
        return info.value

    refused = failure(f"http://127.0.0.1:{free_port()}/")
    with socket.socket() as silent:  # takes the connection (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        lost = failure(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.5)
    assert isinstance(lost, requests.ReadTimeout)
    assert isinstance(unreachable("PAC", refused, stamping=True), PacUnavailable)  # never arrived
    assert isinstance(unreachable("PAC", lost, stamping=True), StampUnconfirmed)  # arrived, answer lost
    assert isinstance(unreachable("PAC", lost, stamping=False), PacUnavailable)  # fetching can be repeated
    assert isinstance(unreachable("PAC", failure("demo-facturacion.finkok.com/x"), stamping=True), ConfigError)
    assert isinstance(server_error("PAC", 504, stamping=True), StampUnconfirmed)
    assert isinstance(server_error("PAC", 503, stamping=True), PacUnavailable)


def test_issuer_comes_from_the_settings(monkeypatch):
    assert issuer().name == "local"
    monkeypatch.setenv("COMANDA_CFDI_PAC", "finkok")
    with pytest.raises(ConfigError):
        issuer()
    monkeypatch.setenv("FINKOK_USERNAME", "u")
    monkeypatch.setenv("FINKOK_PASSWORD", "p")
    assert issuer().name == "finkok"
    monkeypatch.setenv("COMANDA_CFDI_PAC", "facturapi")
    with pytest.raises(ConfigError):
        issuer()
    monkeypatch.setenv("FACTURAPI_API_KEY", "sk_test_x")
    assert issuer().name == "facturapi" and issuer("local").name == "local"
    with pytest.raises(ConfigError):
        issuer("sw")
