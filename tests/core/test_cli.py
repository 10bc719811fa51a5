"""The `comanda` command as an operator runs it: a real process, one-line errors."""

import os
import socket
import subprocess
import sys

import pytest

from cli.runner import Service, ensure_port_free
from comanda.errors import ConfigError


def comanda(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_migrate_and_seed_twice(database_url):
    assert comanda("migrate").returncode == 0
    first = comanda("seed", "--demo")
    assert first.returncode == 0 and "created 1 businesses" in first.stdout
    second = comanda("seed", "--demo")
    assert second.returncode == 0 and "nothing changed" in second.stdout
    skipped = comanda("seed", "--demo", "--if-empty")
    assert "not seeding" in skipped.stdout
    menu = comanda("menu", "--store", "roma", "--lang", "en")
    assert "Taro milk tea" in menu.stdout and "$75.00" in menu.stdout


@pytest.mark.parametrize("url", ["mysql+nosuchdriver://x/y", "not a url", "sqlite:////proc/comanda/x.db"])
def test_bad_database_url_is_one_line(url):
    result = comanda("migrate", env={"COMANDA_DATABASE_URL": url})
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_unreachable_postgres_is_one_line():
    result = comanda("migrate", env={"COMANDA_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.returncode == 2 and result.stderr.startswith("error: cannot reach the database")
    assert result.stderr.count("\n") == 1


def test_busy_port_is_reported_plainly():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} \\(rasa\\) is already in use"):
            ensure_port_free(Service("rasa", [], port, "/"))


def test_settings_lists_defaults():
    result = comanda("settings")
    assert "COMANDA_DATABASE_URL" in result.stdout and "sqlite:///var/comanda.db" in result.stdout
