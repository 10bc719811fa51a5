"""Handing a conversation to a person: tickets staff see, one per kind of request.

A ticket is ``waiting`` until a person claims it (or is assigned it), ``open`` while that one person owns
the chat, and ``resolved`` at the end. The bot is paused for the conversation while it has a waiting or
open ticket (the chat's handoff action returns Rasa's ``ConversationPaused``; claiming pauses it again in
case the customer had carried on with the bot; resolving the last one resumes it with
``ConversationResumed`` through Rasa's HTTP API). A ticket nobody took within the business's
``handoff_unanswered_minutes`` is due for a notice: the customer is told and may keep waiting or carry
on with the bot.

Ownership changes are conditional UPDATEs (``WHERE status = 'waiting'``, ``WHERE assigned_to = me``): of
two people claiming one chat at the same moment exactly one wins, on SQLite and PostgreSQL alike. Reports
read ``created_at``, ``claimed_at``, ``first_response_at`` and ``resolved_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import List, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.enums import HandoffReason, HandoffStatus, StaffRole
from comanda.errors import ComandaError, InvalidInput, NotFound
from comanda.services import audit, staff
from comanda.services.audit import Actor
from comanda.services.customers import conversation_for
from comanda.services.staff import StaffMember

SUMMARY_LIMIT = 1000
T = m.HandoffTicket
OPEN = (HandoffStatus.WAITING, HandoffStatus.OPEN)  # the bot stays quiet while a ticket is in one of these
LIST_LIMIT = 200


class TicketTaken(ComandaError):
    """Another person owns the chat (409): claim, reply and resolve are theirs."""

    code = "handoff_taken"


class TicketResolved(ComandaError):
    """The ticket is resolved already (409): the bot has the chat again."""

    code = "handoff_resolved"


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
        status=HandoffStatus.WAITING,
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


def visible_ticket(session: Session, who: StaffMember, ticket_id: int) -> m.HandoffTicket:
    """The ticket when it belongs to one of ``who``'s stores; NotFound otherwise (as if it did not exist)."""
    ticket = session.execute(staff.scoped(select(T).where(T.id == ticket_id), T.store_id, who)).scalar_one_or_none()
    if ticket is None:
        raise NotFound(f"no handoff ticket {ticket_id}", ticket_id=ticket_id)
    return ticket


def list_tickets(
    session: Session, who: StaffMember, store_id: Optional[str] = None, status: Optional[str] = None
) -> List[m.HandoffTicket]:
    """The member's tickets (one store, one status, or all), newest first: a fresh request on top."""
    query = staff.scoped(select(T), T.store_id, who).where(T.store_id.in_(staff.store_filter(who, store_id)))
    if status:
        parsed = HandoffStatus.parse(status)
        if parsed is None:
            raise InvalidInput(f"status must be one of {', '.join(HandoffStatus.values())}, not {status!r}")
        query = query.where(T.status == parsed.value)
    return list(session.execute(query.order_by(T.created_at.desc(), T.id.desc()).limit(LIST_LIMIT)).scalars())


def _taken(ticket: m.HandoffTicket) -> ComandaError:
    if ticket.status == HandoffStatus.RESOLVED:
        return TicketResolved(f"ticket {ticket.id} is resolved", ticket_id=ticket.id)
    return TicketTaken(f"ticket {ticket.id} belongs to someone else", ticket_id=ticket.id, owner=ticket.assigned_to)


