"""E-mail over SMTP with the COMANDA_SMTP_* settings: STARTTLS, implicit TLS (ssl) or plain (none, for a
local relay or the tests' aiosmtpd), with a login when COMANDA_SMTP_USER is set."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Optional

from comanda.errors import ComandaError, ConfigError
from comanda.settings import setting, setting_int

SECURITY = ("starttls", "ssl", "none")


class EmailFailed(ComandaError):
    """The SMTP server could not be reached or refused the message."""

    code = "email_failed"


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        security: str = "starttls",
        user: str = "",
        password: str = "",
        timeout: float = 30,
    ) -> None:
        if security not in SECURITY:
            raise ConfigError(f"COMANDA_SMTP_SECURITY must be one of {', '.join(SECURITY)}, not {security!r}")
        self.host, self.port, self.sender, self.security = host, port, sender, security
        self.user, self.password, self.timeout = user, password, timeout

    def send(self, message: EmailMessage) -> None:
        if "From" not in message:
            message["From"] = self.sender
        try:
            client: smtplib.SMTP
            if self.security == "ssl":
                client = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.user:
                    client.login(self.user, self.password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise EmailFailed(f"could not e-mail {message['To']} through {self.host}:{self.port}: {exc}") from exc


def mailer_from_settings() -> Optional[SmtpMailer]:
    """The configured SMTP mailer; None when COMANDA_SMTP_HOST is empty (invoices are then not e-mailed)."""
    host = setting("COMANDA_SMTP_HOST")
    if not host:
        return None
    return SmtpMailer(
        host,
        setting_int("COMANDA_SMTP_PORT"),
        setting("COMANDA_SMTP_FROM"),
        setting("COMANDA_SMTP_SECURITY"),
        setting("COMANDA_SMTP_USER"),
        setting("COMANDA_SMTP_PASSWORD"),
    )
