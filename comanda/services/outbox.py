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
from typing import Any, Dict, List, Optional, Tuple

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


def enqueue(
    session: Session,
    channel: str,
    recipient: str,
    payload: Dict[str, Any],
    store_id: Optional[str] = None,
    conversation_id: Optional[str] = None,
    dedupe_key: Optional[str] = None,
) -> Optional[int]:
    """Queue a message; None when a row with this dedupe key exists already (a replayed turn)."""
    return insert_unless_duplicate(
        session,
        m.OutboundMessage(
            channel=channel,
            recipient=recipient,
            payload=payload,
            store_id=store_id,
            conversation_id=conversation_id,
            dedupe_key=dedupe_key,
            next_attempt_at=now(),
        ),
    )


def claim_due(session: Session, channel: str, limit: int = 20) -> List[OutboxItem]:
    """Due rows whose conversation has nothing earlier still waiting, now marked as being sent."""
    return [
        OutboxItem(row.id, row.channel, row.store_id, row.conversation_id, row.recipient, row.payload, attempts)
        for row, attempts in claim_queued(session, m.OutboundMessage, limit, m.OutboundMessage.channel == channel)
    ]


def mark_sent(session: Session, item_id: int, external_id: Optional[str]) -> None:
    session.execute(
        update(m.OutboundMessage)
        .where(m.OutboundMessage.id == item_id)
        .values(status="sent", external_id=external_id, sent_at=now(), last_error=None)
    )


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(BASE_DELAY_SECONDS * 2 ** (attempts - 1), MAX_DELAY_SECONDS))


def mark_failed(session: Session, item: OutboxItem, error: str, retryable: bool) -> str:
    """Schedule a retry, or give up; returns the row's new status."""
    return schedule_retry(
        session,
        m.OutboundMessage,
        item.id,
        item.attempts,
        MAX_ATTEMPTS,
        error,
        retryable,
        f"outbox {item.id} to {item.recipient}",
    )


def abandon_interrupted(session: Session, channel: str) -> int:
    """Rows left in "sending" by a crash: their fate is unknown, so they are not sent again."""
    return abandon_sending(session, m.OutboundMessage, "outbox", m.OutboundMessage.channel == channel)


def apply_status(
    session: Session, external_id: str, status: str, error: Optional[str] = None
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


# --- the queue mechanics, shared with comanda.services.notifications -----------------------------
# A queue table has id, conversation_id, status (queued | sending | sent | failed | given_up | ...),
# attempts, next_attempt_at and last_error.


def claim_queued(session: Session, model: Any, limit: int, *where: Any) -> List[Tuple[Any, int]]:
    """Due rows (``where`` narrows them) with nothing earlier of their conversation still waiting, each
    claimed with a conditional update (queued → sending) so that several senders never take one row
    twice: (row, this attempt's number)."""
    earlier = aliased(model)
    waiting_before = exists().where(
        and_(
            earlier.conversation_id == model.conversation_id,
            earlier.id < model.id,
            earlier.status.in_(("queued", "sending")),
        )
    )
    rows = (
        session.execute(
            select(model)
            .where(*where, model.status == "queued", model.next_attempt_at <= now(), ~waiting_before)
            .order_by(model.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    claimed = []
    for row in rows:
        attempts = row.attempts + 1  # read before the UPDATE, which the ORM writes back into ``row``
        if (
            session.execute(
                update(model)
                .where(model.id == row.id, model.status == "queued")
                .values(status="sending", attempts=model.attempts + 1)
            ).rowcount
            == 1
        ):
            claimed.append((row, attempts))
    return claimed


def schedule_retry(
    session: Session, model: Any, row_id: int, attempts: int, max_attempts: int, error: str, retryable: bool, what: str
) -> str:
    """Queue the row again after ``retry_delay``, or stop (a refusal, or ``max_attempts`` reached, logged
    as ``what``); the row's new status."""
    values: Dict[str, Any] = {"last_error": error[:1000]}
    if retryable and attempts < max_attempts:
        values.update(status="queued", next_attempt_at=now() + retry_delay(attempts))
    else:
        values["status"] = "given_up" if retryable else "failed"
        log.error("%s: giving up after %d attempt(s): %s", what, attempts, error)
    session.execute(update(model).where(model.id == row_id).values(**values))
    return values["status"]


def abandon_sending(session: Session, model: Any, what: str, *where: Any) -> int:
    """Rows a crash left in "sending" may have been delivered: they are given up, never resent (a gap
    is better than a duplicate)."""
    count = session.execute(
        update(model)
        .where(*where, model.status == "sending")
        .values(status="given_up", last_error="interrupted while sending; not resent to avoid a duplicate")
    ).rowcount
    if count:
        log.warning("%s: %d interrupted while sending, not resent", what, count)
    return count
