"""The menu in the chat: the greeting, categories as a WhatsApp list, a category's products (a tap adds
one), or everything as text; always what the store can sell now, in the customer's language."""

from __future__ import annotations

from typing import List

from rasa_sdk.events import EventType

from actions.base import ComandaAction, Turn
from actions.replies import add_payload
from comanda.i18n import t
from comanda.money import format_money
from comanda.services.menu import MenuSection, store_menu, suggested_order

WHOLE_MENU = "all"


def category_payload(category_id: str) -> str:
    return f'/show_menu{{"category":"{category_id}"}}'


def utter_categories(turn: Turn) -> None:
    """The store's categories with something in stock, as a list; the last row shows the whole menu."""
    store, lang = turn.store, turn.language
    sections = store_menu(turn.session, store.id, lang)
    if not sections:
        turn.say("utter_menu_empty", store_name=store.name)
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
    turn.say("utter_menu_categories", store_name=store.name, buttons=rows)


def menu_text(sections: List[MenuSection]) -> str:
    return "\n\n".join(
        f"*{s.title}*\n" + "\n".join(f"• {i.name} — {format_money(i.price)}" for i in s.items) for s in sections
    )


class ActionGreet(ComandaAction):
    """Hello, with an example order made of what this store sells now."""

    def name(self) -> str:
        return "action_greet"

    def act(self, turn: Turn) -> List[EventType]:
        example = suggested_order(turn.session, turn.store.id, turn.language)
        if example is None:
            return turn.say("utter_greet_no_example", store_name=turn.store.name)
        first, second = example
        return turn.say("utter_greet", store_name=turn.store.name, first=first, second=second)


class ActionShowMenu(ComandaAction):
    def name(self) -> str:
        return "action_show_menu"

    def act(self, turn: Turn) -> List[EventType]:
        store, category = turn.store, turn.entity("category")
        if category is None:
            utter_categories(turn)
            return []
        sections = store_menu(turn.session, store.id, turn.language)
        chosen = [s for s in sections if s.category_id == category]
        if not sections:
            return turn.say("utter_menu_empty", store_name=store.name)
        if category == WHOLE_MENU or not chosen:
            return turn.say("utter_menu", store_name=store.name, menu=menu_text(sections))
        [section] = chosen
        return turn.say(
            "utter_menu_category",
            store_name=store.name,
            category=section.title,
            buttons=[
                {"title": i.name, "payload": add_payload(i.sku), "description": format_money(i.price)}
                for i in section.items
            ],
        )
