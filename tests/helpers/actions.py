"""Running actions as the action server runs them: a tracker in (the latest message as the NLU emits it),
responses and events out. Shared by the action tests."""

from __future__ import annotations

import asyncio
import uuid
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from comanda import models as m
from comanda.db import transaction
from comanda.i18n import response_text
from comanda.services import payments
from comanda.services.payment_provider import ProviderEvent
from integrations.payments import payment_provider
from tests.helpers.paths import ROOT

ANA = "centro:whatsapp:+525511112222"
ROMA_ANA = "roma:whatsapp:+525511112222"
CARD = {"fulfilment": "pickup", "customer_name": "Ana", "payment_method": "card", "order_confirmed": True}
CASH = {**CARD, "payment_method": "cash"}


def line(sku: str, quantity: int = 1, stated: bool = True, **modifiers: str) -> Dict[str, Any]:
    """An ``order_line`` entity as nlu_components.order_lines emits it."""
    value = {
        "sku": sku,
        "quantity": quantity,
        "modifiers": modifiers,
        "variant": {},
        "variant_sku": None,
        "quantity_stated": stated,
    }
    return {"entity": "order_line", "value": value}


def entity(name: str, value: Any) -> Dict[str, Any]:
    return {"entity": name, "value": value}


def said(intent: str, *entities: Dict[str, Any], text: str = "", message_id: Optional[str] = None) -> Dict[str, Any]:
    """The latest message as Rasa sends it to the action server (with the NLU's intent ranking)."""
    return {
        "intent": {"name": intent, "confidence": 0.9},
        "intent_ranking": [{"name": intent, "confidence": 0.9}],
        "entities": list(entities),
        "text": text,
        "message_id": message_id,
    }


def user_event(latest: Dict[str, Any], message_id: str, timestamp: float = 1.0) -> Dict[str, Any]:
    return {
        "event": "user",
        "timestamp": timestamp,
        "text": latest.get("text"),
        "parse_data": latest,
        "message_id": message_id,
    }


def tracker(
    latest: Optional[Dict[str, Any]] = None,
    slots: Optional[Dict[str, Any]] = None,
    sender: str = ANA,
    loop: Optional[str] = None,
    events: Optional[List[Dict[str, Any]]] = None,
) -> Tracker:
    """A tracker; without ``events`` it has no user message logged, so runs are not kept for a retry."""
    slots = {"language": "es", **(slots or {})}
    return Tracker(
        sender, slots, latest or {}, events or [], False, None, {"name": loop} if loop else {}, "action_listen"
    )


@lru_cache(maxsize=1)
def domain() -> Dict[str, Any]:
    """The parts of the domain rasa-sdk reads (the forms and their slots), as Rasa sends them."""
    forms: Dict[str, Any] = {}
    for path in sorted((ROOT / "domain").glob("*.yml")):
        forms.update((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("forms") or {})
    return {"forms": forms}


def run(action: Any, trk: Tracker) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    result = action.run(dispatcher, trk, domain())
    events = asyncio.run(result) if asyncio.iscoroutine(result) else result
    return dispatcher.messages, events


def responses(messages: List[Dict[str, Any]]) -> List[Optional[str]]:
    return [m.get("response") for m in messages]


def answer(
    form: Any,
    slot: str,
    value: Any,
    slots: Optional[Dict[str, Any]] = None,
    latest: Optional[Dict[str, Any]] = None,
    sender: str = ANA,
    requested: bool = False,
) -> Tuple[Dict[str, Any], List[Optional[str]]]:
    """``answer_messages`` with the names of the responses said."""
    filled, messages = answer_messages(form, slot, value, slots, latest, sender, requested)
    return filled, responses(messages)


def answer_messages(
    form: Any,
    slot: str,
    value: Any,
    slots: Optional[Dict[str, Any]] = None,
    latest: Optional[Dict[str, Any]] = None,
    sender: str = ANA,
    requested: bool = False,
) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The customer answers the form's question for ``slot`` with ``value`` (typed, unless ``latest`` says
    otherwise): the form's validation runs as Rasa calls it, with the slot extracted from the message.
    Returns the slots it set (requested_slot only with ``requested``; ``rejected`` when it stepped aside) and
    its messages."""
    latest = latest or said("inform", text=str(value))
    form_name = form.form_name()
    filled = {**(slots or {}), "requested_slot": slot, slot: value}
    events = [
        user_event(latest, f"wamid.{uuid.uuid4().hex}"),
        {"event": "slot", "name": "requested_slot", "value": slot},
        {"event": "action", "name": form_name},
        {"event": "slot", "name": slot, "value": value},
    ]
    messages, result = run(form, tracker(latest, filled, sender=sender, loop=form_name, events=events))
    out = {
        e["name"]: e["value"] for e in result if e["event"] == "slot" and (requested or e["name"] != "requested_slot")
    }
    if any(e["event"] == "action_execution_rejected" for e in result):
        out["rejected"] = True
    return out, messages


def text_of(message: Dict[str, Any]) -> str:
    """What the customer reads for a message: its text, or its domain response in the message's language
    filled with its values, as Rasa's template generator fills it."""
    if message.get("text"):
        return str(message["text"])
    values = {k: v for k, v in message.items() if k not in ("text", "response", "language")}
    said = response_text(message["response"], message.get("language", "es"), **values)
    assert said is not None, message
    return said


def paid_order() -> int:
    """A card order placed in the chat and paid by a (sandbox) provider event."""
    from actions.cart import ActionAddItems
    from actions.checkout import ActionPlaceOrder

    run(ActionAddItems(), tracker(said("add_items", line("TACO-PASTOR", 3), line("HORCHATA"))))
    run(ActionPlaceOrder(), tracker(said("affirm"), slots=CARD))
    with transaction() as session:
        order = session.execute(select(m.Order)).scalar_one()
        payment = payments.start_payment(session, order, payment_provider())
        link = session.get(m.Payment, payment.payment_id).provider_link_id
        payments.apply_event(
            session,
            ProviderEvent(
                provider="sandbox",
                event_id="evt_1",
                event_type="payment.succeeded",
                kind="paid",
                order_reference=str(order.id),
                link_id=link,
                payment_id="sbxpay_1",
                amount=order.total,
                currency="MXN",
                card_funding="debit",
            ),
        )
        return order.id
