"""The back office as `comanda run` starts it: a real subprocess on a free port, on a seeded SQLite file or the
test's database, with the simulator on and COMANDA_RASA_URL pointing where the test listens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from comanda.db import dispose_engines
from comanda.settings import SIMULATOR_WHATSAPP
from tests.helpers.databases import seed_demo
from tests.helpers.net import answers, free_port
from tests.helpers.paths import ROOT
from tests.helpers.receiver import Receiver
from tests.helpers.waiting import wait_for

CONSOLE_ENV = {
    "COMANDA_RASA_TOKEN": "console-rasa-token",
    "COMANDA_NOTIFY_POLL_SECONDS": "0.2",
    "COMANDA_CONSOLE_POLL_SECONDS": "0.2",
    "COMANDA_PAYMENT_SWEEP_SECONDS": "60",
}


def seeded_database(folder: Path) -> str:
    """A SQLite file in ``folder`` with the demo business: its URL."""
    url = seed_demo(f"sqlite:///{folder / 'comanda.db'}")
    dispose_engines()
    return url


def start(port: int, env: Dict[str, str], log: Path, host: str = "127.0.0.1") -> subprocess.Popen:
    """`python -m backoffice` as `comanda run` starts it, ready when /health answers 200."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "backoffice", "--port", str(port), "--host", host],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    health = f"http://127.0.0.1:{port}/health"
    if not wait_for(lambda: proc.poll() is not None or answers(health), 30) or proc.poll() is not None:
        proc.kill()
        pytest.fail(f"back office did not start:\n{log.read_text()[-3000:]}", pytrace=False)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def backoffice_env(database_url: str, port: int, rasa_url: str) -> Dict[str, str]:
    return {
        "COMANDA_DATABASE_URL": database_url,
        "COMANDA_RASA_URL": rasa_url,
        "COMANDA_SIMULATOR": "1",
        "COMANDA_BACKOFFICE_PORT": str(port),
        "COMANDA_BACKOFFICE_URL": f"http://127.0.0.1:{port}",
        "COMANDA_LOG_LEVEL": "WARNING",
        **SIMULATOR_WHATSAPP,
        "WHATSAPP_GRAPH_URL": f"http://127.0.0.1:{port}/simulator/graph/v21.0",
    }


class Offices:
    """Back offices on the test's database (several: replicas of one deployment), stopped at the end."""

    def __init__(self, database_url: str, receiver: Receiver, folder: Path, monkeypatch) -> None:
        self.database_url, self.receiver, self.folder = database_url, receiver, folder
        self.procs: List[subprocess.Popen] = []
        for name, value in CONSOLE_ENV.items():
            monkeypatch.setenv(name, value)

    def start(self, **extra: str) -> str:
        port = free_port()
        env = {**backoffice_env(self.database_url, port, self.receiver.url), **CONSOLE_ENV, **extra}
        self.procs.append(start(port, env, self.folder / f"backoffice-{port}.log"))
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)
