"""What every action needs from the tracker: which store, which customer, which language."""

from __future__ import annotations

from rasa_sdk import Tracker

from comanda.conversations import ConversationRef, parse_conversation_id
from comanda.i18n import language_or_default


def conversation(tracker: Tracker) -> ConversationRef:
    return parse_conversation_id(tracker.sender_id)


def language(tracker: Tracker) -> str:
    return language_or_default(tracker.get_slot("language"))
