"""The stack as three separate processes (`comanda run --only rasa|actions|backoffice`), so that a test can
kill -9 one of them at a chosen moment and start it again, as a crash and a supervisor restart would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from comanda.enums import InboxStatus
from comanda.settings import SIMULATOR_WHATSAPP
from tests.helpers.net import answers, free_port
from tests.helpers.paths import ROOT
from tests.helpers.simulator import answered_and_sent
from tests.helpers.waiting import wait_for

READY_PATHS = {"rasa": "/", "actions": "/health", "backoffice": "/health"}
TOKEN = "crash-test-token"


class Processes:
    def __init__(self, workdir: Path, db_url: Optional[str] = None, **settings: str) -> None:
        self.db_url = db_url or f"sqlite:///{workdir / 'comanda.db'}"
        self.ports = {name: free_port() for name in READY_PATHS}
        self.rasa = f"http://127.0.0.1:{self.ports['rasa']}"
        self.backoffice = f"http://127.0.0.1:{self.ports['backoffice']}"
        self.app_secret = SIMULATOR_WHATSAPP["WHATSAPP_APP_SECRET"]
        self.workdir = workdir
        self.procs: Dict[str, subprocess.Popen] = {}
        self.env: Dict[str, str] = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WHATSAPP_")},
            "COMANDA_DATABASE_URL": self.db_url,
            "COMANDA_RASA_TOKEN": TOKEN,
            "COMANDA_SIMULATOR": "1",
            "COMANDA_NOTIFY_POLL_SECONDS": "1",
            "COMANDA_RASA_PORT": str(self.ports["rasa"]),
            "COMANDA_ACTIONS_PORT": str(self.ports["actions"]),
            "COMANDA_BACKOFFICE_PORT": str(self.ports["backoffice"]),
            **settings,
        }

    def start(self, name: str, timeout: float = 300, **settings: str) -> None:
        """Start one process (``settings`` only for this start) and wait until it answers."""
        log = open(self.workdir / f"{name}.log", "a")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "cli", "run", "--only", name],
            cwd=ROOT,
            env={**self.env, **settings},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes the runner and the server
        )
        wait_for(lambda: self.ready(name) or self.procs[name].poll() is not None, timeout, interval=0.5)
        if not self.ready(name):
            self.kill(name)
            pytest.fail(f"{name} did not start:\n{self.log_tail(name)}", pytrace=False)

    def ready(self, name: str) -> bool:
        return answers(f"http://127.0.0.1:{self.ports[name]}{READY_PATHS[name]}", timeout=2)

    def kill(self, name: str) -> None:
        """kill -9 of the process and its server, as a crash would; returns once its port is free."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(30)
        wait_for(lambda: not self.listening(name), timeout=30)

    def listening(self, name: str) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.ports[name])) == 0

    def wait_dead(self, name: str, timeout: float = 120) -> Optional[int]:
        """Wait for a process that is to kill itself (COMANDA_CRASH_AT); its runner's exit code."""
        try:
            code = self.procs[name].wait(timeout)
        finally:
            self.kill(name)
        return code

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def settled(stack: Processes, customers: List[str]) -> bool:
    """Every message of these customers closed (processed or parked), and nothing of theirs queued or being sent."""
    return answered_and_sent(customers, stack.db_url, closed=(InboxStatus.PROCESSED, InboxStatus.PARKED))
