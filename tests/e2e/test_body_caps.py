"""Every route of the Rasa server and the action server that takes a body refuses one over its cap
(COMANDA_RASA_MAX_BODY_BYTES, COMANDA_ACTIONS_MAX_BODY_BYTES) with 413 before reading it (the action
server turns a caller without its token away first, reading nothing either). The back office's routes
are checked in tests/backoffice/test_body_caps.py."""

from __future__ import annotations

import socket

import pytest

from comanda.settings import setting, setting_int
from tests.helpers.stack import Stack

# Rasa 3.6's HTTP API (rasa/server.py: every POST and PUT) and the channels credentials.yml turns on.
RASA_ROUTES = [
    ("POST", "/conversations/x/tracker/events"),
    ("PUT", "/conversations/x/tracker/events"),
    ("POST", "/conversations/x/execute"),
    ("POST", "/conversations/x/trigger_intent"),
    ("POST", "/conversations/x/predict"),
    ("POST", "/conversations/x/messages"),
    ("POST", "/model/train"),
    ("POST", "/model/test/stories"),
    ("POST", "/model/test/intents"),
    ("POST", "/model/predict"),
    ("POST", "/model/parse"),
    ("PUT", "/model"),
    ("POST", "/webhooks/rest/webhook"),
    ("POST", "/webhooks/whatsapp/webhook"),
]


def status_for_oversized(port: int, method: str, path: str, cap: int, headers: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {cap + 1}\r\n\r\n".encode()
        )
        return connection.recv(4096).split(b"\r\n", 1)[0]


@pytest.mark.parametrize("method,path", RASA_ROUTES)
def test_the_rasa_server_refuses_an_oversized_body_on_every_route(stack: Stack, method, path):
    cap = setting_int("COMANDA_RASA_MAX_BODY_BYTES")
    assert status_for_oversized(stack.ports["rasa"], method, path, cap) == b"HTTP/1.1 413 Request Entity Too Large"


def test_the_action_server_refuses_an_oversized_body(stack: Stack):
    """Without its token the caller is refused at once (401, nothing of the body read); with it, 413."""
    cap, port = setting_int("COMANDA_ACTIONS_MAX_BODY_BYTES"), stack.ports["actions"]
    assert status_for_oversized(port, "POST", "/webhook", cap) == b"HTTP/1.1 401 Unauthorized"
    token = f"Authorization: Bearer {setting('COMANDA_ACTIONS_TOKEN')}\r\n"
    assert status_for_oversized(port, "POST", "/webhook", cap, token) == b"HTTP/1.1 413 Request Entity Too Large"
