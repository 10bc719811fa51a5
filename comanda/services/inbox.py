"""The durable inbox: every inbound message is a row before the webhook is acknowledged.

A message id is stored once per channel, so redeliveries are dropped. What comes from outside is
fitted to the columns before it is written (NUL characters and lone surrogates, which PostgreSQL or
the UTF-8 codec refuse, and lengths), so one odd message cannot fail a commit.

Leases: the process that acknowledged a message holds it (``lease_owner``) until ``lease_until``, and
renews the leases of everything it holds while it works. A process that dies stops renewing, so its
messages' leases run out and any replica takes them over (``expired``, then ``claim``): a message
acknowledged but not answered is answered within a lease after a crash, whether the process comes back
or not. Each claim counts an attempt, so a message that kills every process taking it can be parked.

Order: a customer's message waits until their earlier ones are answered (``earlier_unfinished``), whichever
replica holds those: a balancer spreads one customer's messages over the replicas, and a message held by a
replica that died is answered only when its lease runs out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Collection, Dict, List, Optional, Sequence, Set

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from comanda import models as m
from comanda.clock import now
from comanda.db import insert_unless_duplicate
from comanda.enums import InboxStatus, values_in

UNFINISHED = values_in((InboxStatus.RECEIVED, InboxStatus.PROCESSING))
SURROGATE = re.compile("[\ud800-\udfff]")  # in a Python str, a surrogate is always a lone one


@dataclass(frozen=True)
class NewMessage:
    """An inbound message to store: what ``record_inbound`` takes, for ``record_inbound_many``."""

    external_id: str
    message_type: str
    payload: Dict[str, Any]
    sender: Optional[str] = None
    status: str = InboxStatus.RECEIVED
    lease_owner: Optional[str] = None


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
    lease_owner: Optional[str] = None,
    lease_seconds: float = 0,
) -> Optional[int]:
    """Store a message, held by ``lease_owner`` for ``lease_seconds``; None when this channel already has it
    (a redelivery)."""
    message = NewMessage(external_id, message_type, payload, sender, status, lease_owner)
    row = m.InboundMessage(
        **_columns(channel, message, lease_seconds),
        store_id=store_id,
        conversation_id=conversation_id,
        error=_fit(error, m.InboundMessage.error),
    )
    return insert_unless_duplicate(session, row)


def record_inbound_many(
    session: Session, channel: str, messages: Sequence[NewMessage], lease_seconds: float = 0
) -> List[Optional[int]]:
    """Store a burst of messages with one INSERT: each row's id, in order, or None for a redelivery (already
    stored, or earlier in the same burst). ``record_inbound``'s savepoint per message costs three round trips
    each on PostgreSQL, which a profile of a webhook burst showed as most of the acknowledgement's time. A
    writer storing the same message at the same moment makes the INSERT fail (unique violation): the caller
    then stores the burst one message at a time."""
    columns = [_columns(channel, message, lease_seconds) for message in messages]
    new: Dict[str, Dict[str, Any]] = {}
    for row in columns:  # the first of each id, in arrival order (the ids' order is the answering order)
        new.setdefault(row["external_id"], row)
    inbound = m.InboundMessage
    already = select(inbound.external_id).where(inbound.channel == channel, inbound.external_id.in_(list(new)))
    for external_id in session.execute(already).scalars():
        del new[external_id]
    row_ids: Dict[str, int] = {}
    if new:
        session.execute(insert(inbound), list(new.values()))
        written = select(inbound.external_id, inbound.id).where(
            inbound.channel == channel, inbound.external_id.in_(list(new))
        )
        row_ids = dict(session.execute(written).all())
    return [row_ids.pop(row["external_id"], None) for row in columns]  # a repeat of an id gets None


def _columns(channel: str, message: NewMessage, lease_seconds: float) -> Dict[str, Any]:
    """A new row's columns, fitted to them (see the module)."""
    return {
        "channel": channel,
        "external_id": stored_id(message.external_id),
        "message_type": _fit(message.message_type, m.InboundMessage.message_type) or "unknown",
        "payload": clean(message.payload),
        "sender": _fit(message.sender, m.InboundMessage.sender),
        "status": message.status,
        "lease_owner": message.lease_owner,
        "lease_until": now() + timedelta(seconds=lease_seconds) if message.lease_owner else None,
    }


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


