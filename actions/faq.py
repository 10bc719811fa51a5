"""Answer a frequent question (faq/<topic>) from the store's own data."""

from __future__ import annotations

from typing import List

from rasa_sdk import Tracker
from rasa_sdk.events import EventType

from actions.base import ComandaAction, Turn
from comanda.services.faq import TOPICS, faq_response


def faq_topic(tracker: Tracker) -> str:
    """The sub-intent the ResponseSelector chose: "faq/hours" → "hours"."""
    selector = (tracker.latest_message.get("response_selector") or {}).get("faq") or {}
    key = (selector.get("response") or {}).get("intent_response_key") or ""
    return key.split("/", 1)[1] if "/" in key else ""


class ActionAnswerFaq(ComandaAction):
    def name(self) -> str:
        return "action_answer_faq"

    def act(self, turn: Turn) -> List[EventType]:
        topic = faq_topic(turn.tracker)
        if topic not in TOPICS:  # a topic an owner added (review inbox): its answer is written, not filled
            written = f"utter_faq/{topic}"
            return turn.say(
                written if topic and written in (turn.domain.get("responses") or {}) else "utter_please_rephrase"
            )
        answer = faq_response(turn.session, turn.store.id, topic, turn.language)
        return turn.say(answer.pop("response"), **answer)
