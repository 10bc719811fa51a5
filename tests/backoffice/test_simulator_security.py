"""The simulator can speak as any customer and read every chat (issue 10, item 1): it never runs beside a
real Meta app's credentials, never signs with a real secret, and answers only this machine, directly."""

from __future__ import annotations

import socket
from typing import Dict

import pytest
import requests

from backoffice.simulator import meta
from backoffice.simulator.guard import is_local_caller
from comanda.settings import SIMULATOR_WHATSAPP
from tests.helpers.backoffice import backoffice_env, start, stop
from tests.helpers.graph import APP_SECRET
from tests.helpers.net import free_port
from tests.helpers.simulator import CENTRO

# Every kind of simulator door: the page, its assets, the control and read APIs, the fake Graph API.
DOORS = [
    ("GET", "/simulator"),
    ("GET", "/simulator/static/simulator.js"),
    ("GET", "/simulator/api/sent"),
    ("GET", f"/simulator/api/messages?phone_number_id={CENTRO}&wa_id=5215512345678"),
    ("POST", "/simulator/api/send"),
    ("POST", "/simulator/api/faults"),
    ("DELETE", "/simulator/api/faults"),
    ("POST", f"/simulator/graph/v21.0/{CENTRO}/messages"),
    ("GET", "/simulator/media/1234"),
]
FORGED = {"wa_id": "5215512345678", "type": "text", "text": "cancela mi pedido", "phone_number_id": CENTRO}


def non_loopback_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            pytest.fail("this test needs a network interface besides loopback", pytrace=False)
        return probe.getsockname()[0]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "203.0.113.7"},
        {"Forwarded": "for=203.0.113.7;proto=https"},
        {"X-Real-IP": "203.0.113.7"},
        {"x-forwarded-for": "127.0.0.1"},  # even a proxy that claims to forward this machine
    ],
    ids=["x-forwarded-for", "forwarded", "x-real-ip", "lowercase"],
)
def test_requests_through_a_proxy_are_refused(backoffice, receiver, headers):
    for method, path in DOORS:
        answer = requests.request(method, f"{backoffice}{path}", json=FORGED, headers=headers, timeout=10)
        assert answer.status_code == 403, (method, path, answer.status_code)
    assert not forged_posts(receiver)  # nothing reached the connector


def forged_posts(receiver) -> list:
    with receiver.lock:
        return [post for post in receiver.posts if FORGED["text"].encode() in post.body]


def test_direct_local_callers_are_served(backoffice):
    assert requests.get(f"{backoffice}/simulator", timeout=10).status_code == 200
    assert requests.get(f"{backoffice}/simulator/api/sent", timeout=10).status_code == 200


def test_callers_on_another_machine_are_refused(database, receiver, tmp_path):
    """The back office bound to every interface (as a careless deployment would) still keeps the simulator
    to this machine: a caller reaching it over the network gets 403 on every door."""
    address, port = non_loopback_address(), free_port()
    proc = start(port, backoffice_env(database, port, receiver.url), tmp_path / "bo.log", host="0.0.0.0")
    try:
        for method, path in DOORS:
            answer = requests.request(method, f"http://{address}:{port}{path}", json=FORGED, timeout=10)
            assert answer.status_code == 403, (method, path, answer.status_code)
        assert not forged_posts(receiver)
        assert requests.get(f"http://{address}:{port}/health", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/simulator", timeout=10).status_code == 200
    finally:
        stop(proc)


@pytest.mark.parametrize(
    "real", [{"WHATSAPP_APP_SECRET": "0123456789abcdef"}, {"WHATSAPP_ACCESS_TOKEN": "EAAGm0PX4ZCpsBA"}], ids=str
)
def test_with_real_credentials_the_simulator_is_off_and_says_so(database, tmp_path, real: Dict[str, str]):
    port, log = free_port(), tmp_path / "bo.log"
    proc = start(port, {**backoffice_env(database, port, "http://127.0.0.1:9"), **real}, log)
    try:
        base = f"http://127.0.0.1:{port}"
        forged = requests.post(f"{base}/simulator/api/send", json=FORGED, timeout=10)
        assert forged.status_code == 404
        assert requests.get(f"{base}/simulator", timeout=10).status_code == 404
        assert requests.get(f"{base}/health", timeout=10).status_code == 200
    finally:
        stop(proc)
    [line] = [line for line in log.read_text().splitlines() if "WHATSAPP SIMULATOR OFF" in line]
    assert "ERROR" in line and next(iter(real)) in line


def test_the_simulator_signs_only_with_the_demo_secret(monkeypatch):
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "a-real-apps-secret")
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "a-real-apps-token")
    assert meta.credential("WHATSAPP_APP_SECRET") == APP_SECRET == SIMULATOR_WHATSAPP["WHATSAPP_APP_SECRET"]
    assert meta.credential("WHATSAPP_ACCESS_TOKEN") == SIMULATOR_WHATSAPP["WHATSAPP_ACCESS_TOKEN"]


@pytest.mark.parametrize(
    ("peer", "headers", "local"),
    [
        ("127.0.0.1", [], True),
        ("127.8.9.10", ["Content-Type"], True),
        ("::1", [], True),
        ("::ffff:127.0.0.1", [], True),
        ("192.0.2.2", [], False),
        ("::ffff:192.0.2.2", [], False),
        ("fd00::2", [], False),
        ("", [], False),
        ("127.0.0.1", ["X-Forwarded-For"], False),
        ("127.0.0.1", ["FORWARDED"], False),
        ("127.0.0.1", ["x-real-ip"], False),
        ("127.0.0.1", ["X-Forwarded-Host"], False),
    ],
)
def test_who_counts_as_a_local_caller(peer, headers, local):
    assert is_local_caller(peer, headers) is local
