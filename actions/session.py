"""Session start: keep the conversation's slots, and speak the business's language until we know the customer's."""

from __future__ import annotations

from typing import List

from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet

from actions.base import ComandaAction, Turn


class ActionSessionStart(ComandaAction):
    def name(self) -> str:
        return "action_session_start"

    def act(self, turn: Turn) -> List[EventType]:
        slots = {name: value for name, value in turn.tracker.current_slot_values().items() if value is not None}
        if not slots.get("language"):
            slots["language"] = turn.store.business.default_language
        return [SessionStarted(), *(SlotSet(k, v) for k, v in slots.items()), ActionExecuted("action_listen")]
