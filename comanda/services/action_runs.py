"""Each step of a conversation's turn is done once: the answer of an action run is kept with its work.

A run is keyed by (conversation, the inbound message the turn answers, the action, how many actions ran
since that message). It is written in the transaction of the action's work, so either both are there or
neither: when Rasa calls the action again for the same step (the action server died after committing,
or the call timed out), the stored answer is replayed and nothing is done twice — an order is not
placed again, the customer gets the same payment link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Dict, Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate

R = m.ActionRun
# How long an answer is kept for a retry: Rasa retries within seconds; a day covers any restart.
KEPT_FOR = timedelta(days=1)


@dataclass(frozen=True)
class RunKey:
    conversation_id: str
    message_id: str
    action_name: str
    position: int


def stored(session: Session, key: RunKey) -> Optional[Dict[str, Any]]:
    """The answer a run of this step already gave, or None."""
    return session.execute(
        select(R.response).where(
            R.conversation_id == key.conversation_id,
            R.message_id == key.message_id,
            R.action_name == key.action_name,
            R.position == key.position,
        )
    ).scalar_one_or_none()


def record(session: Session, key: RunKey, response: Dict[str, Any]) -> bool:
    """Keep this run's answer; False when another run of the same step kept one first (this run's work must
    then be rolled back and that answer replayed). Older answers of the conversation are dropped."""
    session.execute(delete(R).where(R.conversation_id == key.conversation_id, R.created_at < clock.now() - KEPT_FOR))
    row = R(
        conversation_id=key.conversation_id,
        message_id=key.message_id,
        action_name=key.action_name,
        position=key.position,
        response=response,
    )
    return insert_unless_duplicate(session, row) is not None
