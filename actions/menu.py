"""The menu in the chat: categories as a WhatsApp list, a category's products (a tap adds one), or
everything as text; always what the store can sell now, in the customer's language."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import conversation, language
from actions.replies import add_payload, entity_values
from comanda import models as m
from comanda.db import new_session
from comanda.i18n import t
from comanda.money import format_money
from comanda.services.menu import MenuSection, store_menu
from comanda.services.stores import get_store

WHOLE_MENU = "all"


def category_payload(category_id: str) -> str:
    return f'/show_menu{{"category":"{category_id}"}}'


def utter_categories(dispatcher: CollectingDispatcher, session: Session, store: m.Store, lang: str) -> None:
    """The store's categories with something in stock, as a list; the last row shows the whole menu."""
    sections = store_menu(session, store.id, lang)
    if not sections:
        dispatcher.utter_message(response="utter_menu_empty", store_name=store.name)
        return
    rows = [
        {
            "title": s.title,
            "payload": category_payload(s.category_id),
            "description": ", ".join(i.name for i in s.items),
        }
        for s in sections
    ]
    rows.append(
        {
            "title": t("menu.whole", lang),
            "payload": category_payload(WHOLE_MENU),
            "description": t("menu.whole_description", lang),
        }
    )
    dispatcher.utter_message(response="utter_menu_categories", store_name=store.name, buttons=rows)


def menu_text(sections: List[MenuSection]) -> str:
    return "\n\n".join(
        f"*{s.title}*\n" + "\n".join(f"• {i.name} — {format_money(i.price)}" for i in s.items) for s in sections
    )


class ActionShowMenu(Action):
    def name(self) -> str:
        return "action_show_menu"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        lang = language(tracker)
        category: Optional[str] = next(iter(entity_values(tracker.latest_message, "category")), None)
        with new_session() as session:
            store = get_store(session, conversation(tracker).store_id)
            if category is None:
                utter_categories(dispatcher, session, store, lang)
                return []
            sections = store_menu(session, store.id, lang)
        chosen = [s for s in sections if s.category_id == category]
        if not sections:
            dispatcher.utter_message(response="utter_menu_empty", store_name=store.name)
        elif category == WHOLE_MENU or not chosen:
            dispatcher.utter_message(response="utter_menu", store_name=store.name, menu=menu_text(sections))
        else:
            [section] = chosen
            dispatcher.utter_message(
                response="utter_menu_category",
                store_name=store.name,
                category=section.title,
                buttons=[
                    {"title": i.name, "payload": add_payload(i.sku), "description": format_money(i.price)}
                    for i in section.items
                ],
            )
        return []
