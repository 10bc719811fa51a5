"""The stack as `make run` starts it: Rasa server, action server and back office (with the WhatsApp
simulator as Meta), on free ports and a fresh SQLite database, with the model from `make train`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from comanda.db import dispose_engines, transaction
from comanda.migrate import upgrade
from comanda.services import staff
from comanda.services.audit import Actor
from comanda.services.catalog_loader import load_catalog, read_catalog
from comanda.settings import SIMULATOR_WHATSAPP
from tests.conftest import free_port
from tests.helpers.smtp import Inbox, smtp_server

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-test-token"


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.db_url = f"sqlite:///{workdir / 'comanda.db'}"
        self.ports = {"rasa": free_port(), "actions": free_port(), "backoffice": free_port()}
        self.rasa = f"http://127.0.0.1:{self.ports['rasa']}"
        self.backoffice = f"http://127.0.0.1:{self.ports['backoffice']}"
        self.app_secret = SIMULATOR_WHATSAPP["WHATSAPP_APP_SECRET"]
        self.verify_token = SIMULATOR_WHATSAPP["WHATSAPP_VERIFY_TOKEN"]
        self.log_path = workdir / "stack.log"
        self.proc: Optional[subprocess.Popen] = None
        self.staff_token = ""  # a personal token of the demo's staff (the order-queue API)
        self.mail = Inbox()  # what the stack e-mails (invoices): ``use_smtp`` before ``start``
        self.env: Dict[str, str] = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WHATSAPP_")},
            "COMANDA_DATABASE_URL": self.db_url,
            "COMANDA_RASA_TOKEN": TOKEN,
            "COMANDA_SIMULATOR": "1",
            "COMANDA_NOTIFY_POLL_SECONDS": "1",
            "COMANDA_RASA_PORT": str(self.ports["rasa"]),
            "COMANDA_ACTIONS_PORT": str(self.ports["actions"]),
            "COMANDA_BACKOFFICE_PORT": str(self.ports["backoffice"]),
        }

    def use_smtp(self, mail: Inbox, port: int) -> None:
        self.mail = mail
        self.env.update(
            COMANDA_SMTP_HOST="127.0.0.1",
            COMANDA_SMTP_PORT=str(port),
            COMANDA_SMTP_SECURITY="none",
            COMANDA_SMTP_FROM="facturas@cafe-esquina.example",
        )

    def start(self, timeout: float = 600) -> None:
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "run"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        # a ceiling: model loading takes minutes on a loaded machine (COMANDA_TEST_START_SECONDS raises it)
        deadline = time.monotonic() + max(timeout, float(os.environ.get("COMANDA_TEST_START_SECONDS", "0")))
        while "comanda: ready" not in self.log_tail(2000):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"stack did not start:\n{self.log_tail(4000)}", pytrace=False)
            time.sleep(1)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(60)
        with open(self.log_path, "a") as log:
            log.write("\n--- stopped ---\n")
        return code

    def log_tail(self, chars: int) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text.split("--- stopped ---")[-1][-chars:]


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    if not (ROOT / "models" / "comanda.tar.gz").exists():
        pytest.fail("no trained model: run `make train` first", pytrace=False)
    stack = Stack(tmp_path_factory.mktemp("stack"))
    with smtp_server() as mail:
        stack.use_smtp(*mail)
        os.environ["COMANDA_DATABASE_URL"] = stack.db_url
        upgrade(stack.db_url)
        with transaction() as session:
            load_catalog(session, read_catalog(ROOT / "data" / "demo" / "catalog.yml"))
            user, _ = staff.add_staff(
                session, Actor("e2e"), "counter@cafe-esquina.example", "Counter", "staff", ["centro"]
            )
            stack.staff_token = staff.create_token(session, Actor("e2e"), user, "e2e")[1]
        stack.start()
        yield stack
        if stack.proc.poll() is None:
            stack.stop()
    del os.environ["COMANDA_DATABASE_URL"]
    dispose_engines()


def wait_for(predicate, timeout: float = 30, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def rest(stack: Stack, sender: str, message: str) -> List[Dict[str, Any]]:
    """The bot's answers over the REST channel: text, buttons and custom messages as Rasa sends them."""
    reply = requests.post(
        f"{stack.rasa}/webhooks/rest/webhook",
        json={"sender": sender, "message": message},
        params={"token": TOKEN},
        timeout=60,
    )
    reply.raise_for_status()
    return reply.json()


def say_rest(stack: Stack, sender: str, message: str) -> str:
    return "\n".join(r.get("text", "") for r in rest(stack, sender, message))
