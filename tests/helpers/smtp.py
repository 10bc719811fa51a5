"""A local SMTP server (aiosmtpd) that keeps what it receives, for tests of anything Comanda e-mails; as a
fixture, ``smtp``, with Comanda's settings pointing at it (the top conftest registers it)."""

from __future__ import annotations

import email
from contextlib import contextmanager
from email import policy
from typing import Iterator, List, Tuple

import pytest

from tests.helpers.net import free_port


class Inbox:
    """What the SMTP server accepted: the parsed messages and their envelopes (from, recipients)."""

    def __init__(self) -> None:
        self.messages: List[email.message.EmailMessage] = []
        self.envelopes: List[Tuple[str, List[str]]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Tuple[Inbox, int]]:
    """A running server on a free port: (its inbox, its port)."""
    from aiosmtpd.controller import Controller  # only the actions venv has it; the Rasa venv loads this plugin too

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def smtp(monkeypatch) -> Iterator[Inbox]:
    """An SMTP server on a free local port for the test, set as COMANDA_SMTP_* (plain, no login): its inbox."""
    with smtp_server() as (inbox, port):
        monkeypatch.setenv("COMANDA_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("COMANDA_SMTP_PORT", str(port))
        monkeypatch.setenv("COMANDA_SMTP_SECURITY", "none")
        monkeypatch.setenv("COMANDA_SMTP_FROM", "compras@cafe-esquina.example")
        yield inbox
