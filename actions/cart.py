"""The cart in the chat: add, remove, change, show, empty, and questions about a product."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import language
from actions.menu import utter_categories
from actions.replies import add_payload, entity_values, utter_add_result, utter_cart
from comanda.db import transaction
from comanda.i18n import join_words, t
from comanda.money import format_money
from comanda.services import carts
from comanda.services.carts import Wanted
from comanda.services.products import find_sku, line_label, modifier_options, suggestions, unit_price
from comanda.services.stock import available_by_item, sellable_units
from comanda.services.stores import get_store

OFFERED = "offered_items"


def wanted_lines(tracker: Tracker) -> List[Wanted]:
    """The order lines of the customer's message; a "sí" takes what the bot offered just before."""
    if (tracker.latest_message.get("intent") or {}).get("name") == "affirm":
        values = tracker.get_slot(OFFERED) or []
    else:
        values = entity_values(tracker.latest_message, "order_line")
    return [Wanted.from_entity(v) for v in values if isinstance(v, dict) and v.get("sku")]


def in_checkout(tracker: Tracker) -> bool:
    return tracker.active_loop_name == "checkout_form"


class ActionAddItems(Action):
    def name(self) -> str:
        return "action_add_items"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        lang, wanted = language(tracker), wanted_lines(tracker)
        with transaction() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            store = get_store(session, cart.store_id)
            if not wanted:
                guesses = suggestions(session, store.business_id, tracker.latest_message.get("text") or "")
                if guesses:
                    dispatcher.utter_message(
                        response="utter_product_unknown",
                        buttons=[
                            {"title": p.name(lang), "payload": add_payload(p.sku), "description": format_money(p.price)}
                            for p in guesses
                        ],
                    )
                else:
                    dispatcher.utter_message(response="utter_product_unknown_no_match")
                    utter_categories(dispatcher, session, store, lang)
                return [SlotSet(OFFERED, None)]
            result = carts.add_items(session, cart, wanted, lang)
            lines, total = carts.cart_view(session, cart, lang)
            store_name = store.name
        offered = utter_add_result(dispatcher, result, lang, store_name)
        if result.added:
            utter_cart(dispatcher, lines, total)
            if not in_checkout(tracker) and not offered and not result.ask_variant:
                dispatcher.utter_message(response="utter_cart_next")
        return [SlotSet(OFFERED, offered or None)]


class ActionRemoveItems(Action):
    def name(self) -> str:
        return "action_remove_items"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        lang, wanted = language(tracker), wanted_lines(tracker)
        if not wanted:
            dispatcher.utter_message(response="utter_remove_what")
            return []
        with transaction() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            store = get_store(session, cart.store_id)
            removed, missing = carts.remove_items(session, cart, wanted)
            names = {sku: _name(session, store.business_id, sku, lang) for sku in removed + missing}
            lines, total = carts.cart_view(session, cart, lang)
        if removed:
            dispatcher.utter_message(
                response="utter_items_removed", items=join_words([names[s] for s in removed], lang)
            )
        if missing:
            dispatcher.utter_message(response="utter_not_in_cart", items=join_words([names[s] for s in missing], lang))
        utter_cart(dispatcher, lines, total)
        return []


class ActionChangeQuantity(Action):
    def name(self) -> str:
        return "action_change_quantity"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        lang, wanted = language(tracker), wanted_lines(tracker)
        if not wanted:
            dispatcher.utter_message(response="utter_change_what")
            return []
        offered: List[Dict[str, Any]] = []
        with transaction() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            store = get_store(session, cart.store_id)
            for line in wanted:
                offered += utter_add_result(
                    dispatcher,
                    carts.set_quantity(session, cart, line, lang),
                    lang,
                    store.name,
                    done_response="utter_quantity_set",
                )
            lines, total = carts.cart_view(session, cart, lang)
        utter_cart(dispatcher, lines, total)
        return [SlotSet(OFFERED, offered or None)]


class ActionShowCart(Action):
    def name(self) -> str:
        return "action_show_cart"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        lang = language(tracker)
        with transaction() as session:
            lines, total = carts.cart_view(session, carts.open_cart(session, tracker.sender_id), lang)
        utter_cart(dispatcher, lines, total)
        if lines and not in_checkout(tracker):
            dispatcher.utter_message(response="utter_cart_next")
        return []


class ActionClearCart(Action):
    def name(self) -> str:
        return "action_clear_cart"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        with transaction() as session:
            carts.clear_cart(session, carts.open_cart(session, tracker.sender_id))
        dispatcher.utter_message(response="utter_cart_cleared")
        return [SlotSet(OFFERED, None)]


class ActionAnswerProduct(Action):
    """ "¿Tienen matcha?": price, options and stock here, and an offer to add it ("sí" adds it)."""

    def name(self) -> str:
        return "action_answer_product"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        lang = language(tracker)
        skus = list(dict.fromkeys(entity_values(tracker.latest_message, "product")))
        offered: List[Dict[str, Any]] = []
        with transaction() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            store = get_store(session, cart.store_id)
            available = available_by_item(session, store.id)
            if not skus:
                guesses = suggestions(session, store.business_id, tracker.latest_message.get("text") or "")
                skus = [p.sku for p in guesses]
                if not skus:
                    dispatcher.utter_message(response="utter_product_unknown_no_match")
                    utter_categories(dispatcher, session, store, lang)
                    return [SlotSet(OFFERED, None)]
            for sku in skus:
                product, _ = find_sku(session, store.business_id, sku)
                if product is None:
                    continue
                price = format_money(unit_price(product, {}))
                if sellable_units(product, available) <= 0:
                    dispatcher.utter_message(
                        response="utter_product_info_out", name=product.name(lang), price=price, store_name=store.name
                    )
                    continue
                dispatcher.utter_message(
                    response="utter_product_info",
                    name=product.name(lang),
                    price=price,
                    options=_options_text(product, available, lang),
                    buttons=[
                        {"title": t("button.yes_add", lang), "payload": add_payload(sku)},
                        {"title": t("button.no_thanks", lang), "payload": "/deny"},
                    ],
                )
                offered.append({"sku": sku, "quantity": 1})
        if not in_checkout(tracker):
            dispatcher.utter_message(response="utter_product_details_by_staff")
        return [SlotSet(OFFERED, offered or None)]


def _options_text(product: Any, available: Dict[int, Any], lang: str) -> str:
    """ " Lo puedes pedir chico, mediano o grande." or the variants in stock, for a product answer."""
    if product.variants:
        labels = [
            line_label(product, v, {}, lang)
            for v in product.variants
            if v.active and available.get(v.stock_item_id, 0) > 0
        ]
        return t("product.variants_in_stock", lang, options=", ".join(labels)) if labels else ""
    groups = modifier_options(product)
    if not groups:
        return ""
    first_group = next(iter(groups.values()))
    names = [
        (o.name_en if lang == "en" else o.name_es) + (f" (+{format_money(o.price_delta)})" if o.price_delta else "")
        for o in first_group.values()
    ]
    options = f"{', '.join(names[:-1])} {t('list.or', lang)} {names[-1]}" if len(names) > 1 else names[0]
    return t("product.options", lang, options=options)


def _name(session: Any, business_id: str, sku: str, lang: str) -> str:
    product, variant = find_sku(session, business_id, sku)
    return line_label(product, variant, {}, lang) if product else sku
