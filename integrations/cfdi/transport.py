"""What a failed HTTP request to a PAC means for the CFDI it carried.

A request that never reached the PAC (connection refused, no route or name, a connect timeout, a failed TLS
handshake) or that the PAC answered with an error stamped nothing: ``PacUnavailable``, try again. A stamping
request that went out and got no answer (a read timeout, a connection dropped while waiting, a gateway that gave
up on the PAC: 502, 504) may have been stamped: ``StampUnconfirmed``, so the draft keeps its order and nothing
is stamped twice. Other requests (fetching, cancelling) can simply be repeated. A URL that is not one is the
operator's to fix: ``ConfigError``.
"""

from __future__ import annotations

from typing import Union

import requests
from urllib3.exceptions import NewConnectionError

from comanda.errors import ComandaError, ConfigError
from comanda.services.cfdi.problems import PacUnavailable, StampUnconfirmed

GATEWAY_ERRORS = (502, 504)
BAD_URL = (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL)


def never_arrived(exc: requests.RequestException) -> bool:
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def unreachable(pac: str, exc: requests.RequestException, stamping: bool) -> ComandaError:
    if isinstance(exc, BAD_URL):
        return ConfigError(f"{pac}'s URL is not usable: {exc}")
    if stamping and not never_arrived(exc):
        return StampUnconfirmed(f"{pac} got the stamping request but did not answer ({exc}): it may have stamped it")
    return PacUnavailable(f"{pac} is unreachable: {exc}")


def server_error(pac: str, status: int, stamping: bool) -> Union[PacUnavailable, StampUnconfirmed]:
    if stamping and status in GATEWAY_ERRORS:
        return StampUnconfirmed(
            f"{pac}'s gateway answered the stamping request with HTTP {status}: it may have stamped it"
        )
    return PacUnavailable(f"{pac} answered HTTP {status}")
