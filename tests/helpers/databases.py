"""The databases tests run on: SQLite always and, when COMANDA_TEST_DATABASE_URL is set, PostgreSQL too (a
throw-away schema, or a copy of a template database migrated once per run). An unreachable PostgreSQL fails
the run: CI must not silently skip it. The fixtures on them are in the top conftest."""

from __future__ import annotations

import os
import shutil
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
from tests.helpers.paths import DEMO_CATALOG

PG_URL = os.environ.get("COMANDA_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def seed_demo(url: str) -> str:
    """The database at ``url`` migrated to the latest schema, with the demo business loaded: its URL."""
    upgrade(url)
    with transaction(url) as session:
        load_catalog(session, read_catalog(DEMO_CATALOG))
    return url


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
        (seed_demo if kind == "demo" else upgrade)(url)
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


def database_copy(kind: str, backend: str, templates: Templates, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """A copy of a template database for one test, set as COMANDA_DATABASE_URL (a fixture's body)."""
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
