"""The cart in the chat: add, remove, change, show, empty, and questions about a product.

Taking things out is never guessed: it needs a product named and words that ask to remove it (or a
tapped button); when the intent and the words disagree ("a 3rd latte" read as a removal), the bot asks.
Nothing is dropped in silence either: product words the catalog could not place are said back.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Dict, List, Tuple

from rasa_sdk.events import EventType, SlotSet

from actions.base import ComandaAction, Turn
from actions.menu import utter_categories
from actions.replies import add_payload, utter_add_result, utter_cart
from comanda.i18n import join_words, t
from comanda.money import format_money
from comanda.services import carts
from comanda.services.answers import reads_clearing, reads_removal
from comanda.services.carts import Wanted
from comanda.services.products import find_sku, line_label, modifier_options, suggestions, unit_price
from comanda.services.stock import available_by_item, sellable_units

OFFERED = "offered_items"
MAX_REPLY_BUTTONS = 3  # WhatsApp's reply buttons on one message


def wanted_lines(turn: Turn) -> List[Wanted]:
    """The order lines of the customer's message; a "sí" takes what the bot offered just before."""
    values = (turn.slot(OFFERED) or []) if turn.intent == "affirm" else turn.entities("order_line")
    return [Wanted.from_entity(v) for v in values if isinstance(v, dict) and v.get("sku")]


def lines_payload(intent: str, wanted: List[Wanted]) -> str:
    """A button that sends these lines with ``intent``, as the NLU would have read them."""
    lines = [{"sku": w.sku, "quantity": w.quantity, "quantity_stated": w.quantity_stated} for w in wanted]
    return f"/{intent}" + json.dumps({"order_line": lines}, ensure_ascii=False, separators=(",", ":"))


def in_checkout(turn: Turn) -> bool:
    return turn.in_form("checkout_form")


def product_names(turn: Turn, skus: List[str]) -> Dict[str, str]:
    names = {}
    for sku in skus:
        product, variant = find_sku(turn.session, turn.store.business_id, sku)
        names[sku] = line_label(product, variant, {}, turn.language) if product else sku
    return names


def ask_remove_or_add(turn: Turn, wanted: List[Wanted]) -> List[EventType]:
    """The intent says "remove", the words do not: which one did the customer mean?"""
    items = join_words(list(product_names(turn, [w.sku for w in wanted]).values()), turn.language)
    return turn.say(
        "utter_remove_or_add",
        items=items,
        buttons=[
            {"title": t("button.remove", turn.language), "payload": lines_payload("remove_items", wanted)},
            {"title": t("button.add_more", turn.language), "payload": lines_payload("add_items", wanted)},
        ],
    )


def utter_unplaced(turn: Turn) -> Tuple[bool, bool]:
    """Say back the product words the order reader could not place (``unplaced`` entities) instead of
    dropping them: those close to products in one message with the products as buttons ("No encontré
    «pastr»: ¿quisiste decir Taco al pastor?"), the rest in another. Returns (said anything, offered
    products to tap)."""
    found: Dict[str, List[str]] = {}
    for value in turn.entities("unplaced"):
        if isinstance(value, dict) and value.get("text"):
            found.setdefault(str(value["text"]), [str(sku) for sku in value.get("suggestions") or []])
    lang = turn.language
    guessed = [text for text, skus in found.items() if skus]
    unknown = [text for text, skus in found.items() if not skus]
    if guessed:
        names: Dict[str, str] = {}
        for sku in dict.fromkeys(sku for text in guessed for sku in found[text]):
            product, _ = find_sku(turn.session, turn.store.business_id, sku)
            if product is not None and len(names) < MAX_REPLY_BUTTONS:
                names[sku] = product.name(lang)
        turn.say(
            "utter_unplaced_guess",
            words=join_words([t("quoted", lang, text=text) for text in guessed], lang),
            names=join_words(list(names.values()), lang, "list.or"),
            buttons=[{"title": name, "payload": add_payload(sku)} for sku, name in names.items()],
        )
    if unknown:
        turn.say("utter_unplaced", words=join_words([t("quoted", lang, text=text) for text in unknown], lang))
    return bool(found), bool(guessed)


class ActionAddItems(ComandaAction):
    def name(self) -> str:
        return "action_add_items"

    def act(self, turn: Turn) -> List[EventType]:
        wanted = wanted_lines(turn)
        if not wanted:
            said, guessed = utter_unplaced(turn)
            if said:
                if not guessed:
                    utter_categories(turn)  # nothing close: what there is
                return [SlotSet(OFFERED, None)]
            guesses = suggestions(turn.session, turn.store.business_id, turn.text)
            if guesses:
                turn.say(
                    "utter_product_unknown",
                    buttons=[
                        {
                            "title": p.name(turn.language),
                            "payload": add_payload(p.sku),
                            "description": format_money(p.price),
                        }
                        for p in guesses
                    ],
                )
            else:
                turn.say("utter_product_unknown_no_match")
                utter_categories(turn)
            return [SlotSet(OFFERED, None)]
        cart = turn.open_cart()
        result = carts.add_items(turn.session, cart, wanted, turn.language)
        offered = utter_add_result(turn, result)
        utter_unplaced(turn)
        if result.added:
            utter_cart(turn, *carts.cart_view(turn.session, cart, turn.language))
            if not in_checkout(turn) and not offered and not result.ask_variant:
                turn.say("utter_cart_next")
        return [SlotSet(OFFERED, offered or None)]


