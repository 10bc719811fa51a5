"""How cart results become messages: line lists, totals, buttons that add an item when tapped, and one
message per kind of note however many lines a message had (what is short, sold out, not sold here)."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import Any, Dict, List, Sequence, Tuple

from actions.base import Turn
from comanda.i18n import join_words, t
from comanda.money import format_money
from comanda.services.carts import AddResult, CartLineView, Shortage

MAX_ALTERNATIVES = 10  # one WhatsApp list
MAX_VARIANT_QUESTIONS = 2  # more products to pick a variant of are named in one line


def add_payload(sku: str, quantity: int = 1) -> str:
    """The message a button sends to add ``quantity`` of a SKU, as the NLU would have read it."""
    line = {"sku": sku, "quantity": quantity, "quantity_stated": True}
    return "/add_items" + json.dumps({"order_line": line}, ensure_ascii=False, separators=(",", ":"))


def format_lines(lines: Sequence[CartLineView]) -> str:
    return "\n".join(f"• {line.quantity} × {line.name} — {format_money(line.line_total)}" for line in lines)


def utter_cart(turn: Turn, lines: Sequence[CartLineView], total: Decimal) -> None:
    if lines:
        turn.say("utter_cart_contents", lines=format_lines(lines), total=format_money(total))
    else:
        turn.say("utter_cart_empty")


def utter_add_result(turn: Turn, result: AddResult, done_response: str = "utter_items_added") -> List[Dict[str, Any]]:
    """Say what was added (or set) and, in one message per kind, what could not be; returns the order
    lines offered instead (a "sí" adds them)."""
    lang = turn.language
    if result.added:
        turn.say(done_response, items=join_words(result.added, lang))
    offered = _utter_only_left(turn, [s for s in result.short if s.left])
    _utter_sold_out(turn, [s for s in result.short if not s.left])
    for question in result.ask_variant[:MAX_VARIANT_QUESTIONS]:
        turn.say(
            "utter_ask_variant",
            name=question.name,
            buttons=[
                {"title": label, "payload": add_payload(sku, question.quantity)} for sku, label in question.options
            ],
        )
    later = [q.name for q in result.ask_variant[MAX_VARIANT_QUESTIONS:]]
    if later:
        turn.say("utter_ask_variant_later", items=join_words(later, lang))
    if result.unknown:
        turn.say("utter_catalog_unknown_items", items=", ".join(result.unknown))
    if turn.entity("order_lines_truncated"):
        turn.say("utter_order_lines_truncated", read=len(turn.entities("order_line")))
    return offered


def _utter_only_left(turn: Turn, short: List[Shortage]) -> List[Dict[str, Any]]:
    """ "De Coca-Cola solo quedan 3": one message for every line with fewer left than asked, and an offer."""
    if not short:
        return []
    lang = turn.language
    offered = [{"sku": s.sku, "quantity": s.left, "modifiers": dict(s.wanted.modifiers)} for s in short]
    if len(short) == 1:
        [only] = short
        accept = {"title": t("button.add_left", lang, left=only.left), "payload": add_payload(only.sku, only.left)}
    else:
        accept = {"title": t("button.add_what_is_left", lang), "payload": "/affirm"}
    turn.say(
        "utter_only_left",
        items=join_words([f"{s.left} × {s.name}" for s in short], lang),
        buttons=[accept, {"title": t("button.no_thanks", lang), "payload": "/deny"}],
    )
    return offered


def _utter_sold_out(turn: Turn, short: List[Shortage]) -> None:
    """What the store has none of: sold out, or never sold at this branch ("En Roma no hay cocina"), with
    where else it is, then one list of what to take instead."""
    groups: Dict[Tuple[bool, Tuple[str, ...]], List[str]] = defaultdict(list)
    for shortage in short:
        groups[shortage.carried, tuple(shortage.elsewhere)].append(shortage.name)
    for (carried, elsewhere), names in groups.items():
        response = "utter_out_of_stock" if carried else "utter_not_sold_here"
        turn.say(
            response + ("_elsewhere" if elsewhere else ""),
            items=join_words(names, turn.language),
            store_name=turn.store.name,
            elsewhere=join_words(list(elsewhere), turn.language),
        )
    alternatives = list(dict.fromkeys(pair for s in short for pair in s.alternatives))[:MAX_ALTERNATIVES]
    if alternatives:
        turn.say(
            "utter_offer_alternatives",
            buttons=[{"title": name, "payload": add_payload(sku)} for sku, name in alternatives],
        )