def _takeable(owner: str) -> Any:
    """Unfinished, and held by ``owner``, by nobody, or by a process whose lease ran out."""
    lease = m.InboundMessage.lease_until
    return and_(
        m.InboundMessage.status.in_(UNFINISHED),
        or_(m.InboundMessage.lease_owner == owner, lease.is_(None), lease < now()),
    )


def claim(session: Session, message_id: int, owner: str, lease_seconds: float) -> Optional[int]:
    """Take a message for processing, held by ``owner`` for ``lease_seconds``: this attempt's number, or
    None when it is done or another live process holds it."""
    result = session.execute(
        update(m.InboundMessage)
        .where(m.InboundMessage.id == message_id, _takeable(owner))
        .values(
            status=InboxStatus.PROCESSING,
            attempts=m.InboundMessage.attempts + 1,
            lease_owner=owner,
            lease_until=now() + timedelta(seconds=lease_seconds),
        )
    )
    if result.rowcount != 1:
        return None
    return session.execute(select(m.InboundMessage.attempts).where(m.InboundMessage.id == message_id)).scalar_one()


def earlier_unfinished(session: Session, message_ids: Collection[int]) -> Set[int]:
    """Which of these messages have an earlier one of the same sender on their channel still to be answered:
    a customer's messages are answered in the order they came, whichever replica holds each (the sender
    alone, not the number written to: the rare customer of two branches has the two chats answered one
    message at a time). One query for many messages, so that a burst asks once, not once per message."""
    if not message_ids:
        return set()
    this, earlier = aliased(m.InboundMessage), aliased(m.InboundMessage)
    waiting = exists().where(
        earlier.channel == this.channel,
        earlier.sender == this.sender,
        earlier.id < this.id,
        earlier.status.in_(UNFINISHED),
    )
    return set(session.execute(select(this.id).where(this.id.in_(sorted(message_ids)), waiting)).scalars())


def renew(session: Session, owner: str, lease_seconds: float, only: Optional[Collection[int]] = None) -> int:
    """Extend the lease of every unfinished message ``owner`` holds (only those of ``only`` when given: the
    ones it is really working on, so that a row it stored but lost track of, say a commit that went
    through while the connection broke, expires and is taken over); how many it still holds."""
    query = update(m.InboundMessage).where(
        m.InboundMessage.lease_owner == owner, m.InboundMessage.status.in_(UNFINISHED)
    )
    if only is not None:
        if not only:
            return 0
        query = query.where(m.InboundMessage.id.in_(sorted(only)))
    return session.execute(query.values(lease_until=now() + timedelta(seconds=lease_seconds))).rowcount


def finish(session: Session, message_id: int, status: str = InboxStatus.PROCESSED, error: Optional[str] = None) -> None:
    session.execute(
        update(m.InboundMessage)
        .where(m.InboundMessage.id == message_id)
        .values(
            status=status,
            processed_at=now(),
            error=_fit(error, m.InboundMessage.error),
            lease_owner=None,
            lease_until=None,
        )
    )


def release(session: Session, message_id: int, error: str) -> None:
    """Give a message up for now, with the error that stopped it: the next lease round takes it again."""
    session.execute(
        update(m.InboundMessage)
        .where(m.InboundMessage.id == message_id)
        .values(lease_owner=None, lease_until=None, error=_fit(error, m.InboundMessage.error))
    )


def expired(session: Session, channel: str, limit: int = 100) -> List[m.InboundMessage]:
    """Messages acknowledged but not answered whose holder stopped renewing (or that nobody holds), oldest
    first: any replica may take them over."""
    lease = m.InboundMessage.lease_until
    return (
        session.execute(
            select(m.InboundMessage)
            .where(
                m.InboundMessage.channel == channel,
                m.InboundMessage.status.in_(UNFINISHED),
                or_(lease.is_(None), lease < now()),
            )
            .order_by(m.InboundMessage.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
