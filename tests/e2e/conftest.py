"""The e2e tests' stack (tests/helpers/stack.py), started once for the session on a seeded database, with an
SMTP server for what it e-mails and a staff member's personal token."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from comanda.db import dispose_engines, transaction
from comanda.services import staff
from comanda.services.audit import Actor
from tests.helpers.databases import seed_demo
from tests.helpers.paths import ROOT
from tests.helpers.smtp import smtp_server
from tests.helpers.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    if not (ROOT / "models" / "comanda.tar.gz").exists():
        pytest.fail("no trained model: run `make train` first", pytrace=False)
    stack = Stack(tmp_path_factory.mktemp("stack"))
    with smtp_server() as mail:
        stack.use_smtp(*mail)
        os.environ["COMANDA_DATABASE_URL"] = stack.db_url
        seed_demo(stack.db_url)
        with transaction() as session:
            user, _ = staff.add_staff(
                session, Actor("e2e"), "counter@cafe-esquina.example", "Counter", "staff", ["centro"]
            )
            stack.staff_token = staff.create_token(session, Actor("e2e"), user, "e2e")[1]
        stack.start()
        yield stack
        if stack.proc.poll() is None:
            stack.stop()
    del os.environ["COMANDA_DATABASE_URL"]
    dispose_engines()
