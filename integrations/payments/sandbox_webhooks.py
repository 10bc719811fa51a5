"""The sandbox's webhook outbox: what a real provider does after a charge, made durable.

Pay or Decline writes the charge and its webhook (``sandbox_webhooks``) in one transaction, so a back
office that dies before posting still delivers it later. The first attempt is the press's own (at once,
so the page can show the outcome); the outbox loop takes only rows that are due, and a new row is due
only a lease later (sandbox.WEBHOOK_LEASE_SECONDS), so the two never race. A row is claimed with a
conditional update that counts the attempt and moves ``next_attempt_at`` a lease ahead: two deliverers
never post it at once, and an attempt that died with its process is retried when its lease runs out.
Each attempt signs the body afresh (the signature's timestamp must be recent) and posts it to the back
office's own webhook URL; anything but a 2xx is retried with backoff (2 s, 4 s, … 5 minutes apart) up to
MAX_ATTEMPTS, then given up with an error in the log. Delivery is at least once: a retry of a webhook
that was applied is a ``duplicate``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Dict, List, Optional

import requests
from sqlalchemy import and_, or_, select, update

from comanda import clock
from comanda import models as m
from comanda.db import transaction
from comanda.enums import SandboxWebhookStatus
from comanda.services.payment_provider import ProviderError
from integrations.payments.sandbox import WEBHOOK_LEASE_SECONDS, SandboxProvider

log = logging.getLogger(__name__)

W = m.SandboxWebhook
LEASE_SECONDS = WEBHOOK_LEASE_SECONDS
BASE_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 300.0
MAX_ATTEMPTS = 12  # about half an hour of a back office that does not answer


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: str
    body: bytes
    attempts: int  # this attempt included


def deliver_due(provider: SandboxProvider, limit: int = 20, charge_id: Optional[str] = None) -> int:
    """Post the webhooks that are due, each claimed first; with ``charge_id``, that charge's webhook for its
    first attempt (the Pay press's) or when due. How many the back office accepted."""
    delivered = 0
    for item in claim_due(limit, charge_id):
        delivered += deliver(provider, item)
    return delivered


def claim_due(limit: int = 20, charge_id: Optional[str] = None) -> List[Claimed]:
    now = clock.now()
    due = W.next_attempt_at <= now
    if charge_id is not None:
        due = and_(W.charge_id == charge_id, or_(W.attempts == 0, due))
    query = select(W.id, W.attempts).where(W.status == SandboxWebhookStatus.PENDING, due).order_by(W.id)
    claimed = []
    with transaction() as session:
        for webhook_id, attempts in session.execute(query.limit(limit)).all():
            taken = session.execute(
                update(W)
                .where(W.id == webhook_id, W.status == SandboxWebhookStatus.PENDING, W.attempts == attempts, due)
                .values(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS), attempts=attempts + 1)
            ).rowcount
            if taken == 1:
                row = session.get(W, webhook_id)
                claimed.append(Claimed(row.id, row.event_id, row.body.encode(), row.attempts))
    return claimed


def deliver(provider: SandboxProvider, item: Claimed) -> bool:
    """One attempt at one claimed webhook; its outcome recorded (delivered, a retry scheduled, given up)."""
    try:
        provider.send_webhook(item.body)
        error = None
    except (ProviderError, requests.RequestException) as exc:
        error = exc.message if isinstance(exc, ProviderError) else f"unreachable ({type(exc).__name__})"
    with transaction() as session:
        if error is None:
            session.execute(
                update(W)
                .where(W.id == item.id)
                .values(status=SandboxWebhookStatus.DELIVERED, delivered_at=clock.now(), last_error=None)
            )
            return True
        if item.attempts >= MAX_ATTEMPTS:
            log.error("sandbox webhook %s given up after %s attempts: %s", item.event_id, item.attempts, error)
            values: Dict[str, object] = {"status": SandboxWebhookStatus.GIVEN_UP}
        else:
            log.warning("sandbox webhook %s not delivered (attempt %s): %s", item.event_id, item.attempts, error)
            values = {"next_attempt_at": clock.now() + retry_delay(item.attempts)}
        session.execute(update(W).where(W.id == item.id).values(last_error=error[:1000], **values))
    return False


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(BASE_DELAY_SECONDS * 2 ** (attempts - 1), MAX_DELAY_SECONDS))
