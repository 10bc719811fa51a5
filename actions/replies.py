"""How cart results become messages: line lists, totals, and buttons that add an item when tapped."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Dict, List, Sequence

from rasa_sdk.executor import CollectingDispatcher

from comanda.i18n import join_words, t
from comanda.money import format_money
from comanda.services.carts import AddResult, CartLineView


def add_payload(sku: str, quantity: int = 1) -> str:
    """The message a button sends to add ``quantity`` of a SKU, as the NLU would have read it."""
    line = {"sku": sku, "quantity": quantity, "quantity_stated": True}
    return "/add_items" + json.dumps({"order_line": line}, ensure_ascii=False, separators=(",", ":"))


def format_lines(lines: Sequence[CartLineView]) -> str:
    return "\n".join(f"• {line.quantity} × {line.name} — {format_money(line.line_total)}" for line in lines)


def utter_cart(dispatcher: CollectingDispatcher, lines: Sequence[CartLineView], total: Decimal) -> None:
    if lines:
        dispatcher.utter_message(response="utter_cart_contents", lines=format_lines(lines), total=format_money(total))
    else:
        dispatcher.utter_message(response="utter_cart_empty")


def utter_add_result(
    dispatcher: CollectingDispatcher,
    result: AddResult,
    language: str,
    store_name: str,
    done_response: str = "utter_items_added",
) -> List[Dict[str, Any]]:
    """Say what was added (or set) and what could not be; returns the order lines offered instead (for "sí")."""
    offered: List[Dict[str, Any]] = []
    if result.added:
        dispatcher.utter_message(response=done_response, items=join_words(result.added, language))
    for short in result.short:
        if short.left:
            dispatcher.utter_message(
                response="utter_only_left",
                name=short.name,
                left=short.left,
                buttons=[
                    {
                        "title": t("button.add_left", language, left=short.left),
                        "payload": add_payload(short.sku, short.left),
                    },
                    {"title": t("button.no_thanks", language), "payload": "/deny"},
                ],
            )
            offered.append({"sku": short.sku, "quantity": short.left, "modifiers": dict(short.wanted.modifiers)})
            continue
        if short.elsewhere:
            dispatcher.utter_message(
                response="utter_out_of_stock_elsewhere",
                name=short.name,
                store_name=store_name,
                elsewhere=join_words(short.elsewhere, language),
            )
        else:
            dispatcher.utter_message(response="utter_out_of_stock", name=short.name, store_name=store_name)
        if short.alternatives:
            dispatcher.utter_message(
                response="utter_offer_alternatives",
                buttons=[{"title": name, "payload": add_payload(sku)} for sku, name in short.alternatives],
            )
    for question in result.ask_variant:
        dispatcher.utter_message(
            response="utter_ask_variant",
            name=question.name,
            buttons=[
                {"title": label, "payload": add_payload(sku, question.quantity)} for sku, label in question.options
            ],
        )
    if result.unknown:
        dispatcher.utter_message(response="utter_catalog_unknown_items", items=", ".join(result.unknown))
    return offered


def entity_values(latest_message: Dict[str, Any], name: str) -> List[Any]:
    return [e.get("value") for e in latest_message.get("entities", []) if e.get("entity") == name]
