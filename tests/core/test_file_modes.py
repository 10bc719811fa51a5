"""What Comanda writes to disk is its owner's alone: the SQLite database (and its WAL files) 0600, the
generated secrets in a 0700 folder, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text

from comanda.db import dispose_engines, get_engine, transaction
from comanda.settings import setting


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (022): files are world-readable unless created otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(tmp_path, open_umask):
    url = f"sqlite:///{tmp_path / 'var' / 'comanda.db'}"
    try:
        with transaction(url) as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
        with get_engine(url).connect() as connection:  # keeps -wal and -shm in place while checked
            assert connection.execute(text("SELECT x FROM t")).scalar() == 1
            files = sorted(p.name for p in (tmp_path / "var").iterdir())
            assert files == ["comanda.db", "comanda.db-shm", "comanda.db-wal"]
            assert {name: mode(tmp_path / "var" / name) for name in files} == dict.fromkeys(files, 0o600)
    finally:
        dispose_engines()


def test_an_existing_database_keeps_the_mode_its_operator_gave_it(tmp_path, open_umask):
    database = tmp_path / "shared.db"
    database.touch(mode=0o640)
    database.chmod(0o640)
    try:
        with get_engine(f"sqlite:///{database}").connect() as connection:
            connection.execute(text("SELECT 1"))
        assert mode(database) == 0o640
    finally:
        dispose_engines()


def test_the_secrets_folder_is_owner_only(monkeypatch, tmp_path, open_umask):
    monkeypatch.setenv("COMANDA_HOME", str(tmp_path))
    monkeypatch.delenv("COMANDA_ACTIONS_TOKEN", raising=False)
    assert len(setting("COMANDA_ACTIONS_TOKEN")) >= 32
    secrets = tmp_path / "var" / "secrets"
    assert mode(secrets) == 0o700 and mode(secrets / "actions-token") == 0o600
    assert [p.name for p in secrets.iterdir()] == ["actions-token"]  # no draft left behind


def test_a_secrets_folder_made_readable_earlier_is_closed_when_a_secret_is_made(monkeypatch, tmp_path, open_umask):
    (tmp_path / "var" / "secrets").mkdir(parents=True, mode=0o755)
    monkeypatch.setenv("COMANDA_HOME", str(tmp_path))
    monkeypatch.delenv("COMANDA_ACTIONS_TOKEN", raising=False)
    setting("COMANDA_ACTIONS_TOKEN")
    assert mode(tmp_path / "var" / "secrets") == 0o700