class ActionRemoveItems(ComandaAction):
    def name(self) -> str:
        return "action_remove_items"

    def act(self, turn: Turn) -> List[EventType]:
        wanted = wanted_lines(turn)
        if not wanted:
            return turn.say("utter_remove_what")
        if not turn.said.payload and (turn.entity("intent_conflict") or not reads_removal(turn.text)):
            return ask_remove_or_add(turn, wanted)
        cart = turn.cart
        removed, missing = carts.remove_items(turn.session, cart, wanted) if cart else ([], [w.sku for w in wanted])
        names = product_names(turn, removed + missing)
        if removed:
            turn.say("utter_items_removed", items=join_words([names[s] for s in removed], turn.language))
        if missing:
            turn.say("utter_not_in_cart", items=join_words([names[s] for s in missing], turn.language))
        if cart is not None:
            utter_cart(turn, *carts.cart_view(turn.session, cart, turn.language))
        return []


class ActionChangeQuantity(ComandaAction):
    def name(self) -> str:
        return "action_change_quantity"

    def act(self, turn: Turn) -> List[EventType]:
        wanted = wanted_lines(turn)
        if not wanted:
            said, _ = utter_unplaced(turn)
            return [] if said else turn.say("utter_change_what")
        cart, offered = turn.open_cart(), []
        for line in wanted:
            result = carts.set_quantity(turn.session, cart, line, turn.language)
            offered += utter_add_result(turn, result, done_response="utter_quantity_set")
        utter_unplaced(turn)
        utter_cart(turn, *carts.cart_view(turn.session, cart, turn.language))
        return [SlotSet(OFFERED, offered or None)]


class ActionShowCart(ComandaAction):
    def name(self) -> str:
        return "action_show_cart"

    def act(self, turn: Turn) -> List[EventType]:
        lines, total = carts.cart_view(turn.session, turn.cart, turn.language) if turn.cart else ([], Decimal(0))
        utter_cart(turn, lines, total)
        if lines and not in_checkout(turn):
            turn.say("utter_cart_next")
        return []


class ActionClearCart(ComandaAction):
    """Empties the cart when the customer says so in so many words (or taps the button that does)."""

    def name(self) -> str:
        return "action_clear_cart"

    def act(self, turn: Turn) -> List[EventType]:
        wanted = wanted_lines(turn)
        if not turn.said.payload and (turn.entity("intent_conflict") or not reads_clearing(turn.text)):
            if wanted:
                return ask_remove_or_add(turn, wanted)
            return turn.say(
                "utter_confirm_clear_cart",
                buttons=[
                    {"title": t("button.clear_cart", turn.language), "payload": "/clear_cart"},
                    {"title": t("button.keep_cart", turn.language), "payload": "/show_cart"},
                ],
            )
        if turn.cart is not None:
            carts.clear_cart(turn.session, turn.cart)
        turn.say("utter_cart_cleared")
        return [SlotSet(OFFERED, None)]


class ActionAnswerProduct(ComandaAction):
    """ "¿Tienen matcha?": price, options and stock here, and an offer to add it ("sí" adds it)."""

    def name(self) -> str:
        return "action_answer_product"

    def act(self, turn: Turn) -> List[EventType]:
        store, lang = turn.store, turn.language
        skus = list(dict.fromkeys(turn.entities("product")))
        if not skus:
            said, guessed = utter_unplaced(turn)  # "¿tienen pozole?"
            if said:
                if not guessed:
                    utter_categories(turn)
                return [SlotSet(OFFERED, None)]
            skus = [p.sku for p in suggestions(turn.session, store.business_id, turn.text)]
            if not skus:
                turn.say("utter_product_unknown_no_match")
                utter_categories(turn)
                return [SlotSet(OFFERED, None)]
        available = available_by_item(turn.session, store.id)
        offered: List[Dict[str, Any]] = []
        for sku in skus:
            product, _ = find_sku(turn.session, store.business_id, sku)
            if product is None:
                continue
            price = format_money(unit_price(product, {}))
            if sellable_units(product, available) <= 0:
                turn.say("utter_product_info_out", name=product.name(lang), price=price, store_name=store.name)
                continue
            turn.say(
                "utter_product_info",
                name=product.name(lang),
                price=price,
                options=_options_text(product, available, lang),
                buttons=[
                    {"title": t("button.yes_add", lang), "payload": add_payload(sku)},
                    {"title": t("button.no_thanks", lang), "payload": "/deny"},
                ],
            )
            offered.append({"sku": sku, "quantity": 1})
        utter_unplaced(turn)
        if not in_checkout(turn):
            turn.say("utter_product_details_by_staff")
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
    return t("product.options", lang, options=join_words(names, lang, "list.or"))
