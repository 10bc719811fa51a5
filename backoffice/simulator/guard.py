"""Who may use the simulator: a program or browser on this machine, talking to it directly.

The simulator lets its caller speak as any customer and read every chat, so it answers only loopback
peers, and refuses any request a proxy forwarded (a reverse proxy on the same machine connects from
loopback too, on behalf of anyone): 403.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

PROXY_HEADERS = frozenset({"forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip"})


def is_local_caller(peer: str, header_names: Iterable[str]) -> bool:
    """A loopback peer whose request names no proxy."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False  # a Unix socket or an unknown peer
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback and not PROXY_HEADERS.intersection(name.lower() for name in header_names)


async def only_local_callers(request: Request) -> Optional[HTTPResponse]:
    if is_local_caller(request.ip, request.headers.keys()):
        return None
    return response.json(
        {"error": "the WhatsApp simulator answers only this machine, directly (loopback, no proxy)"}, status=403
    )
