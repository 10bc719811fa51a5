"""Handing the conversation to a person: on request, on a complaint (with the latest order named for
staff), for what the bot does not do yet (privacy requests), and when the bot failed to understand too many
times in a row.

A handoff opens a ticket for its kind of request and pauses the bot for the conversation (Rasa's
``ConversationPaused``): the customer is told once that a person will answer, and the bot stays quiet
until staff resolve the ticket (``comanda handoffs resolve``, which resumes it through Rasa's HTTP API).
If nobody takes the ticket within the business's waiting time, the back office resumes the conversation
and triggers ``EXTERNAL_handoff_unanswered``: the customer may keep waiting (paused again) or carry on
with the bot (the ticket stays open for staff).
"""

from __future__ import annotations

from typing import List, Optional

from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet

from actions.base import ComandaAction, Turn
from comanda.enums import HandoffReason
from comanda.i18n import t
from comanda.services import handoff, orders

# intent → what the customer is told (the ticket's reason: handoff.REASON_BY_INTENT); returns have their own form
TOLD = {
    "human_handoff": "utter_handoff",
    "complaint": "utter_complaint",
    "privacy_request": "utter_privacy_by_staff",
}


def hand_over(turn: Turn, reason: str, summary: Optional[str]) -> List[EventType]:
    """Open (or add to) the ticket for this kind of request and pause the bot for this conversation; a form
    under way stops (its answers stay in their slots until the form starts again)."""
    handoff.open_ticket(turn.session, turn.conversation_id, reason, summary=summary)
    stop_form = [ActiveLoop(None), SlotSet("requested_slot", None)] if turn.in_form() else []
    return [*stop_form, ConversationPaused()]


def consecutive_fallbacks(turn: Turn) -> int:
    """How many of the customer's last messages in a row the NLU could not read."""
    count = 0
    for event in reversed(turn.tracker.events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") != "nlu_fallback":
            break
        count += 1
    return count


class ActionHandoff(ComandaAction):
    def name(self) -> str:
        return "action_handoff"

    def act(self, turn: Turn) -> List[EventType]:
        intent = turn.intent if turn.intent in TOLD else "human_handoff"
        reason, response = handoff.REASON_BY_INTENT[intent], TOLD[intent]
        store = turn.store
        turn.say(response, store_name=store.name, privacy_url=store.business.privacy_notice_url or "")
        latest = orders.latest_order(turn.session, turn.conversation_id)
        about = (
            f" [order {latest.id}, {orders.order_number(latest)}]"
            if latest is not None and reason == HandoffReason.COMPLAINT
            else ""
        )
        return hand_over(turn, reason, turn.text + about)


class ActionFallback(ComandaAction):
    """A message the NLU could not read: ask again; after the business's limit in a row, a person."""

    def name(self) -> str:
        return "action_fallback"

    def act(self, turn: Turn) -> List[EventType]:
        if consecutive_fallbacks(turn) < turn.store.business.handoff_after_consecutive_fallbacks:
            return turn.say("utter_please_rephrase")
        turn.say("utter_fallback_handoff", store_name=turn.store.name)
        return hand_over(turn, HandoffReason.FALLBACK, turn.text)


class ActionHandoffUnanswered(ComandaAction):
    """Nobody took the ticket in time (the back office resumed the conversation to say so): the customer
    may keep waiting or carry on with the bot."""

    def name(self) -> str:
        return "action_handoff_unanswered"

    def act(self, turn: Turn) -> List[EventType]:
        if not handoff.has_open_ticket(turn.session, turn.conversation_id):
            return []  # resolved meanwhile: the bot simply speaks again
        minutes = turn.store.business.handoff_unanswered_minutes
        return turn.say(
            "utter_handoff_unanswered",
            minutes=minutes,
            buttons=[
                {"title": t("button.keep_waiting", turn.language), "payload": "/handoff_keep_waiting"},
                {"title": t("button.carry_on_with_bot", turn.language), "payload": "/handoff_carry_on"},
            ],
        )


class ActionHandoffKeepWaiting(ComandaAction):
    """ "I'll wait": the bot is quiet again while the ticket is open."""

    def name(self) -> str:
        return "action_handoff_keep_waiting"

    def act(self, turn: Turn) -> List[EventType]:
        if not handoff.has_open_ticket(turn.session, turn.conversation_id):
            return turn.say("utter_handoff_closed_meanwhile")
        turn.say("utter_handoff_keep_waiting", store_name=turn.store.name)
        return [ConversationPaused()]
