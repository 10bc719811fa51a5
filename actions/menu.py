"""Show what the store sells now, with prices, in the customer's language."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.context import conversation, language
from comanda.db import new_session
from comanda.money import format_money
from comanda.services.menu import store_menu
from comanda.services.stores import get_store


class ActionShowMenu(Action):
    def name(self) -> Text:
        return "action_show_menu"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        store_id, lang = conversation(tracker).store_id, language(tracker)
        with new_session() as session:
            store_name = get_store(session, store_id).name
            sections = store_menu(session, store_id, lang)
        if not sections:
            dispatcher.utter_message(response="utter_menu_empty", store_name=store_name)
            return []
        text = "\n\n".join(
            f"*{s.title}*\n" + "\n".join(f"• {i.name} — {format_money(i.price)}" for i in s.items) for s in sections
        )
        dispatcher.utter_message(response="utter_menu", store_name=store_name, menu=text)
        return []
