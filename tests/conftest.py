"""Shared fixtures: a migrated database per test, on SQLite and, when COMANDA_TEST_DATABASE_URL is
set, on PostgreSQL too (each test gets its own copy of a template database there; an empty one in a
schema of its own). An unreachable PostgreSQL fails the run: CI must not silently skip it."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import uuid
from pathlib import Path
from typing import Dict, Iterator, Tuple

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


class Templates:
    """Databases migrated (and seeded with the demo) once per test run; every test gets its own copy,
    which is much faster than migrating each time: a file copy on SQLite, CREATE DATABASE … TEMPLATE
    on PostgreSQL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.run = uuid.uuid4().hex[:8]
        self.built: Dict[Tuple[str, str], str] = {}

    def _fill(self, url: str, kind: str) -> None:
        upgrade(url)
        if kind == "demo":
            with transaction(url) as session:
                load_catalog(session, read_catalog(DEMO_CATALOG))
        dispose_engines()

    def sqlite(self, kind: str, target: Path) -> str:
        template = self.folder / f"{kind}.db"
        if ("sqlite", kind) not in self.built:
            url = f"sqlite:///{template}"
            self._fill(url, kind)
            with sqlite3.connect(template) as conn:  # everything into the main file: the copy needs no -wal
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.built["sqlite", kind] = url
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"

    def postgresql(self, kind: str) -> Tuple[str, str]:
        """A new database copied from the template: (its URL, its name)."""
        admin = self._admin()
        name = f"comanda_tpl_{kind}_{self.run}"
        if ("postgresql", kind) not in self.built:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self._fill(self._url(name), kind)
            self.built["postgresql", kind] = name
        copy = f"t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"'))
        return self._url(copy), copy

    def drop(self, name: str) -> None:
        dispose_engines()
        with self._admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        for (backend, _), name in self.built.items():
            if backend == "postgresql":
                self.drop(name)

    @staticmethod
    def _url(database: str) -> str:
        return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)

    def _admin(self):
        if not hasattr(self, "_engine"):
            self._engine = create_engine(PG_URL, future=True, isolation_level="AUTOCOMMIT")
        return self._engine


@pytest.fixture(scope="session")
def templates(tmp_path_factory) -> Iterator[Templates]:
    found = Templates(tmp_path_factory.mktemp("templates"))
    yield found
    found.close()


def _copy(kind: str, backend: str, templates: Templates, tmp_path: Path, monkeypatch) -> Iterator[str]:
    if backend == "sqlite":
        url = templates.sqlite(kind, tmp_path / "comanda.db")
        monkeypatch.setenv("COMANDA_DATABASE_URL", url)
        yield url
        dispose_engines()
        return
    try:
        url, name = templates.postgresql(kind)
    except Exception as exc:  # noqa: BLE001 - any failure to reach PostgreSQL must fail loudly
        pytest.fail(f"COMANDA_TEST_DATABASE_URL is set but PostgreSQL is unusable: {exc}", pytrace=False)
    monkeypatch.setenv("COMANDA_DATABASE_URL", url)
    yield url
    templates.drop(name)


@pytest.fixture(params=BACKENDS)
def migrated(request, templates, tmp_path, monkeypatch) -> Iterator[str]:
    """A database at the latest schema, set as COMANDA_DATABASE_URL for the test."""
    yield from _copy("migrated", request.param, templates, tmp_path, monkeypatch)


@pytest.fixture(params=BACKENDS)
def demo(request, templates, tmp_path, monkeypatch) -> Iterator[str]:
    """A migrated database with the demo business loaded."""
    yield from _copy("demo", request.param, templates, tmp_path, monkeypatch)


@pytest.fixture
def demo_sqlite(templates, tmp_path, monkeypatch) -> Iterator[str]:
    """The demo business on SQLite only, for tests of what does not depend on the database backend
    (PAC adapters, command lines), which would only repeat themselves on PostgreSQL."""
    yield from _copy("demo", "sqlite", templates, tmp_path, monkeypatch)
