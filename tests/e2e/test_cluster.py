"""`comanda run-cluster` end to end: two Rasa servers, two action servers and two back offices behind
HAProxy, on a PostgreSQL database of their own and Redis. The simulator's customers order and pay
through the balancer at the same time; every message is answered once and in order, and both replicas
of each kind did part of the work (HAProxy's own counters say so). Small on purpose: the machine is shared.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from comanda import models as m
from comanda.db import dispose_engines, new_session
from tests.helpers.net import free_port
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_for

CENTRO = "106540352242922"
PG_BASE = os.environ.get("COMANDA_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("COMANDA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Cluster:
    def __init__(self, workdir: Path) -> None:
        self.database = f"comanda_cluster_{uuid.uuid4().hex[:10]}"
        self.db_url = make_url(PG_BASE).set(database=self.database).render_as_string(hide_password=False)
        self.ports = {"rasa": free_port(), "actions": free_port(), "backoffice": free_port()}
        self.backoffice = f"http://127.0.0.1:{self.ports['backoffice']}"
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
        # two Rasa servers load their models at once on a busy machine
        wait_for(lambda: self.ready() or self.proc.poll() is not None, timeout=900, interval=1)
        if not self.ready():
            self.proc.kill()
            pytest.fail(f"cluster did not start:\n{self.log()[-6000:]}", pytrace=False)

    def ready(self) -> bool:
        return "comanda: cluster ready" in self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(90)

    def sessions(self) -> Dict[str, int]:
        """Requests each replica was given, from HAProxy's admin socket (`show stat`, column stot)."""
        path = ROOT / "var" / "cluster" / str(self.ports["rasa"]) / "haproxy.sock"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(b"show stat\n")
            raw = b"".join(iter(lambda: sock.recv(65536), b""))
        rows = csv.DictReader(io.StringIO(raw.decode().lstrip("# ")))
        return {row["svname"]: int(row["stot"]) for row in rows if row["svname"] not in ("FRONTEND", "BACKEND")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    if not (ROOT / "models" / "comanda.tar.gz").exists():
        pytest.fail("no trained model: run `make train` first", pytrace=False)
    found = Cluster(tmp_path_factory.mktemp("cluster"))
    before = os.environ.get("COMANDA_DATABASE_URL")  # the session's stack may be running on its own database
    os.environ["COMANDA_DATABASE_URL"] = found.db_url
    dispose_engines()
    try:
        found.start()
        yield found
    finally:
        found.stop()
        if before is None:
            del os.environ["COMANDA_DATABASE_URL"]
        else:
            os.environ["COMANDA_DATABASE_URL"] = before
        dispose_engines()
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT", future=True)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{found.database}" WITH (FORCE)'))
        admin.dispose()


class Customer:
    """A simulator customer: writes or taps, then waits until the bot has answered and sent everything."""

    def __init__(self, cluster: Cluster, wa_id: str) -> None:
        self.cluster, self.wa_id = cluster, wa_id
        self.conversation = f"centro:whatsapp:+52{wa_id[3:]}"
        self.sent: List[str] = []

    def says(self, message: str) -> List[Dict[str, Any]]:
        return self._send({"type": "text", "text": message})

    def taps(self, record: Dict[str, Any], title: str) -> List[Dict[str, Any]]:
        interactive = record["message"]["interactive"]
        if interactive["type"] == "button":
            kind, choices = "button_reply", [b["reply"] for b in interactive["action"]["buttons"]]
        else:
            kind = "list_reply"
            choices = [row for section in interactive["action"]["sections"] for row in section["rows"]]
        [choice] = [c for c in choices if c["title"] == title]
        return self._send({"type": kind, "context_id": record["id"], kind: {"id": choice["id"], "title": title}})

    def _send(self, message: Dict[str, Any]) -> List[Dict[str, Any]]:
        before = len(self.replies())
        answer = requests.post(
            f"{self.cluster.backoffice}/simulator/api/send",
            json={"phone_number_id": CENTRO, "wa_id": self.wa_id, "name": "Cluster", **message},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.json()["status"] == 200, answer.text
        self.sent.append(answer.json()["id"])
        assert wait_for(lambda: self._answered(answer.json()["id"]), timeout=180), f"no answer to {message}"
        return self.replies()[before:]

    def _answered(self, message_id: str) -> bool:
        """The message is processed and every reply queued for the conversation has reached the Graph API."""
        with new_session() as session:
            inbound = session.execute(
                select(m.InboundMessage.status).where(m.InboundMessage.external_id == message_id)
            ).scalar_one_or_none()
            pending = session.execute(
                select(m.OutboundMessage.id).where(
                    m.OutboundMessage.conversation_id == self.conversation,
                    m.OutboundMessage.status.in_(("queued", "sending")),
                )
            ).first()
        return inbound == "processed" and pending is None

    def replies(self) -> List[Dict[str, Any]]:
        answer = requests.get(
            f"{self.cluster.backoffice}/simulator/api/messages",
            params={"phone_number_id": CENTRO, "wa_id": self.wa_id},
            timeout=30,
        )
        return sorted((r for r in answer.json()["messages"] if r["direction"] == "out"), key=lambda r: r["n"])


def body(record: Dict[str, Any]) -> str:
    message = record["message"]
    return message["text"]["body"] if message["type"] == "text" else message["interactive"]["body"]["text"]


def orders_and_pays(customer: Customer) -> str:
    """Greeting, order, cart edit, checkout for pickup by card, payment on the sandbox page."""
    customer.says("hola")
    customer.says("me das 2 de pastor y una horchata porfa")
    customer.says("quítale la horchata")
    [question] = customer.says("es todo")
    [payment] = customer.taps(question, "Paso a recoger")
    [summary] = customer.taps(payment, "Tarjeta")
    [link] = customer.taps(summary, "Confirmar")
    url = link["message"]["interactive"]["action"]["parameters"]["url"]
    assert requests.get(url, timeout=30).status_code == 200
    assert requests.post(f"{url}/pay", timeout=30).status_code == 200
    paid = wait_for(lambda: next((r for r in customer.replies() if "¡Pagado!" in body(r)), None), timeout=180)
    assert paid, [body(r) for r in customer.replies()]
    return body(paid)


def test_customers_are_served_through_two_replicas_of_everything_once_and_in_order(cluster):
    customers = [Customer(cluster, "52155" + str(uuid.uuid4().int)[:8]) for _ in range(3)]
    with ThreadPoolExecutor(len(customers)) as pool:
        paid = list(pool.map(orders_and_pays, customers))
    assert all(text.startswith("✅ ¡Pagado! Tu número es") for text in paid), paid

    with new_session() as session:
        for customer in customers:
            [order] = session.execute(select(m.Order).where(m.Order.conversation_id == customer.conversation)).scalars()
            assert (order.status, order.payment_status, order.total) == ("received", "paid", 44)
            payments = session.execute(select(m.Payment).where(m.Payment.order_id == order.id)).scalars().all()
            assert [p.status for p in payments] == ["paid"]
            # every message was processed once, by one replica
            inbound = session.execute(
                select(m.InboundMessage.external_id, m.InboundMessage.status, m.InboundMessage.attempts)
                .where(m.InboundMessage.conversation_id == customer.conversation)
                .order_by(m.InboundMessage.id)
            ).all()
            assert [(i.external_id, i.status, i.attempts) for i in inbound] == [
                (sent, "processed", 1) for sent in customer.sent
            ]
            # Rasa's tracker (shared by both Rasa servers) has each message once, in the order it was sent
            said = [
                json.loads(data).get("message_id")
                for (data,) in session.execute(
                    text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"),
                    {"s": customer.conversation},
                )
            ]
            assert [i for i in said if str(i).startswith("wamid.")] == customer.sent  # (not the external events)
            # the Graph API got every outbox row once, in the order the bot wrote them
            outbox = session.execute(
                select(m.OutboundMessage.external_id, m.OutboundMessage.status)
                .where(m.OutboundMessage.conversation_id == customer.conversation)
                .order_by(m.OutboundMessage.id)
            ).all()
            assert all(status in ("sent", "delivered", "read") for _, status in outbox)
            assert [row.external_id for row in outbox] == [r["id"] for r in customer.replies()]

    served = cluster.sessions()
    for replica in ("rasa-1", "rasa-2", "actions-1", "actions-2", "backoffice-1", "backoffice-2"):
        assert served[replica] > 0, served
