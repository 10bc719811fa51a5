"""Every route of the back office that takes a body refuses one over COMANDA_BACKOFFICE_MAX_BODY_BYTES with a
clear JSON 413, before reading it and before any check of who is asking (so an unauthenticated client
cannot make it read megabytes): announced by Content-Length, or sent chunked past the cap."""

from __future__ import annotations

import re
import socket
from typing import List, Tuple

import pytest

from comanda.settings import setting_int
from tests.helpers.routes import backoffice_routes

CAP = setting_int("COMANDA_BACKOFFICE_MAX_BODY_BYTES")
EXAMPLES = {r"v[0-9]+\.[0-9]+": "v21.0"}  # path patterns that are regular expressions


def example(parameter: re.Match) -> str:
    """A value for a path parameter: a number, the first of a regex's choices, else a word."""
    kind = (parameter.group(1) or ":str")[1:]
    if kind == "int":
        return "1"
    choices = re.fullmatch(r"\((\w+)(\|\w+)*\)", kind)
    return choices.group(1) if choices else EXAMPLES.get(kind, "x")


def body_routes() -> List[Tuple[str, str]]:
    """(method, a concrete path) for every route that takes a body, the simulator's included."""
    found = set()
    for method, pattern in backoffice_routes():
        if method in ("POST", "PUT", "PATCH"):  # Sanic reads no body on GET and DELETE
            found.add((method, "/" + re.sub(r"<[^:>]+(:[^>]+)?>", example, pattern)))
    return sorted(found)


def raw(port: int, request: bytes) -> Tuple[bytes, bytes]:
    """Send raw bytes; the status line and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        try:
            connection.sendall(request)
        except OSError:  # refused while we were still sending: the answer is waiting
            pass
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < 10:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


def test_there_are_routes_with_bodies_to_check():
    routes = body_routes()
    assert ("POST", "/webhooks/payments/x") in routes and ("POST", "/api/orders/1/status") in routes
    assert len(routes) >= 15, routes


def test_every_route_refuses_a_body_announced_over_its_cap(backoffice):
    port = int(backoffice.rsplit(":", 1)[1])
    for method, path in body_routes():
        status, body = raw(
            port,
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {CAP + 1}\r\n\r\n".encode(),
        )
        assert status == b"HTTP/1.1 413 Request Entity Too Large", (method, path, status)
        assert b'"error":"the request body is larger than' in body, (method, path, body)


@pytest.mark.parametrize("path", ["/webhooks/payments/sandbox", "/api/orders/1/status", "/console/login"])
def test_a_chunked_body_past_the_cap_is_cut_off_with_413(backoffice, path):
    port = int(backoffice.rsplit(":", 1)[1])
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(CAP // len(chunk) + 2))
    status, _ = raw(
        port,
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + chunks
        + b"0\r\n\r\n",
    )
    assert status == b"HTTP/1.1 413 Request Entity Too Large", status
