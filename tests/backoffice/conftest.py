"""The back office as `comanda run` starts it: a real subprocess on a free port, a migrated and seeded
SQLite file, and a small HTTP receiver standing in for the connector's webhook (COMANDA_RASA_URL)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests

from comanda.db import dispose_engines, transaction
from comanda.migrate import upgrade
from comanda.services.catalog_loader import load_catalog, read_catalog
from comanda.settings import SIMULATOR_WHATSAPP
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "whatsapp"
CENTRO, ROMA = "106540352242922", "106540352242933"
TOKEN = SIMULATOR_WHATSAPP["WHATSAPP_ACCESS_TOKEN"]
APP_SECRET = SIMULATOR_WHATSAPP["WHATSAPP_APP_SECRET"]
WEBHOOK_PATH = "/webhooks/whatsapp/webhook"


@dataclass
class Post:
    path: str
    headers: Dict[str, str]
    body: bytes

    def verified(self) -> Dict[str, Any]:
        """The JSON body, after checking Meta's signature over the exact bytes received."""
        expected = "sha256=" + hmac.new(APP_SECRET.encode(), self.body, hashlib.sha256).hexdigest()
        assert self.headers.get("X-Hub-Signature-256") == expected, "bad or missing X-Hub-Signature-256"
        return json.loads(self.body)


class Receiver:
    """Captures every POST, answering `status` (the connector's answer, changeable per test)."""

    def __init__(self) -> None:
        self.posts: List[Post] = []
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.posts.append(Post(self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, match: Callable[[Dict[str, Any]], bool], count: int = 1, timeout: float = 10) -> List[Post]:
        """The first `count` verified webhook posts whose JSON matches, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [p for p in self.posts if p.path == WEBHOOK_PATH and match(json.loads(p.body))]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, f"expected {count} webhook posts, got {len(found)}"
                return found[:count]
            time.sleep(0.05)


def order_events(receiver: Receiver, order_id: int) -> List[str]:
    """The order updates Rasa was asked to tell the customer (trigger_intent calls), in order."""
    with receiver.lock:
        bodies = [json.loads(p.body) for p in receiver.posts if "/trigger_intent" in p.path]
    return [b["entities"]["event"] for b in bodies if b.get("entities", {}).get("order_id") == order_id]


def value_of(payload: Dict[str, Any]) -> Dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]


def statuses_of(message_id: str) -> Callable[[Dict[str, Any]], bool]:
    return lambda p: any(s["id"] == message_id for s in value_of(p).get("statuses", []))


def messages_with(message_id: str) -> Callable[[Dict[str, Any]], bool]:
    return lambda p: any(m["id"] == message_id for m in value_of(p).get("messages", []))


def seeded_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'comanda.db'}"
    upgrade(url)
    with transaction(url) as session:
        load_catalog(session, read_catalog(ROOT / "data" / "demo" / "catalog.yml"))
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
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"back office did not start:\n{log.read_text()[-3000:]}", pytrace=False)
        time.sleep(0.1)


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


@pytest.fixture(scope="session")
def database(tmp_path_factory) -> str:
    return seeded_database(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture(scope="session")
def backoffice(database, receiver, tmp_path_factory) -> Iterator[str]:
    """The base URL of a running back office with the simulator on."""
    port = free_port()
    proc = start(port, backoffice_env(database, port, receiver.url), tmp_path_factory.mktemp("log") / "bo.log")
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(autouse=True)
def clean_slate(request, receiver) -> Iterator[None]:
    """Each test starts with the connector answering 200 and no faults armed."""
    receiver.status = 200
    yield
    if "backoffice" in request.fixturenames:
        requests.delete(f"{request.getfixturevalue('backoffice')}/simulator/api/faults", timeout=5)


class Graph:
    """The connector's side of the fake Cloud API: bearer token, JSON bodies."""

    def __init__(self, base: str) -> None:
        self.base = f"{base}/simulator/graph/v21.0"

    def send(self, body: Dict[str, Any], phone_number_id: str = CENTRO, token: str = TOKEN) -> requests.Response:
        return requests.post(
            f"{self.base}/{phone_number_id}/messages",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )


@pytest.fixture
def graph(backoffice) -> Graph:
    return Graph(backoffice)


@pytest.fixture
def staff_headers(demo) -> Dict[str, str]:
    """An owner's personal token on the test's database, as the staff API wants it."""
    from tests.helpers.console import add_staff, personal_token

    add_staff("api@cafe.mx", role="owner")
    return {"Authorization": f"Bearer {personal_token('api@cafe.mx')}"}


CONSOLE_ENV = {
    "COMANDA_RASA_TOKEN": "console-rasa-token",
    "COMANDA_NOTIFY_POLL_SECONDS": "0.2",
    "COMANDA_CONSOLE_POLL_SECONDS": "0.2",
    "COMANDA_PAYMENT_SWEEP_SECONDS": "60",
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


@pytest.fixture
def offices(demo, receiver: Receiver, tmp_path: Path, monkeypatch) -> Iterator[Offices]:
    with receiver.lock:
        receiver.posts.clear()
    found = Offices(demo, receiver, tmp_path, monkeypatch)
    yield found
    found.stop()


@pytest.fixture
def console_url(offices: Offices) -> str:
    """One back office on the test's database, with Rasa = the receiver and fast background loops."""
    return offices.start()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = ROOT / "reports" / "screenshots"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `apt-get install -y chromium`", pytrace=False)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
