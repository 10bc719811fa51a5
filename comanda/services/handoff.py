"""Handing a conversation to a person: tickets staff see, one per kind of request.

While a conversation has an open ticket the bot is paused for it (the chat's handoff action returns
Rasa's ``ConversationPaused``; resolving the last open ticket resumes it with ``ConversationResumed``
through Rasa's HTTP API). A ticket nobody took within the business's ``handoff_unanswered_minutes``
is due for a notice: the customer is told and may keep waiting or carry on with the bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import List, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.enums import HandoffReason, HandoffStatus
from comanda.errors import NotFound
from comanda.services.customers import conversation_for

SUMMARY_LIMIT = 1000
T = m.HandoffTicket
OPEN = (HandoffStatus.OPEN, HandoffStatus.ASSIGNED)


# What a customer's request is a ticket for, by the intent that asks for it (the chat's handoff action
# and the WhatsApp channel, for a request made while a person has the conversation).
REASON_BY_INTENT = {
    "human_handoff": HandoffReason.REQUESTED,
    "complaint": HandoffReason.COMPLAINT,
    "request_return": HandoffReason.RETURN,
    "privacy_request": HandoffReason.PRIVACY,
}


@dataclass(frozen=True)
class Opened:
    ticket: m.HandoffTicket
    new: bool  # False: the request joined an open ticket of the same kind


def open_ticket(session: Session, conversation_id: str, reason: str, summary: Optional[str] = None) -> Opened:
    """A ticket for this kind of request: a new one, or the open ticket of the same reason with this
    request's words added to its summary. A different request never hides in another's ticket."""
    conversation = conversation_for(session, conversation_id)
    ticket = session.execute(
        select(T)
        .where(T.conversation_id == conversation_id, T.reason == reason, T.status.in_(OPEN))
        .order_by(T.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if ticket is not None:
        if summary and summary not in (ticket.summary or ""):
            ticket.summary = " · ".join(filter(None, [ticket.summary, summary]))[:SUMMARY_LIMIT]
        session.flush()
        return Opened(ticket, new=False)
    ticket = T(
        store_id=conversation.store_id,
        customer_id=conversation.customer_id,
        conversation_id=conversation_id,
        reason=reason,
        status=HandoffStatus.OPEN,
        summary=(summary or "")[:SUMMARY_LIMIT] or None,
    )
    session.add(ticket)
    session.flush()
    return Opened(ticket, new=True)


def note_paused_request(session: Session, conversation_id: str, intent: Optional[str], text: str) -> Optional[Opened]:
    """A message to a paused conversation (the bot is quiet; staff read it) that asks for a kind of request
    (a return after a privacy request) gets its own ticket, or joins the open one of its kind, visibly in
    its summary. Asking for a person while one has the chat ("¿me hacen caso?") opens nothing new."""
    reason = REASON_BY_INTENT.get(intent or "")
    if reason is None or reason == HandoffReason.REQUESTED or not has_open_ticket(session, conversation_id):
        return None
    return open_ticket(session, conversation_id, reason, summary=text)


def open_tickets(session: Session, store_id: Optional[str] = None) -> List[m.HandoffTicket]:
    """Tickets waiting for a person, oldest first."""
    query = select(T).where(T.status.in_(OPEN))
    if store_id:
        query = query.where(T.store_id == store_id)
    return list(session.execute(query.order_by(T.created_at, T.id)).scalars())


def get_ticket(session: Session, ticket_id: int) -> m.HandoffTicket:
    ticket = session.get(T, ticket_id)
    if ticket is None:
        raise NotFound(f"no handoff ticket {ticket_id}", ticket_id=ticket_id)
    return ticket


def resolve(session: Session, ticket_id: int, actor: str) -> bool:
    """Close a ticket; True when it was the conversation's last open one (the bot may speak again).
    Closing a closed ticket changes nothing."""
    ticket = get_ticket(session, ticket_id)
    closed = session.execute(
        update(T)
        .where(T.id == ticket.id, T.status.in_(OPEN))
        .values(status=HandoffStatus.CLOSED, closed_at=clock.now(), closed_by=actor)
    ).rowcount
    session.expire(ticket)
    if closed:
        session.add(
            m.AuditEvent(actor=actor, action="handoff.resolve", entity_type="handoff_ticket", entity_id=str(ticket.id))
        )
    return not has_open_ticket(session, ticket.conversation_id)


def has_open_ticket(session: Session, conversation_id: str) -> bool:
    return (
        session.execute(select(T.id).where(T.conversation_id == conversation_id, T.status.in_(OPEN)).limit(1)).first()
        is not None
    )


def unanswered(session: Session, limit: int = 20) -> List[m.HandoffTicket]:
    """Open tickets nobody took within their business's waiting time, whose customer was not told yet."""
    now = clock.now()
    rows = session.execute(
        select(T, m.Business.handoff_unanswered_minutes)
        .join(m.Store, m.Store.id == T.store_id)
        .join(m.Business, m.Business.id == m.Store.business_id)
        .where(T.status == HandoffStatus.OPEN, T.unanswered_notice_at.is_(None))
        .order_by(T.created_at, T.id)
    ).all()
    return [ticket for ticket, minutes in rows if ticket.created_at + timedelta(minutes=minutes) <= now][:limit]


def mark_unanswered_notice(session: Session, ticket_id: int) -> bool:
    """Claim the notice for a ticket: True for exactly one caller, however many sweeps run."""
    return bool(
        session.execute(
            update(T)
            .where(T.id == ticket_id, T.status == HandoffStatus.OPEN, T.unanswered_notice_at.is_(None))
            .values(unanswered_notice_at=clock.now())
        ).rowcount
    )


def latest_unanswered_notice(session: Session, conversation_id: str) -> Optional[m.HandoffTicket]:
    """The conversation's open ticket whose customer was told nobody had answered yet."""
    return session.execute(
        select(T)
        .where(T.conversation_id == conversation_id, T.status.in_(OPEN), T.unanswered_notice_at.is_not(None))
        .order_by(T.unanswered_notice_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def unmark_unanswered_notice(session: Session, ticket_ids: List[int]) -> None:
    """The notice did not reach the customer: the tickets are due again."""
    session.execute(update(T).where(T.id.in_(ticket_ids)).values(unanswered_notice_at=None))
