"""The durable inbox: every inbound message is a row before the webhook is acknowledged.

A message id is stored once per channel, so redeliveries are dropped; rows that were acknowledged
but not processed (a crash between the 200 and the reply) are found again at start-up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, Optional

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import now
from comanda.db import insert_unless_duplicate

UNFINISHED = ("received", "processing")


def record_inbound(
    session: Session,
    channel: str,
    external_id: str,
    message_type: str,
    payload: Dict[str, Any],
    store_id: Optional[str] = None,
    conversation_id: Optional[str] = None,
    sender: Optional[str] = None,
    status: str = "received",
) -> Optional[int]:
    """Store a message; None when this channel already has it (a redelivery)."""
    return insert_unless_duplicate(
        session,
        m.InboundMessage(
            channel=channel,
            external_id=external_id,
            message_type=message_type,
            payload=payload,
            store_id=store_id,
            conversation_id=conversation_id,
            sender=sender,
            status=status,
        ),
    )


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
        .values(status=status, processed_at=now(), error=error[:1000] if error else None)
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
