"""The stack as `make run` starts it: Rasa server, action server and back office (with the WhatsApp
simulator as Meta), on free ports and a fresh SQLite database, with the model from `make train`; and the bot's
answers over Rasa's REST channel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

from comanda.settings import SIMULATOR_WHATSAPP
from tests.helpers.net import free_port
from tests.helpers.paths import ROOT
from tests.helpers.smtp import Inbox
from tests.helpers.waiting import wait_for

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
        ceiling = max(timeout, float(os.environ.get("COMANDA_TEST_START_SECONDS", "0")))
        wait_for(lambda: self.ready() or self.proc.poll() is not None, ceiling, interval=1)
        if not self.ready():
            self.proc.kill()
            pytest.fail(f"stack did not start:\n{self.log_tail(4000)}", pytrace=False)

    def ready(self) -> bool:
        return "comanda: ready" in self.log_tail(2000)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(60)
        with open(self.log_path, "a") as log:
            log.write("\n--- stopped ---\n")
        return code

    def log_tail(self, chars: int) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text.split("--- stopped ---")[-1][-chars:]


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
