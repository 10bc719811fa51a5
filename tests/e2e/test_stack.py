"""The stack as `make run` starts it (Rasa server + action server on one database), over HTTP.

Uses the model trained by `make train`; starts `comanda run` on free ports with a fresh database.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy import select, text

from comanda import models as m
from comanda.db import dispose_engines, get_engine, transaction
from comanda.migrate import upgrade
from comanda.services.catalog_loader import load_catalog, read_catalog

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not (ROOT / "models" / "comanda.tar.gz").exists():
        pytest.fail("no trained model: run `make train` first", pytrace=False)
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'comanda.db'}"
    os.environ["COMANDA_DATABASE_URL"] = url
    upgrade(url)
    with transaction() as session:
        load_catalog(session, read_catalog(ROOT / "data" / "demo" / "catalog.yml"))
    rasa_port, actions_port = free_port(), free_port()
    env = {**os.environ, "COMANDA_RASA_PORT": str(rasa_port), "COMANDA_ACTIONS_PORT": str(actions_port),
           "COMANDA_RASA_TOKEN": TOKEN}
    log = open(tmp_path_factory.mktemp("log") / "stack.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "comanda.cli", "run"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{rasa_port}"
    deadline = time.monotonic() + 240
    while True:
        log.seek(0)
        if "comanda: ready" in log.read():
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            proc.kill()
            pytest.fail(f"stack did not start:\n{log.read()[-3000:]}", pytrace=False)
        time.sleep(1)
    yield {"base": base, "proc": proc, "ports": (rasa_port, actions_port), "log": log}
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    del os.environ["COMANDA_DATABASE_URL"]
    dispose_engines()


def say(stack, sender: str, message: str) -> str:
    reply = requests.post(f"{stack['base']}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                          timeout=60)
    reply.raise_for_status()
    return "\n".join(r.get("text", "") for r in reply.json())


def test_spanish_menu_from_the_database(stack):
    answer = say(stack, "e2e-es", "hola, ¿qué tienen?")
    assert answer.startswith("Esto tenemos hoy en Café Esquina Centro")
    assert "• Té de taro con leche — $75.00" in answer and "• Taco al pastor — $22.00" in answer
    assert "Taro milk tea" not in answer


def test_english_menu_from_the_database(stack):
    answer = say(stack, "e2e-en", "hi, what's on the menu?")
    assert answer.startswith("Here's what we have today at Café Esquina Centro")
    assert "• Taro milk tea — $75.00" in answer and "Té de taro" not in answer


def test_a_price_changed_in_the_database_shows_at_once(stack):
    with transaction() as session:
        session.execute(select(m.Product).where(m.Product.sku == "CONCHA")).scalar_one().price = Decimal("21.50")
    assert "• Concha — $21.50" in say(stack, "e2e-price", "que tienen de comer?")


def test_faq_answers_from_the_store_in_the_customers_language(stack):
    assert "Mon–Fri 07:30–21:00" in say(stack, "e2e-faq", "what time do you open?")
    assert "Av. 5 de Mayo 32" in say(stack, "e2e-faq-es", "donde estan ubicados?")


def test_conversations_are_kept_in_the_same_database(stack):
    say(stack, "e2e-tracker", "hola")
    with get_engine().connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM events WHERE sender_id = 'e2e-tracker'")).scalar()
    assert count > 0


def test_http_api_needs_the_token(stack):
    url = f"{stack['base']}/conversations/e2e-es/tracker"
    assert requests.get(url, timeout=10).status_code == 401
    tracker = requests.get(url, params={"token": TOKEN}, timeout=10)
    assert tracker.status_code == 200 and tracker.json()["slots"]["language"] == "es"


def test_ctrl_c_stops_everything(stack):
    proc = stack["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    for port in stack["ports"]:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
