"""The durable inbox: every inbound message is a row before the webhook is acknowledged.

A message id is stored once per channel, so redeliveries are dropped; rows that were acknowledged
but not processed (a crash between the 200 and the reply) are found again at start-up. What comes
from outside is fitted to the columns before it is written (NUL characters and lone surrogates,
which PostgreSQL or the UTF-8 codec refuse, and lengths), so one odd message cannot fail a commit.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any, Dict, List, Optional

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import now
from comanda.db import insert_unless_duplicate
from comanda.enums import InboxStatus, values_in

UNFINISHED = values_in((InboxStatus.RECEIVED, InboxStatus.PROCESSING))
SURROGATE = re.compile("[\ud800-\udfff]")  # in a Python str, a surrogate is always a lone one


def record_inbound(
    session: Session,
    channel: str,
    external_id: str,
    message_type: str,
    payload: Dict[str, Any],
    store_id: Optional[str] = None,
    conversation_id: Optional[str] = None,
    sender: Optional[str] = None,
    status: str = InboxStatus.RECEIVED,
    error: Optional[str] = None,
) -> Optional[int]:
    """Store a message; None when this channel already has it (a redelivery)."""
    return insert_unless_duplicate(
        session,
        m.InboundMessage(
            channel=channel,
            external_id=stored_id(external_id),
            message_type=_fit(message_type, m.InboundMessage.message_type) or "unknown",
            payload=clean(payload),
            store_id=store_id,
            conversation_id=conversation_id,
            sender=_fit(sender, m.InboundMessage.sender),
            status=status,
            error=_fit(error, m.InboundMessage.error),
        ),
    )


def record_unstorable(session: Session, channel: str, external_id: str, what: str, error: str) -> Optional[int]:
    """A message whose row could not be written: parked with the error and a description for staff, so
    the webhook can be acknowledged (Meta would retry it for days) and its redeliveries dropped."""
    return record_inbound(
        session,
        channel,
        external_id,
        "unknown",
        {"unstorable": clean_text(what)[:10_000]},
        status=InboxStatus.PARKED,
        error=error,
    )


def stored_id(external_id: str) -> str:
    """The id as the column keeps it: an id longer than the column is kept as its SHA-256 (still unique,
    and the same for every redelivery)."""
    external_id = clean_text(external_id)
    limit = m.InboundMessage.external_id.type.length
    if len(external_id) <= limit:
        return external_id
    return "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()


def clean_text(text: str) -> str:
    """Text every database and the UTF-8 codec take: NUL characters dropped, lone surrogates replaced."""
    return SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def clean(value: Any) -> Any:
    """``clean_text`` through a JSON value (keys too)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): clean(v) for k, v in value.items()}
    return value


def _fit(value: Optional[str], column: Any) -> Optional[str]:
    return None if value is None else clean_text(value)[: column.type.length]


STALE_AFTER = timedelta(minutes=2)


def claim(session: Session, message_id: int, recovering: bool = False) -> bool:
    """Take a message for processing; False when another worker has it or it is done.

    At start-up (``recovering``) a message left "processing" for over STALE_AFTER is taken too: the
    process that had it died. A younger one may still be in the hands of another replica.
    """
    takeable = m.InboundMessage.status == "received"
    if recovering:
        takeable = or_(
            takeable, and_(m.InboundMessage.status == "processing", m.InboundMessage.received_at < now() - STALE_AFTER)
        )
    result = session.execute(
        update(m.InboundMessage)
        .where(m.InboundMessage.id == message_id, takeable)
        .values(status="processing", attempts=m.InboundMessage.attempts + 1)
    )
    return result.rowcount == 1


def finish(session: Session, message_id: int, status: str = "processed", error: Optional[str] = None) -> None:
    session.execute(
        update(m.InboundMessage)
        .where(m.InboundMessage.id == message_id)
        .values(status=status, processed_at=now(), error=_fit(error, m.InboundMessage.error))
    )


def unfinished(session: Session, channel: str) -> List[m.InboundMessage]:
    """Messages acknowledged but never answered, oldest first."""
    return (
        session.execute(
            select(m.InboundMessage)
            .where(m.InboundMessage.channel == channel, m.InboundMessage.status.in_(UNFINISHED))
            .order_by(m.InboundMessage.id)
        )
        .scalars()
        .all()
    )
