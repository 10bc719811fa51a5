"""Handing a conversation to a person: a ticket staff see in their inbox."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.services.customers import conversation_for


def open_ticket(session: Session, conversation_id: str, reason: str, summary: Optional[str] = None) -> m.HandoffTicket:
    """Open a ticket, or return the conversation's ticket that is still open."""
    conversation = conversation_for(session, conversation_id)
    ticket = session.execute(
        select(m.HandoffTicket).where(
            m.HandoffTicket.conversation_id == conversation_id, m.HandoffTicket.status != "closed"
        )
    ).scalar_one_or_none()
    if ticket is None:
        ticket = m.HandoffTicket(
            store_id=conversation.store_id,
            customer_id=conversation.customer_id,
            conversation_id=conversation_id,
            reason=reason,
            summary=summary,
        )
        session.add(ticket)
        session.flush()
    return ticket
