"""Every CFDI Comanda keeps is checked: valid against SAT's cfdv40.xsd (vendored in schemas/, with the Timbre
Fiscal Digital's schema), and its Sello verifies with the certificate it carries over SAT's cadena original."""

from __future__ import annotations

import base64
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import List

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from satcfdi.transform import xslt_transform

from comanda.errors import ComandaError
from comanda.services.cfdi.taxes import Totals

SCHEMA = Path(__file__).resolve().parent / "schemas" / "cfdi40-with-tfd.xsd"
CFDI_NS = "{http://www.sat.gob.mx/cfd/4}"


class CfdiInvalid(ComandaError):
    """A CFDI that SAT would refuse on sight: not schema-valid, or a seal that does not verify."""

    code = "cfdi_invalid"


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def schema_errors(xml: bytes) -> List[str]:
    schema = _schema()
    if schema.validate(etree.fromstring(xml)):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def cadena_original(xml: bytes) -> str:
    """SAT's cadena original of a Comprobante (the signed text), by SAT's own XSLT."""
    root = etree.fromstring(xml)
    return str(xslt_transform(root.tag, root.get("Version"))(root))


def seal_is_valid(xml: bytes) -> bool:
    """Whether the Sello is an RSA-SHA256 signature of the cadena original by the certificate in the XML,
    whose serial is the NoCertificado."""
    root = etree.fromstring(xml)
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(root.get("Certificado", "")))
        signature = base64.b64decode(root.get("Sello", ""))
    except ValueError:
        return False
    serial = certificate.serial_number.to_bytes(20, "big").decode("ascii", errors="replace")
    if serial != root.get("NoCertificado"):
        return False
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):  # a Sello is RSA-SHA256: only an RSA key can have made it
        return False
    try:
        key.verify(signature, cadena_original(xml).encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def check_cfdi(xml: bytes) -> None:
    """Raise CfdiInvalid unless the XML is schema-valid and its seal verifies."""
    errors = schema_errors(xml)
    if errors:
        raise CfdiInvalid("the CFDI does not validate against SAT's cfdv40.xsd: " + "; ".join(errors[:5]))
    if not seal_is_valid(xml):
        raise CfdiInvalid("the CFDI's seal does not verify with the certificate it carries")


def stamped_totals(xml: bytes) -> Totals:
    """SubTotal and TotalImpuestosTrasladados as the XML states them."""
    root = etree.fromstring(xml)
    taxes = root.find(f"{CFDI_NS}Impuestos")
    tax = taxes.get("TotalImpuestosTrasladados", "0") if taxes is not None else "0"
    return Totals(Decimal(root.attrib["SubTotal"]), Decimal(tax))  # SubTotal is required (cfdv40.xsd)
