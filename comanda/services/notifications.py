"""Proactive order updates ("¡Pagado! Tu número es C-042", "tu pedido está listo"): durable rows
written in the same transaction as the change they announce, delivered once to Rasa's external
events API by the back office's dispatcher (backoffice/dispatch.py).

A dedupe key per announcement (``order:42:paid``) makes announcing twice a no-op. The rows are a
queue with the WhatsApp outbox's mechanics (comanda.services.outbox: claim_queued, schedule_retry,
give_up_expired): claimed with a conditional update (queued → sending) for LEASE_SECONDS, so several
dispatchers never deliver one twice, and a conversation's rows go out in order: "paid" before
"ready". A row still "sending" past its lease belonged to a dispatcher that died and may have reached
Rasa: it is given up, not resent (a gap is better than a duplicate), and the conversation goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from sqlalchemy import update
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import now
from comanda.db import insert_unless_duplicate
from comanda.enums import NotificationEvent, NotificationStatus
from comanda.errors import InvalidInput
from comanda.services import outbox

EVENTS = NotificationEvent.values()
INTENT = "EXTERNAL_order_update"
MAX_ATTEMPTS = 10  # 2 s, 4 s, ... then 5 minutes apart: about 20 minutes of Rasa being down
LEASE_SECONDS = 60  # longer than one delivery takes (backoffice.dispatch waits 10 s for Rasa)
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
    return insert_unless_duplicate(
        session,
        N(
            conversation_id=order.conversation_id,
            order_id=order.id,
            event=event,
            dedupe_key=key,
            status=NotificationStatus.QUEUED,
            next_attempt_at=now(),
        ),
    )


def claim_due(session: Session, limit: int = 20) -> List[Due]:
    """Due rows with nothing earlier of their conversation still waiting, now marked as being sent."""
    return [
        Due(row.id, row.conversation_id, row.order_id, row.event, attempts)
        for row, attempts in outbox.claim_queued(session, N, "notifications", limit, LEASE_SECONDS)
    ]


def mark_sent(session: Session, due: Due) -> None:
    session.execute(
        update(N).where(N.id == due.id).values(status=NotificationStatus.SENT, sent_at=now(), last_error=None)
    )


def mark_failed(session: Session, due: Due, error: str, retryable: bool) -> str:
    """Retry later with backoff, or stop (a refusal, or too many attempts); the row's new status."""
    return outbox.schedule_retry(
        session,
        N,
        due.id,
        due.attempts,
        MAX_ATTEMPTS,
        error,
        retryable,
        f"notification {due.id} ({due.event} of order {due.order_id})",
    )


def abandon_interrupted(session: Session) -> int:
    """Rows a dispatcher that died left in "sending" (their lease ran out) may have reached Rasa: they are
    given up, never sent again."""
    return outbox.give_up_expired(session, N, "notifications")