def claim(session: Session, who: StaffMember, actor: Actor, ticket_id: int) -> m.HandoffTicket:
    """``who`` owns the chat from now: a waiting ticket only (claiming one's own again changes nothing);
    of two claims at the same moment, one wins and the other is ``TicketTaken``."""
    ticket = visible_ticket(session, who, ticket_id)
    now = clock.now()
    won = session.execute(
        update(T)
        .where(T.id == ticket.id, T.status == HandoffStatus.WAITING.value)
        .values(status=HandoffStatus.OPEN.value, assigned_to=who.id, claimed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(ticket)
    if won:
        audit.record(session, actor, "handoff.claim", "handoff_ticket", ticket.id)
    elif not (ticket.status == HandoffStatus.OPEN and ticket.assigned_to == who.id):
        raise _taken(ticket)
    return ticket


def take_for_reply(session: Session, who: StaffMember, actor: Actor, ticket: m.HandoffTicket) -> None:
    """Answering a waiting ticket claims it; one owned by someone else, or resolved, cannot be answered."""
    if ticket.status == HandoffStatus.WAITING:
        claim(session, who, actor, ticket.id)
    elif not (ticket.status == HandoffStatus.OPEN and ticket.assigned_to == who.id):
        raise _taken(ticket)


def assign(session: Session, who: StaffMember, actor: Actor, ticket_id: int, colleague_id: int) -> m.HandoffTicket:
    """Give the chat to a colleague who works at its store: a waiting ticket, or one's own; owners and
    managers may also move a colleague's. Conditional on the owner read, so a claim racing in wins or
    loses cleanly."""
    ticket = visible_ticket(session, who, ticket_id)
    colleague_user = session.get(m.StaffUser, colleague_id)
    if colleague_user is None or not colleague_user.active or colleague_user.business_id != who.business_id:
        raise InvalidInput(f"no active colleague {colleague_id}")
    colleague = staff.member(session, colleague_user)
    if not colleague.sees(ticket.store_id):
        raise InvalidInput(f"{colleague.name} does not work at this store")
    if ticket.status == HandoffStatus.RESOLVED:
        raise _taken(ticket)
    moves_others = who.role in (StaffRole.OWNER, StaffRole.MANAGER)
    if ticket.status == HandoffStatus.OPEN and ticket.assigned_to != who.id and not moves_others:
        raise _taken(ticket)
    now = clock.now()
    owner = T.assigned_to.is_(None) if ticket.assigned_to is None else T.assigned_to == ticket.assigned_to
    moved = session.execute(
        update(T)
        .where(T.id == ticket.id, T.status == ticket.status, owner)
        .values(
            status=HandoffStatus.OPEN.value,
            assigned_to=colleague.id,
            claimed_at=ticket.claimed_at or now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(ticket)
    if not moved:
        raise _taken(ticket)
    audit.record(session, actor, "handoff.assign", "handoff_ticket", ticket.id, to=colleague.id)
    return ticket


def resolve(session: Session, ticket_id: int, actor: Actor, who: Optional[StaffMember] = None) -> bool:
    """Resolve a ticket; True when it was the conversation's last open one (the bot may speak again).
    Staff (``who``) resolve a waiting ticket or their own; owners and managers anyone's. The command line
    (no ``who``) resolves any. Resolving a resolved ticket changes nothing."""
    ticket = visible_ticket(session, who, ticket_id) if who else get_ticket(session, ticket_id)
    if ticket.status == HandoffStatus.RESOLVED:
        return not has_open_ticket(session, ticket.conversation_id)
    where = [T.id == ticket.id, T.status.in_(OPEN)]
    if who is not None and who.role == StaffRole.STAFF:
        where.append(or_(T.status == HandoffStatus.WAITING.value, T.assigned_to == who.id))
    now = clock.now()
    closed = session.execute(
        update(T)
        .where(*where)
        .values(
            status=HandoffStatus.RESOLVED.value,
            resolved_at=now,
            resolved_by=who.id if who else None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(ticket)
    if not closed:
        if ticket.status != HandoffStatus.RESOLVED:
            raise _taken(ticket)
    else:
        audit.record(session, actor, "handoff.resolve", "handoff_ticket", ticket.id)
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
        .where(T.status == HandoffStatus.WAITING, T.unanswered_notice_at.is_(None))
        .order_by(T.created_at, T.id)
    ).all()
    return [ticket for ticket, minutes in rows if ticket.created_at + timedelta(minutes=minutes) <= now][:limit]


def mark_unanswered_notice(session: Session, ticket_id: int) -> bool:
    """Claim the notice for a ticket: True for exactly one caller, however many sweeps run."""
    return bool(
        session.execute(
            update(T)
            .where(T.id == ticket_id, T.status == HandoffStatus.WAITING, T.unanswered_notice_at.is_(None))
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
