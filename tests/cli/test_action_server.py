"""The action server as `comanda run` starts it (`python -m cli.action_server`): on loopback, and deaf to
every caller without the shared secret the Rasa server sends (issue 10, item 2)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from tests.helpers.net import answers, free_port
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_for

TOKEN = "test-actions-token"
SOMEONE_ELSE = "centro:whatsapp:+5215512345678"


def listening_addresses(port: int) -> List[str]:
    """The IPv4/IPv6 addresses a local socket listens on for this port (Linux's /proc/net/tcp*)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, _remote, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


@pytest.fixture
def action_server(demo_sqlite, tmp_path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "actions.log"
    env = {**os.environ, "COMANDA_DATABASE_URL": demo_sqlite, "COMANDA_ACTIONS_TOKEN": TOKEN}
    env.pop("COMANDA_ACTIONS_HOST", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.action_server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    if not wait_for(lambda: proc.poll() is not None or answers(f"{base}/health"), 60) or proc.poll() is not None:
        proc.kill()
        pytest.fail(f"action server did not start:\n{log.read_text()[-3000:]}", pytrace=False)
    yield base
    proc.terminate()
    proc.wait(20)


def order_status_call(sender_id: str) -> Dict[str, Any]:
    """What an attacker posts: Rasa's action call for someone else's conversation."""
    return {
        "next_action": "action_order_status",
        "sender_id": sender_id,
        "tracker": {
            "sender_id": sender_id,
            "slots": {"language": "es"},
            "latest_message": {"text": "¿y mi pedido?", "intent": {"name": "order_status"}, "entities": []},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": None,
        },
        "domain": {},
        "version": "3.6.21",
    }


def test_it_listens_on_loopback_only(action_server):
    port = int(action_server.rsplit(":", 1)[1])
    assert listening_addresses(port) == ["0100007F"]  # 127.0.0.1, nothing else


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer not-the-token"}, 403), ({"Authorization": TOKEN}, 403)],
    ids=["no token", "wrong token", "token without Bearer"],
)
def test_a_call_without_the_shared_secret_is_refused(action_server, headers, status):
    call = order_status_call(SOMEONE_ELSE)
    answer = requests.post(f"{action_server}/webhook", json=call, headers=headers, timeout=10)
    assert answer.status_code == status
    assert "events" not in answer.json() and "responses" not in answer.json()
    assert requests.get(f"{action_server}/actions", headers=headers, timeout=10).status_code == status


def test_the_rasa_servers_call_runs_the_action(action_server):
    answer = requests.post(
        f"{action_server}/webhook",
        json=order_status_call(SOMEONE_ELSE),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"events", "responses"}
    assert requests.get(f"{action_server}/health", timeout=10).json() == {"status": "ok"}


def test_an_oversized_body_gets_413_before_it_is_read(action_server):
    """The Content-Length alone decides: 64 MiB announced, none of it sent, the answer comes at once."""
    port = int(action_server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {64 * 1024 * 1024}\r\n\r\n".encode()
            + json.dumps(order_status_call(SOMEONE_ELSE)).encode()
        )
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"


def test_comanda_shell_reuses_an_action_server_only_when_it_takes_this_checkouts_token(action_server, monkeypatch):
    from cli.runner import running_actions_url

    monkeypatch.setenv("COMANDA_ACTIONS_URL", f"{action_server}/webhook")
    monkeypatch.setenv("COMANDA_ACTIONS_TOKEN", TOKEN)
    assert running_actions_url() == f"{action_server}/webhook"
    monkeypatch.setenv("COMANDA_ACTIONS_TOKEN", "another-checkouts-token")
    assert running_actions_url() is None
    monkeypatch.setenv("COMANDA_ACTIONS_URL", f"http://127.0.0.1:{free_port()}/webhook")
    assert running_actions_url() is None
