"""The durable outbox: every message to a customer is a row, sent once, retried with backoff.

Rows are claimed with a conditional update (queued → sending), so several senders (replicas) never
send one row twice; a conversation's rows go out in order, one at a time. Retryable failures
(throttling, 5xx, network) back off exponentially up to MAX_ATTEMPTS, then the row is given up with a
log line. A row found in "sending" after a crash may or may not have reached Meta: it is not resent
(a duplicate is worse than a gap) and is marked given up for staff to see.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Dict, List, Optional

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session, aliased

from comanda import models as m
from comanda.clock import now
from comanda.db import insert_unless_duplicate

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BASE_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 300.0
# Delivery states only move forward; "failed" can follow any of them.
STATUS_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}


@dataclass(frozen=True)
class OutboxItem:
    id: int
    channel: str
    store_id: Optional[str]
    conversation_id: Optional[str]
    recipient: str
    payload: Dict[str, Any]
    attempts: int


def enqueue(session: Session, channel: str, recipient: str, payload: Dict[str, Any], store_id: Optional[str] = None,
            conversation_id: Optional[str] = None, dedupe_key: Optional[str] = None) -> Optional[int]:
    """Queue a message; None when a row with this dedupe key exists already (a replayed turn)."""
    return insert_unless_duplicate(session, m.OutboundMessage(
        channel=channel, recipient=recipient, payload=payload, store_id=store_id, conversation_id=conversation_id,
        dedupe_key=dedupe_key, next_attempt_at=now()))


def claim_due(session: Session, channel: str, limit: int = 20) -> List[OutboxItem]:
    """Due rows whose conversation has nothing earlier still waiting, now marked as being sent."""
    earlier = aliased(m.OutboundMessage)
    candidates = session.execute(
        select(m.OutboundMessage)
        .where(
            m.OutboundMessage.channel == channel,
            m.OutboundMessage.status == "queued",
            m.OutboundMessage.next_attempt_at <= now(),
            ~exists().where(and_(
                earlier.conversation_id == m.OutboundMessage.conversation_id,
                earlier.id < m.OutboundMessage.id,
                earlier.status.in_(("queued", "sending")),
            )),
        )
        .order_by(m.OutboundMessage.id)
        .limit(limit)
    ).scalars().all()
    claimed = []
    for row in candidates:
        attempts = row.attempts + 1
        result = session.execute(
            update(m.OutboundMessage)
            .where(m.OutboundMessage.id == row.id, m.OutboundMessage.status == "queued")
            .values(status="sending", attempts=m.OutboundMessage.attempts + 1)
        )
        if result.rowcount == 1:
            claimed.append(OutboxItem(row.id, row.channel, row.store_id, row.conversation_id, row.recipient,
                                      row.payload, attempts))
    return claimed


def mark_sent(session: Session, item_id: int, external_id: Optional[str]) -> None:
    session.execute(
        update(m.OutboundMessage).where(m.OutboundMessage.id == item_id)
        .values(status="sent", external_id=external_id, sent_at=now(), last_error=None)
    )


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(BASE_DELAY_SECONDS * 2 ** (attempts - 1), MAX_DELAY_SECONDS))


def mark_failed(session: Session, item: OutboxItem, error: str, retryable: bool) -> str:
    """Schedule a retry, or give up; returns the row's new status."""
    if retryable and item.attempts < MAX_ATTEMPTS:
        status, next_at = "queued", now() + retry_delay(item.attempts)
    else:
        status, next_at = ("given_up" if retryable else "failed"), None
        log.error("outbox %s to %s: giving up after %d attempt(s): %s", item.id, item.recipient,
                  item.attempts, error)
    session.execute(
        update(m.OutboundMessage).where(m.OutboundMessage.id == item.id)
        .values(status=status, next_attempt_at=next_at, last_error=error[:1000])
    )
    return status


def abandon_interrupted(session: Session, channel: str) -> int:
    """Rows left in "sending" by a crash: their fate is unknown, so they are not sent again."""
    rows = session.execute(
        update(m.OutboundMessage)
        .where(m.OutboundMessage.channel == channel, m.OutboundMessage.status == "sending")
        .values(status="given_up", last_error="interrupted while sending; not resent to avoid a duplicate")
    ).rowcount
    if rows:
        log.warning("outbox: %d message(s) were interrupted while sending and are not resent", rows)
    return rows


def apply_status(session: Session, external_id: str, status: str, error: Optional[str] = None
                 ) -> Optional[m.OutboundMessage]:
    """A delivery status from the channel (sent/delivered/read/failed); never moves a row backwards."""
    row = session.execute(
        select(m.OutboundMessage).where(m.OutboundMessage.external_id == external_id)
    ).scalar_one_or_none()
    if row is None:
        return None
    if status == "failed":
        row.status, row.last_error = "failed", (error or "failed")[:1000]
    elif STATUS_RANK.get(status, -1) > STATUS_RANK.get(row.status, 99):
        row.status = status
    return row
