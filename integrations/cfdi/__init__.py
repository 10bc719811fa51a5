"""CFDI adapters: building and sealing with satcfdi, SAT's schemas, PDF rendering, and the PACs.

``issuer(name)`` gives the PAC that COMANDA_CFDI_PAC names (or the one an invoice was issued through):
``local`` (sealed, not stamped: test documents), ``facturapi`` or ``finkok``. Each implements
``comanda.services.cfdi.documents.CfdiIssuer``.
"""

from __future__ import annotations

from typing import Optional

from comanda.enums import PacName
from comanda.errors import ConfigError
from comanda.services.cfdi.documents import CfdiIssuer
from comanda.settings import setting, setting_int


def issuer(name: Optional[str] = None) -> CfdiIssuer:
    name = name or setting("COMANDA_CFDI_PAC")
    timeout = setting_int("COMANDA_CFDI_PAC_TIMEOUT")
    if name == PacName.LOCAL:
        from integrations.cfdi.local import LocalIssuer

        return LocalIssuer()
    if name == PacName.FACTURAPI:
        from integrations.cfdi.facturapi import FacturapiIssuer

        return FacturapiIssuer(setting("FACTURAPI_API_KEY"), setting("FACTURAPI_URL"), timeout)
    if name == PacName.FINKOK:
        from integrations.cfdi.finkok import FinkokIssuer

        return FinkokIssuer(setting("FINKOK_USERNAME"), setting("FINKOK_PASSWORD"), setting("FINKOK_URL"), timeout)
    raise ConfigError(f"COMANDA_CFDI_PAC must be one of {', '.join(PacName.values())}, not {name!r}")
