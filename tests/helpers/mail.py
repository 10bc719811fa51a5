"""A local SMTP server (aiosmtpd) that keeps what it receives: invoices e-mailed by the tests."""

from __future__ import annotations

import email
from email import policy
from typing import Iterator, List, Tuple

from aiosmtpd.controller import Controller

from tests.conftest import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: List[email.message.EmailMessage] = []
        self.envelopes: List[tuple] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def smtp_server() -> Iterator[Tuple[Inbox, int]]:
    """An SMTP server on loopback for as long as the generator is open: (its inbox, its port)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()
