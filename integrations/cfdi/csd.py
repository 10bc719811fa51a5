"""The issuer's CSD (Certificado de Sello Digital): <basename>.cer and .key in COMANDA_CFDI_CSD_DIR, the key's
password in COMANDA_CFDI_CSD_PASSWORD or, when that is empty, in <basename>.txt beside it (the demo's)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from satcfdi.exceptions import CFDIError
from satcfdi.models import Signer

from comanda.errors import ConfigError
from comanda.settings import setting


def load_signer(basename: str, rfc: str) -> Signer:
    """The signer for a business's CSD, checked to belong to its RFC."""
    folder = Path(setting("COMANDA_CFDI_CSD_DIR"))
    certificate, key = folder / f"{basename}.cer", folder / f"{basename}.key"
    if not certificate.is_file() or not key.is_file():
        raise ConfigError(f"CSD {basename!r} not found: {certificate} and {key} must exist (COMANDA_CFDI_CSD_DIR)")
    password = setting("COMANDA_CFDI_CSD_PASSWORD")
    if not password:
        password_file = folder / f"{basename}.txt"
        if not password_file.is_file():
            raise ConfigError(f"no password for CSD {basename!r}: set COMANDA_CFDI_CSD_PASSWORD or {password_file}")
        password = password_file.read_text().strip()
    signer = _signer(str(certificate), str(key), password)
    if signer.rfc != rfc:
        raise ConfigError(f"CSD {basename!r} belongs to {signer.rfc}, not to the issuer {rfc}")
    return signer


@lru_cache(maxsize=8)
def _signer(certificate: str, key: str, password: str) -> Signer:
    try:
        return Signer.load(certificate=Path(certificate).read_bytes(), key=Path(key).read_bytes(), password=password)
    except (ValueError, TypeError, CFDIError) as exc:
        raise ConfigError(f"cannot open the CSD {certificate} with its key and password: {exc}") from exc
