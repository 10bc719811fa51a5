"""Proactive order updates ("¡Pagado! Tu número es C-042", "tu pedido está listo"): durable rows
written in the same transaction as the change they announce, delivered once to Rasa's external
events API by the back office's dispatcher (backoffice/dispatch.py).

A dedupe key per announcement (``order:42:paid``) makes announcing twice a no-op. Rows are claimed
with a conditional update (queued → sending), so several dispatchers never deliver one twice, and a
conversation's rows go out in order: "paid" before "ready". A row found in "sending" after a crash may
have reached Rasa: it is given up, not resent (a gap is better than a duplicate).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session, aliased

from comanda import models as m
from comanda.clock import now
from comanda.db import insert_unless_duplicate
from comanda.errors import InvalidInput
from comanda.services.outbox import retry_delay

log = logging.getLogger(__name__)

EVENTS = ("paid", "declined", "expired", "flagged", "preparing", "ready", "delivered", "picked_up", "cancelled")
INTENT = "EXTERNAL_order_update"
MAX_ATTEMPTS = 10  # 2 s, 4 s, ... then 5 minutes apart: about 20 minutes of Rasa being down
N = m.Notification


@dataclass(frozen=True)
class Due:
    id: int
    conversation_id: str
    order_id: int
    event: str
    attempts: int

    def trigger(self) -> Dict[str, Any]:
        """The body of Rasa's ``POST /conversations/{id}/trigger_intent``."""
        return {"name": INTENT, "entities": {"order_id": self.order_id, "event": self.event}}


def notify(session: Session, order: m.Order, event: str, occurrence: Union[int, str, None] = None) -> Optional[int]:
    """Queue ``event`` for the order's conversation; None when it was announced already or the order
    has no conversation (a console order). ``occurrence`` tells repeatable events apart (the payment
    that was declined: a second link may be declined too)."""
    if event not in EVENTS:
        raise InvalidInput(f"unknown order event {event!r}")
    if order.conversation_id is None:
        return None
    key = f"order:{order.id}:{event}" + ("" if occurrence is None else f":{occurrence}")
    return insert_unless_duplicate(session, N(conversation_id=order.conversation_id, order_id=order.id, event=event,
                                              dedupe_key=key, status="queued", next_attempt_at=now()))


def claim_due(session: Session, limit: int = 20) -> List[Due]:
    """Due rows with nothing earlier of their conversation still waiting, now marked as being sent."""
    earlier = aliased(N)
    waiting_before = exists().where(and_(earlier.conversation_id == N.conversation_id, earlier.id < N.id,
                                         earlier.status.in_(("queued", "sending"))))
    rows = session.execute(
        select(N).where(N.status == "queued", N.next_attempt_at <= now(), ~waiting_before).order_by(N.id).limit(limit)
    ).scalars().all()
    claimed = []
    for row in rows:
        due = Due(row.id, row.conversation_id, row.order_id, row.event, row.attempts + 1)  # before the UPDATE,
        # which the ORM writes back into ``row``
        if session.execute(update(N).where(N.id == row.id, N.status == "queued")
                           .values(status="sending", attempts=N.attempts + 1)).rowcount == 1:
            claimed.append(due)
    return claimed


def mark_sent(session: Session, due: Due) -> None:
    session.execute(update(N).where(N.id == due.id).values(status="sent", sent_at=now(), last_error=None))


def mark_failed(session: Session, due: Due, error: str, retryable: bool) -> str:
    """Retry later with backoff, or stop (a refusal, or too many attempts); the row's new status."""
    if retryable and due.attempts < MAX_ATTEMPTS:
        status, next_at = "queued", now() + retry_delay(due.attempts)
    else:
        status, next_at = ("given_up" if retryable else "failed"), now()
        log.error("notification %s (%s of order %s): giving up after %d attempt(s): %s", due.id, due.event,
                  due.order_id, due.attempts, error)
    session.execute(update(N).where(N.id == due.id)
                    .values(status=status, next_attempt_at=next_at, last_error=error[:1000]))
    return status


def abandon_interrupted(session: Session) -> int:
    """Rows a crash left in "sending" may have reached Rasa: they are not sent again."""
    count = session.execute(update(N).where(N.status == "sending").values(
        status="given_up", last_error="interrupted while sending; not resent to avoid a duplicate")).rowcount
    if count:
        log.warning("notifications: %d interrupted while sending are not resent", count)
    return count
