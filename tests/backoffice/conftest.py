"""The back office's fixtures: a running back office (tests/helpers/backoffice.py) on a seeded SQLite file, and
the receiver standing in for the connector's webhook and Rasa (COMANDA_RASA_URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator

import pytest
import requests

from tests.helpers.backoffice import Offices, backoffice_env, seeded_database, start, stop
from tests.helpers.console import add_staff, personal_token
from tests.helpers.graph import Graph
from tests.helpers.net import free_port
from tests.helpers.receiver import Receiver


@pytest.fixture(scope="session")
def database(tmp_path_factory) -> str:
    return seeded_database(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


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


@pytest.fixture
def graph(backoffice) -> Graph:
    return Graph(backoffice)


@pytest.fixture
def staff_headers(demo) -> Dict[str, str]:
    """An owner's personal token on the test's database, as the staff API wants it."""
    add_staff("api@cafe.mx", role="owner")
    return {"Authorization": f"Bearer {personal_token('api@cafe.mx')}"}


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
