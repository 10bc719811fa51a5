"""Handoff tickets nobody took in time: the customer is told and chooses (comanda.services.handoff).

Every COMANDA_HANDOFF_SWEEP_SECONDS the back office finds open tickets older than their business's
``handoff_unanswered_minutes`` whose customer was not told yet, claims each notice once (several back
offices never tell twice), resumes the conversation through Rasa's HTTP API and triggers
``EXTERNAL_handoff_unanswered``: the bot offers to keep waiting (paused again) or to carry on with it.
When Rasa cannot be reached the claim is given back and the next round tries again.
"""

from __future__ import annotations

import logging
from typing import Dict, List

from comanda.db import transaction
from comanda.services import handoff
from integrations.rasa_api import RasaApi, RasaUnavailable

log = logging.getLogger(__name__)
INTENT = "EXTERNAL_handoff_unanswered"


def notify_unanswered(api: RasaApi) -> int:
    """Tell each conversation with a ticket nobody took; how many were told."""
    with transaction() as session:
        due: Dict[str, List[int]] = {}
        for ticket in handoff.unanswered(session):
            due.setdefault(ticket.conversation_id, []).append(ticket.id)
    told = 0
    for conversation_id, ticket_ids in due.items():
        with transaction() as session:
            claimed = [ticket_id for ticket_id in ticket_ids if handoff.mark_unanswered_notice(session, ticket_id)]
        if not claimed:
            continue
        try:
            api.resume(conversation_id)
            api.trigger_intent(conversation_id, INTENT)
        except RasaUnavailable as exc:
            log.warning("handoff notice for %s not delivered, trying again later: %s", conversation_id, exc.message)
            with transaction() as session:
                handoff.unmark_unanswered_notice(session, claimed)
            continue
        told += 1
    return told


def notify_once() -> int:
    return notify_unanswered(RasaApi.from_settings())
