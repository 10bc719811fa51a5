"""Answer a frequent question (faq/<topic>) from the store's own data."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.context import conversation, language
from comanda.db import new_session
from comanda.services.faq import faq_response


def faq_topic(tracker: Tracker) -> str:
    """The sub-intent the ResponseSelector chose: "faq/hours" → "hours"."""
    selector = (tracker.latest_message.get("response_selector") or {}).get("faq") or {}
    key = (selector.get("response") or {}).get("intent_response_key") or ""
    return key.split("/", 1)[1] if "/" in key else ""


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        topic = faq_topic(tracker)
        if not topic:
            dispatcher.utter_message(response="utter_please_rephrase")
            return []
        with new_session() as session:
            answer = faq_response(session, conversation(tracker).store_id, topic, language(tracker))
        dispatcher.utter_message(**answer)
        return []
