"""`comanda staff …` and the demo owner of `comanda seed --demo`, as an operator runs them: real processes,
passwords and tokens shown once, one-line errors."""

from __future__ import annotations

import json
import re

from comanda.db import transaction
from comanda.enums import LoginOutcome
from comanda.services import staff
from tests.helpers.cli import comanda


def login(email: str, password: str) -> LoginOutcome:
    with transaction() as session:
        return staff.attempt_login(session, email, password, "127.0.0.1").outcome


def test_the_demo_seed_prints_an_owner_login_once(database_url):
    assert comanda("migrate").returncode == 0
    first = comanda("seed", "--demo", "--if-empty")
    assert first.returncode == 0 and "demo owner created: log in at http://127.0.0.1:5080/console/login" in first.stdout
    email = re.search(r"e-mail:\s+(\S+)", first.stdout).group(1)
    password = re.search(r"password:\s+(\S+)", first.stdout).group(1)
    assert email == "owner@cafe-esquina.example" and len(password) >= 20
    again = comanda("seed", "--demo", "--if-empty")
    assert "not seeding" in again.stdout and "password" not in again.stdout
    assert login(email, password) == LoginOutcome.SUCCEEDED


def test_accounts_tokens_and_errors_from_the_command_line(demo_sqlite):
    added = comanda("staff", "add", "Ana@Cafe.mx", "--name", "Ana López", "--role", "staff", "--stores", "centro,roma")
    assert added.returncode == 0, added.stderr
    generated = re.search(r"^password: (\S+)$", added.stdout, re.M).group(1)
    assert login("ana@cafe.mx", generated) == LoginOutcome.SUCCEEDED
    given = comanda(
        "staff",
        "add",
        "bob@cafe.mx",
        "--name",
        "Bob",
        "--role",
        "manager",
        "--stores",
        "roma",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert given.returncode == 0 and "password:" not in given.stdout
    assert login("bob@cafe.mx", "a long enough password") == LoginOutcome.SUCCEEDED
    listed = json.loads(comanda("staff", "list", "--json").stdout)
    assert [(a["email"], a["role"], a["stores"]) for a in listed] == [
        ("bob@cafe.mx", "manager", ["roma"]),
        ("ana@cafe.mx", "staff", ["centro", "roma"]),
    ]
    made = comanda("staff", "token", "ana@cafe.mx", "--label", "delivery app")
    token = re.search(r"^(cst_\S+)$", made.stdout, re.M).group(1)
    with transaction() as session:
        assert staff.token_member(session, token).email == "ana@cafe.mx"
    tokens = json.loads(comanda("staff", "tokens", "ana@cafe.mx", "--json").stdout)
    assert [(t["label"], t["revoked_at"]) for t in tokens] == [("delivery app", None)]
    assert token not in comanda("staff", "tokens", "ana@cafe.mx").stdout  # never shown again
    assert comanda("staff", "revoke-token", "ana@cafe.mx", str(tokens[0]["id"])).returncode == 0
    with transaction() as session:
        assert staff.token_member(session, token) is None
    assert comanda("staff", "disable", "ana@cafe.mx").returncode == 0
    assert login("ana@cafe.mx", generated) == LoginOutcome.DISABLED
    for args, message in (
        (("staff", "add", "x@cafe.mx", "--name", "X", "--role", "staff"), "work at one store at least"),
        (("staff", "add", "x@cafe.mx", "--name", "X", "--role", "staff", "--stores", "polanco"), "no store 'polanco'"),
        (("staff", "add", "ana@cafe.mx", "--name", "A", "--role", "staff", "--stores", "roma"), "already"),
        (("staff", "disable", "nobody@cafe.mx"), "no staff account"),
        (("staff", "revoke-token", "ana@cafe.mx", "999"), "has no token 999"),
    ):
        failed = comanda(*args)
        assert failed.returncode == 2 and failed.stderr.startswith("error: ") and message in failed.stderr, (
            failed.stderr
        )
        assert failed.stderr.count("\n") == 1
