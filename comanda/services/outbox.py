"""The durable outbox: every message to a customer is a row, sent once, retried with backoff.

Rows are claimed with a conditional update (queued → sending), so several senders (replicas) never
send one row twice; a conversation's rows go out in order, one at a time. Retryable failures
(throttling, 5xx, network) back off exponentially up to MAX_ATTEMPTS, then the row is given up with a
log line. A claim is a lease (SEND_LEASE_SECONDS, longer than any send takes): a row still "sending"
when its lease has run out belonged to a sender that died, and may or may not have reached Meta. It
is not resent (a duplicate is worse than a gap) but given up, for staff to see, by whichever sender
claims next; so a dead sender holds back its conversation's later messages for one lease at most.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Dict, List, Optional, Sequence, Tuple

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from comanda import models as m
from comanda.clock import now
from comanda.db import insert_unless_duplicate
from comanda.enums import OutboxStatus as S

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
SEND_LEASE_SECONDS = 60  # a send takes at most two Graph calls of 20 s (upload, message)
BASE_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 300.0
# Delivery states only move forward; failed can follow any of them.
STATUS_RANK: Dict[str, int] = {S.QUEUED: 0, S.SENDING: 1, S.SENT: 2, S.DELIVERED: 3, S.READ: 4}


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


def claim_due(session: Session, channel: str, limit: int = 20, waiting: Sequence[str] = ()) -> List[OutboxItem]:
    """Due rows whose conversation has nothing earlier still waiting, now marked as being sent; none for
    the ``waiting`` recipients (paced: their rows stay queued, in order)."""
    where = [m.OutboundMessage.channel == channel]
    if waiting:
        where.append(m.OutboundMessage.recipient.not_in(list(waiting)))
    claimed = claim_queued(session, m.OutboundMessage, "outbox", limit, SEND_LEASE_SECONDS, *where)
    return [
        OutboxItem(row.id, row.channel, row.store_id, row.conversation_id, row.recipient, row.payload, attempts)
        for row, attempts in claimed
    ]


def mark_sent(session: Session, item_id: int, external_id: Optional[str]) -> None:
    session.execute(
        update(m.OutboundMessage)
        .where(m.OutboundMessage.id == item_id)
        .values(status=S.SENT, external_id=external_id, sent_at=now(), last_error=None)
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


def apply_status(
    session: Session, external_id: str, status: str, error: Optional[str] = None
) -> Optional[m.OutboundMessage]:
    """A delivery status from the channel (sent/delivered/read/failed); never moves a row backwards."""
    row = session.execute(
        select(m.OutboundMessage).where(m.OutboundMessage.external_id == external_id)
    ).scalar_one_or_none()
    if row is None:
        return None
    if status == S.FAILED:
        row.status, row.last_error = S.FAILED, (error or "failed")[:1000]
    elif STATUS_RANK.get(status, -1) > STATUS_RANK.get(row.status, 99):
        row.status = status
    return row


# --- the queue mechanics, shared with comanda.services.notifications -----------------------------
# A queue table has id, conversation_id, status (queued, sending, sent, failed, given_up: OutboxStatus's
# values, which NotificationStatus spells alike), attempts, next_attempt_at, lease_until and last_error.


def claim_queued(
    session: Session, model: Any, what: str, limit: int, lease_seconds: float, *where: Any
) -> List[Tuple[Any, int]]:
    """Due rows (``where`` narrows them) with nothing earlier of their conversation still waiting, each
    claimed for ``lease_seconds`` with a conditional update (queued → sending) so that several senders
    never take one row twice: (row, this attempt's number). Rows whose sender died are given up first
    (``give_up_expired``), so they no longer hold their conversations back."""
    give_up_expired(session, model, what, *where)
    earlier = aliased(model)
    waiting_before = exists().where(
        and_(
            earlier.conversation_id == model.conversation_id,
            earlier.id < model.id,
            earlier.status.in_((S.QUEUED.value, S.SENDING.value)),
        )
    )
    rows = (
        session.execute(
            select(model)
            .where(*where, model.status == S.QUEUED, model.next_attempt_at <= now(), ~waiting_before)
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
                .where(model.id == row.id, model.status == S.QUEUED)
                .values(
                    status=S.SENDING, attempts=model.attempts + 1, lease_until=now() + timedelta(seconds=lease_seconds)
                )
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
        values.update(status=S.QUEUED, next_attempt_at=now() + retry_delay(attempts))
    else:
        values["status"] = S.GIVEN_UP if retryable else S.FAILED
        log.error("%s: giving up after %d attempt(s): %s", what, attempts, error)
    session.execute(update(model).where(model.id == row_id).values(**values))
    return values["status"]


def give_up_expired(session: Session, model: Any, what: str, *where: Any) -> int:
    """Rows still "sending" past their lease: their sender died mid-send and they may have been delivered,
    so they are given up, never resent (a gap is better than a duplicate)."""
    lease = model.lease_until
    count = session.execute(
        update(model)
        .where(*where, model.status == S.SENDING, or_(lease.is_(None), lease < now()))
        .values(status=S.GIVEN_UP, last_error="interrupted while sending; not resent to avoid a duplicate")
        .execution_options(synchronize_session=False)
    ).rowcount
    if count:
        log.error("%s: %d interrupted while sending (their sender died): given up, not resent", what, count)
    return count
