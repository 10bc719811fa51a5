"""Handing the conversation to a person: on request, on a complaint, for what the bot does not do
yet (returns, privacy requests), and when the bot failed to understand too many times in a row."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.context import conversation
from comanda.db import transaction
from comanda.services.handoff import open_ticket
from comanda.services.stores import get_store

# intent → (ticket reason, what the customer is told)
HANDOFFS = {
    "human_handoff": ("requested", "utter_handoff"),
    "complaint": ("complaint", "utter_complaint"),
    "request_return": ("return", "utter_return_by_staff"),
    "privacy_request": ("privacy", "utter_privacy_by_staff"),
}


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the customer's last messages in a row the NLU could not read."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") != "nlu_fallback":
            break
        count += 1
    return count


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason, response = HANDOFFS.get(intent, HANDOFFS["human_handoff"])
        text = tracker.latest_message.get("text") or ""
        with transaction() as session:
            store = get_store(session, conversation(tracker).store_id)
            open_ticket(session, tracker.sender_id, reason, summary=text[:1000])
            params = {"store_name": store.name, "privacy_url": store.business.privacy_notice_url or ""}
        dispatcher.utter_message(response=response, **params)
        return []


class ActionFallback(Action):
    """A message the NLU could not read: ask again; after the business's limit in a row, a person."""

    def name(self) -> str:
        return "action_fallback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        with transaction() as session:
            store = get_store(session, conversation(tracker).store_id)
            if consecutive_fallbacks(tracker) < store.business.handoff_after_consecutive_fallbacks:
                dispatcher.utter_message(response="utter_please_rephrase")
                return []
            open_ticket(session, tracker.sender_id, "fallback", summary=tracker.latest_message.get("text"))
            dispatcher.utter_message(response="utter_fallback_handoff", store_name=store.name)
        return []
