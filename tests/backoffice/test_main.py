"""`python -m backoffice` as a command: a busy port is one clear line; the simulator can be left out."""

from __future__ import annotations

import socket
import subprocess
import sys

import requests

from tests.helpers.backoffice import backoffice_env, start, stop
from tests.helpers.net import free_port
from tests.helpers.paths import ROOT


def test_a_busy_port_is_one_line_and_status_2(database):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "backoffice", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**backoffice_env(database, port, "http://127.0.0.1:9"), "PYTHONPATH": str(ROOT)},
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} (backoffice) is already in use: stop what runs there or choose another port "
        "(COMANDA_BACKOFFICE_PORT)"
    ]


def test_without_the_simulator_only_health_answers(database, tmp_path):
    port = free_port()
    proc = start(
        port, {**backoffice_env(database, port, "http://127.0.0.1:9"), "COMANDA_SIMULATOR": "0"}, tmp_path / "bo.log"
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/health", timeout=5).json() == {"status": "ok"}
        assert requests.get(f"{base}/simulator", timeout=5).status_code == 404
        assert requests.post(f"{base}/simulator/graph/v21.0/106540352242922/messages", timeout=5).status_code == 404
    finally:
        stop(proc)
