"""Handoffs on Rasa's side: tickets nobody took in time (the customer is told and chooses), the bot paused
when staff claim a chat and resumed when they resolve it, and staff replies appended to the tracker.

Every COMANDA_HANDOFF_SWEEP_SECONDS the back office finds open tickets older than their business's
``handoff_unanswered_minutes`` whose customer was not told yet, claims each notice once (several back
offices never tell twice), resumes the conversation through Rasa's HTTP API and triggers
``EXTERNAL_handoff_unanswered``: the bot offers to keep waiting (paused again) or to carry on with it.
When Rasa cannot be reached the claim is given back and the next round tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from backoffice.handoff_view import ticket_summary
from comanda import models as m
from comanda.db import transaction
from comanda.enums import HandoffStatus
from comanda.services import handoff, handoff_messages
from comanda.services.audit import Actor
from comanda.services.handoff_messages import Outgoing
from comanda.services.staff import StaffMember
from integrations.rasa_api import RasaApi, RasaUnavailable
from integrations.whatsapp.messages import template_message, text_messages

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


# --- staff taking over: Rasa's side of claims, replies and resolutions ---------------------------

RESOLVED_RESPONSE = "utter_handoff_resolved"  # domain/handoff_inbox.yml
TRACK_AFTER_SECONDS = 10  # the sweep leaves newer replies to the request that sent them


def compose(outgoing: Outgoing) -> Dict[str, Any]:
    """The Graph message of a staff reply: a text, or an approved template with its parameters."""
    if outgoing.template is not None:
        template = outgoing.template
        return template_message(outgoing.recipient, template.name, template.language, list(outgoing.params))
    return text_messages(outgoing.recipient, outgoing.text)[0]


def pause(api: RasaApi, conversation_id: str) -> Optional[str]:
    """The bot stays silent while a person owns the chat; why it could not be told, or None."""
    try:
        api.pause(conversation_id)
    except RasaUnavailable as exc:
        log.warning("could not pause the bot for %s: %s", conversation_id, exc.message)
        return exc.message
    return None


def resume(api: RasaApi, conversation_id: str) -> Optional[str]:
    """The bot answers again and the customer is told so in their language; why not, or None (then
    `comanda handoffs resolve ID` finishes it once Rasa is back)."""
    try:
        api.resume_saying(conversation_id, RESOLVED_RESPONSE)
    except RasaUnavailable as exc:
        log.warning("could not resume the bot for %s: %s", conversation_id, exc.message)
        return exc.message
    return None


def track_reply(api: RasaApi, reply_id: int) -> bool:
    """Append one staff reply to Rasa's tracker (a BotUttered with metadata from=staff, not sent again):
    claimed first, so a sweep and a request never append it twice; given back when Rasa is away."""
    with transaction() as session:
        reply = handoff_messages.claim_tracking(session, reply_id)
        if reply is None:
            return False
        conversation_id = session.get(m.HandoffTicket, reply.ticket_id).conversation_id
        event = bot_event(reply)
    try:
        api.append_events(conversation_id, [event], send=False)
    except RasaUnavailable as exc:
        log.warning("staff reply %s not in the tracker yet: %s", reply_id, exc.message)
        with transaction() as session:
            handoff_messages.release_tracking(session, reply_id)
        return False
    return True


def track_replies(api: RasaApi) -> int:
    """Staff replies the request that sent them could not append (Rasa was away); how many now are."""
    with transaction() as session:
        pending = handoff_messages.replies_to_track(session, older_than_seconds=TRACK_AFTER_SECONDS)
    tracked = 0
    for reply_id in pending:
        if not track_reply(api, reply_id):
            break
        tracked += 1
    return tracked


def bot_event(reply: m.HandoffReply) -> Dict[str, Any]:
    metadata = {"from": "staff", "staff_id": reply.staff_id, "reply_id": reply.id, "ticket_id": reply.ticket_id}
    if reply.template:
        metadata.update(template=reply.template, params=list(reply.params or []))
    return {"event": "bot", "text": reply.text, "timestamp": reply.created_at.timestamp(), "metadata": metadata}


def sweep_once() -> int:
    """The back office's handoff round: notices for tickets nobody took, staff replies into the tracker."""
    api = RasaApi.from_settings()
    return notify_unanswered(api) + track_replies(api)


# --- what the console and the staff API do, each a transaction, then Rasa's side -----------------


@dataclass(frozen=True)
class Done:
    """A staff action's result: the ticket as it is now, and what could not be told to Rasa (or None)."""

    ticket: Dict[str, Any]
    warning: Optional[str] = None


def claim_chat(who: StaffMember, actor: Actor, ticket_id: int, api: RasaApi) -> Done:
    with transaction() as session:
        ticket = handoff.claim(session, who, actor, ticket_id)
        conversation_id = ticket.conversation_id
    warning = pause(api, conversation_id)
    return Done(ticket_view(ticket_id), warning)


def assign_chat(who: StaffMember, actor: Actor, ticket_id: int, colleague_id: int, api: RasaApi) -> Done:
    with transaction() as session:
        ticket = handoff.assign(session, who, actor, ticket_id, colleague_id)
        conversation_id = ticket.conversation_id
    return Done(ticket_view(ticket_id), pause(api, conversation_id))


def resolve_chat(who: StaffMember, actor: Actor, ticket_id: int, api: RasaApi) -> Done:
    with transaction() as session:
        conversation_id = handoff.visible_ticket(session, who, ticket_id).conversation_id
        last = handoff.resolve(session, ticket_id, actor, who)
    return Done(ticket_view(ticket_id), resume(api, conversation_id) if last else None)


def reply_chat(
    who: StaffMember,
    actor: Actor,
    ticket_id: int,
    api: RasaApi,
    text: Optional[str] = None,
    template: Optional[str] = None,
    params: Any = (),
    client_key: Optional[str] = None,
) -> Dict[str, Any]:
    """Queue a staff message (the outbox sends it) and append it to the tracker; the message as listed.
    Answering a waiting chat claims it, which pauses the bot as a claim does."""
    with transaction() as session:
        was_waiting = handoff.visible_ticket(session, who, ticket_id).status == HandoffStatus.WAITING
        reply = handoff_messages.send_reply(
            session, who, actor, ticket_id, compose, text, template, params, client_key=client_key
        )
        reply_id, outbound_id = reply.id, reply.outbound_message_id
        message = {
            "id": reply.id,
            "from": "staff",
            "text": reply.text,
            "template": reply.template,
            "at": reply.created_at.isoformat(),
        }
        conversation_id = session.get(m.HandoffTicket, ticket_id).conversation_id
    if was_waiting:
        pause(api, conversation_id)
    track_reply(api, reply_id)  # False when a repeated submit had it tracked already
    with transaction() as session:
        message["status"] = handoff_messages.delivery_status(session.get(m.OutboundMessage, outbound_id))
    return message


def ticket_view(ticket_id: int) -> Dict[str, Any]:
    with transaction() as session:
        return ticket_summary(session, handoff.get_ticket(session, ticket_id))
