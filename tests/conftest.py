"""The fixtures every directory shares: a migrated database per test, on SQLite and, when
COMANDA_TEST_DATABASE_URL is set, on PostgreSQL too (tests/helpers/databases.py). Fixtures defined in helper
modules (the SMTP server, the payment sandbox's settings, the browser) reach every directory through
``pytest_plugins``: a test module never imports another test module nor a conftest."""

from __future__ import annotations

from typing import Iterator

import pytest

from comanda.db import dispose_engines
from tests.helpers.databases import BACKENDS, Templates, database_copy, pg_schema

pytest_plugins = ["tests.helpers.browser", "tests.helpers.payments", "tests.helpers.smtp"]


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


@pytest.fixture(scope="session")
def templates(tmp_path_factory) -> Iterator[Templates]:
    found = Templates(tmp_path_factory.mktemp("templates"))
    yield found
    found.close()


@pytest.fixture(params=BACKENDS)
def migrated(request, templates, tmp_path, monkeypatch) -> Iterator[str]:
    """A database at the latest schema, set as COMANDA_DATABASE_URL for the test."""
    yield from database_copy("migrated", request.param, templates, tmp_path, monkeypatch)


@pytest.fixture(params=BACKENDS)
def demo(request, templates, tmp_path, monkeypatch) -> Iterator[str]:
    """A migrated database with the demo business loaded."""
    yield from database_copy("demo", request.param, templates, tmp_path, monkeypatch)


@pytest.fixture
def demo_sqlite(templates, tmp_path, monkeypatch) -> Iterator[str]:
    """The demo business on SQLite only, for tests of what does not depend on the database backend
    (PAC adapters, command lines), which would only repeat themselves on PostgreSQL."""
    yield from database_copy("demo", "sqlite", templates, tmp_path, monkeypatch)
