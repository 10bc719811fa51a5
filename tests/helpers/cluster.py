"""`comanda run-cluster` under test (tests/e2e/test_cluster.py, tests/chaos/test_replicas.py): two replicas of
every process behind HAProxy, on free ports, a PostgreSQL database of its own and Redis. A test can kill one
replica (kill -9, found by its port among the cluster's children), read what HAProxy thinks of each replica
(its admin socket) and speak to the bot as WhatsApp customers through the balancer."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from comanda import models as m
from comanda.db import dispose_engines, new_session
from comanda.settings import SIMULATOR_WHATSAPP
from tests.helpers.net import free_port
from tests.helpers.paths import ROOT
from tests.helpers.simulator import bot_messages, conversation_id, deliver_as_meta, new_wa_id, text_message, webhook
from tests.helpers.waiting import wait_for

PG_BASE = os.environ.get("COMANDA_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("COMANDA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNSENT = ("queued", "sending")


class Cluster:
    def __init__(self, workdir: Path, **settings: str) -> None:
        self.database = f"comanda_cluster_{uuid.uuid4().hex[:10]}"
        self.db_url = make_url(PG_BASE).set(database=self.database).render_as_string(hide_password=False)
        self.ports = {"rasa": free_port(), "actions": free_port(), "backoffice": free_port()}
        self.rasa = f"http://127.0.0.1:{self.ports['rasa']}"
        self.backoffice = f"http://127.0.0.1:{self.ports['backoffice']}"
        self.app_secret = SIMULATOR_WHATSAPP["WHATSAPP_APP_SECRET"]
        self.log_path = workdir / "cluster.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "COMANDA_"))},
            "COMANDA_CLUSTER_DATABASE_URL": self.db_url,
            "COMANDA_CLUSTER_REDIS_URL": REDIS_URL,
            "COMANDA_RASA_TOKEN": "cluster-test-token",
            "COMANDA_SIMULATOR": "1",
            "COMANDA_RASA_PORT": str(self.ports["rasa"]),
            "COMANDA_ACTIONS_PORT": str(self.ports["actions"]),
            "COMANDA_BACKOFFICE_PORT": str(self.ports["backoffice"]),
            **settings,
        }
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "python"), "-m", "cli", "run-cluster"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 900  # two Rasa servers load their models at once on a busy machine
        while "comanda: cluster ready" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"cluster did not start:\n{self.log()[-6000:]}", pytrace=False)
            time.sleep(1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(90)

    # --- the replicas ------------------------------------------------------------------------------

    def port(self, replica: str) -> int:
        """The port the cluster gave a replica ("rasa-2"), as it announced it."""
        found = re.search(rf"comanda: {re.escape(replica)} on port (\d+)", self.log())
        assert found, f"no {replica} in the cluster's log"
        return int(found.group(1))

    def pid(self, replica: str) -> Optional[int]:
        """The running process of a replica: the cluster's child serving its port (None between a death and
        the restart)."""
        assert self.proc is not None
        wanted = ["--port", str(self.port(replica))]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if parent == self.proc.pid and any(argv[i : i + 2] == wanted for i in range(len(argv) - 1)):
                return int(entry.name)
        return None

    def kill(self, replica: str, pid: Optional[int] = None) -> int:
        """kill -9 of one replica (``pid``: the process the caller chose it by), as a crash would; its pid."""
        pid = pid or self.pid(replica)
        assert pid, f"{replica} is not running"
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: self.pid(replica) != pid, timeout=30), f"{replica} ({pid}) outlived kill -9"
        return pid

    def starts(self, replica: str) -> int:
        """How many times the replica got ready (the cluster starts a dead one again)."""
        return self.log().count(f"comanda: {replica} ready after")

    def stats(self) -> Dict[str, Dict[str, str]]:
        """HAProxy's `show stat`, one row per server of the replicas' backends (not the simulator's)."""
        path = ROOT / "var" / "cluster" / str(self.ports["rasa"]) / "haproxy.sock"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(b"show stat\n")
            raw = b"".join(iter(lambda: sock.recv(65536), b""))
        rows = csv.DictReader(io.StringIO(raw.decode().lstrip("# ")))
        return {
            row["svname"]: row
            for row in rows
            if row["svname"] not in ("FRONTEND", "BACKEND") and row["pxname"] != "simulator"
        }

    def sessions(self) -> Dict[str, int]:
        """Requests each replica was given (HAProxy's column stot)."""
        return {name: int(row["stot"]) for name, row in self.stats().items()}


@contextmanager
def running_cluster(workdir: Path, **settings: str) -> Iterator[Cluster]:
    """A started cluster (``settings`` for every process) on a database of its own, which this process reads
    too (COMANDA_DATABASE_URL, for ``new_session``); stopped and its database dropped afterwards."""
    if not (ROOT / "models" / "comanda.tar.gz").exists():
        pytest.fail("no trained model: run `make train` first", pytrace=False)
    found = Cluster(workdir, **settings)
    # the session's stack may be running on its own database: pytest's MonkeyPatch gives it back
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("COMANDA_DATABASE_URL", found.db_url)
            dispose_engines()
            try:
                found.start()
                yield found
            finally:
                found.stop()
    finally:
        dispose_engines()
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT", future=True)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{found.database}" WITH (FORCE)'))
        admin.dispose()


# --- customers -----------------------------------------------------------------------------------


def reply_message(wa_id: str, record: Dict[str, Any], title: str) -> Dict[str, Any]:
    """The customer's tap on the button or list row titled ``title`` of a bot message, as WhatsApp posts it."""
    interactive = record["message"]["interactive"]
    if interactive["type"] == "button":
        kind, choices = "button_reply", [b["reply"] for b in interactive["action"]["buttons"]]
    else:
        kind = "list_reply"
        choices = [row for section in interactive["action"]["sections"] for row in section["rows"]]
    [choice] = [c for c in choices if c["title"] == title]
    return {
        "context": {"id": record["id"]},
        "from": wa_id,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "interactive",
        "interactive": {"type": kind, kind: {"id": choice["id"], "title": choice["title"]}},
    }


class Customer:
    """A WhatsApp customer of the Centro branch, speaking through the balancer as Meta delivers (signed
    webhooks, posted again until acknowledged); a turn returns once the bot answered and sent everything."""

    def __init__(self, cluster: Cluster, wa_id: Optional[str] = None) -> None:
        self.cluster = cluster
        self.wa_id = wa_id or new_wa_id()
        self.conversation = conversation_id(self.wa_id)
        self.sent: List[str] = []  # WhatsApp's ids of what the customer said, in order

    def says(self, message: str) -> List[Dict[str, Any]]:
        return self._turn(text_message(self.wa_id, message))

    def taps(self, record: Dict[str, Any], title: str) -> List[Dict[str, Any]]:
        return self._turn(reply_message(self.wa_id, record, title))

    def posts(self, message: Dict[str, Any]) -> str:
        """Send one message without waiting for the answer; its id."""
        self.sent.append(message["id"])
        deliver_as_meta(
            self.cluster, webhook([message], contacts=[{"profile": {"name": "Cluster"}, "wa_id": self.wa_id}])
        )
        return message["id"]

    def _turn(self, message: Dict[str, Any]) -> List[Dict[str, Any]]:
        before = len(self.replies())
        message_id = self.posts(message)
        assert wait_for(lambda: self.answered(message_id), timeout=180), f"no answer to {message}"
        return self.replies()[before:]

    def answered(self, message_id: str) -> bool:
        """The message is processed and every reply queued for the conversation has reached the Graph API."""
        with new_session() as session:
            inbound = session.execute(
                select(m.InboundMessage.status).where(m.InboundMessage.external_id == message_id)
            ).scalar_one_or_none()
            pending = session.execute(
                select(m.OutboundMessage.id).where(
                    m.OutboundMessage.conversation_id == self.conversation, m.OutboundMessage.status.in_(UNSENT)
                )
            ).first()
        return inbound == "processed" and pending is None

    def replies(self) -> List[Dict[str, Any]]:
        """What reached the fake Graph API for this customer, in the order it got there."""
        return bot_messages(self.cluster, self.wa_id)


def body(record: Dict[str, Any]) -> str:
    message = record["message"]
    return message["text"]["body"] if message["type"] == "text" else message["interactive"]["body"]["text"]


def pay(url: str, deadline: float = 120) -> None:
    """The customer opens the payment link and presses Pay, pressing again while the page fails (a back office
    that died under the press): the sandbox books one charge, whatever the presses."""
    until = time.monotonic() + deadline
    while True:
        try:
            if requests.get(url, timeout=30).status_code == 200 and requests.post(f"{url}/pay", timeout=30).ok:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < until, f"the payment page {url} never took the payment"
        time.sleep(0.5)


def orders_and_pays(customer: Customer) -> str:
    """Greeting, order, cart edit, checkout for pickup by card, payment on the sandbox page: the "¡Pagado!"."""
    customer.says("hola")
    customer.says("me das 2 de pastor y una horchata porfa")
    customer.says("quítale la horchata")
    [question] = customer.says("es todo")
    [payment] = customer.taps(question, "Paso a recoger")
    [summary] = customer.taps(payment, "Tarjeta")
    [link] = customer.taps(summary, "Confirmar")
    pay(link["message"]["interactive"]["action"]["parameters"]["url"])
    paid = wait_for(lambda: next((r for r in customer.replies() if "¡Pagado!" in body(r)), None), timeout=180)
    assert paid, [body(r) for r in customer.replies()]
    return body(paid)


def tracker_messages(session: Any, conversation: str) -> List[str]:
    """The WhatsApp message ids of the user turns in Rasa's tracker (shared by every Rasa server), in order."""
    said = [
        json.loads(data).get("message_id")
        for (data,) in session.execute(
            text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"), {"s": conversation}
        )
    ]
    return [i for i in said if str(i).startswith("wamid.")]  # (not the external events)
