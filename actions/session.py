"""Session start: keep the conversation's slots, and speak the business's language until we know the customer's."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import conversation
from comanda.db import new_session
from comanda.services.stores import get_store


class ActionSessionStart(Action):
    def name(self) -> str:
        return "action_session_start"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        slots = {name: value for name, value in tracker.current_slot_values().items() if value is not None}
        if not slots.get("language"):
            with new_session() as session:
                slots["language"] = get_store(session, conversation(tracker).store_id).business.default_language
        return [SessionStarted(), *(SlotSet(k, v) for k, v in slots.items()), ActionExecuted("action_listen")]
