"""Shared fixtures: a migrated database per test, on SQLite and, when COMANDA_TEST_DATABASE_URL is
set, on PostgreSQL too (each test gets its own schema there). An unreachable PostgreSQL fails the
run: CI must not silently skip it."""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from comanda.db import dispose_engines, transaction
from comanda.migrate import upgrade
from comanda.services.catalog_loader import load_catalog, read_catalog

ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = ROOT / "data" / "demo" / "catalog.yml"
PG_URL = os.environ.get("COMANDA_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def free_port() -> int:
    """A TCP port nobody listens on now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path, monkeypatch) -> Iterator[str]:
    """An empty database URL, set as COMANDA_DATABASE_URL for the test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'comanda.db'}"
        monkeypatch.setenv("COMANDA_DATABASE_URL", url)
        yield url
    else:
        with pg_schema() as url:
            monkeypatch.setenv("COMANDA_DATABASE_URL", url)
            yield url
    dispose_engines()


class pg_schema:
    """A throw-away PostgreSQL schema, reached through search_path in the URL."""

    def __enter__(self) -> str:
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.admin = create_engine(PG_URL, future=True)
        try:
            with self.admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        except Exception as exc:  # noqa: BLE001 - any failure to reach PostgreSQL must fail loudly
            pytest.fail(f"COMANDA_TEST_DATABASE_URL is set but PostgreSQL is unusable: {exc}", pytrace=False)
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={self.schema}"})
        return url.render_as_string(hide_password=False)

    def __exit__(self, *exc) -> None:
        dispose_engines()
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        self.admin.dispose()


@pytest.fixture
def migrated(database_url) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def demo(migrated) -> str:
    """A migrated database with the demo business loaded."""
    with transaction() as session:
        load_catalog(session, read_catalog(DEMO_CATALOG))
    return migrated
