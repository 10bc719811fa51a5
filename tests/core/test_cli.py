"""The `comanda` command as an operator runs it: a real process, one-line errors."""

import socket
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cli.runner import Service, ensure_port_free
from comanda.errors import ConfigError
from tests.helpers.cli import comanda


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


UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


@pytest.mark.parametrize(
    "args",
    [
        ["menu"],
        ["stock", "LATTE"],
        ["seed", "--demo"],
        ["cfdi", "list"],
        ["payments", "reconcile", "--date", "2024-05-01"],
        ["purchasing", "list"],
        ["stock", "count", "CONCHA=1"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_every_database_command_says_the_database_is_unreachable_in_one_line(args):
    result = comanda(*args, env={"COMANDA_DATABASE_URL": UNREACHABLE})
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("error: cannot reach the database at COMANDA_DATABASE_URL: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_seed_on_an_unmigrated_database_says_to_migrate(tmp_path):
    result = comanda("seed", "--demo", env={"COMANDA_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "run `comanda migrate`" in result.stderr


def test_menu_on_an_unmigrated_database_says_to_migrate(tmp_path):
    result = comanda("menu", env={"COMANDA_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert result.returncode == 2 and "run `comanda migrate`" in result.stderr and result.stderr.count("\n") == 1


def _mexico_city_days(offset: int = 0) -> set:
    """The business's local day now (either side of a midnight the test may straddle)."""
    zone = ZoneInfo("America/Mexico_City")
    return {(datetime.now(zone) + timedelta(days=offset, seconds=s)).date().isoformat() for s in (-120, 0)}


@pytest.mark.parametrize(
    ("args", "offset"), [([], 0), (["--date", "today"], 0), (["--date", "yesterday"], -1)], ids=str
)
def test_reconcile_defaults_to_the_business_day_and_reads_today_and_yesterday(demo_sqlite, args, offset):
    result = comanda("payments", "reconcile", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.split(":")[0] in _mexico_city_days(offset), summary


def test_reconcile_refuses_a_date_it_cannot_read(demo_sqlite):
    result = comanda("payments", "reconcile", "--date", "mañana")
    assert result.returncode == 2
    assert result.stderr == "error: --date must be YYYY-MM-DD, today or yesterday, not 'mañana'\n"


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
