"""The customer's side: /simulator/api/send posts the webhook Meta would post, signed over its raw bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Dict

import pytest
import requests

from backoffice.simulator import payloads
from tests.helpers.graph import messages_with, value_of, verified
from tests.helpers.paths import WHATSAPP_FIXTURES
from tests.helpers.simulator import CENTRO

CUSTOMER = {"phone_number_id": CENTRO, "wa_id": "5215512345678", "name": "Ana López"}
BOT_MESSAGE = "wamid.FROMTHEBOT"

CASES = {
    "text": (
        {"type": "text", "text": "hola, ¿qué tienen? / ñ"},
        {"type": "text", "text": {"body": "hola, ¿qué tienen? / ñ"}},
    ),
    "button_reply": (
        {"type": "button_reply", "button_reply": {"id": "confirm", "title": "Sí"}, "context_id": BOT_MESSAGE},
        {
            "context": {"from": "525512345678", "id": BOT_MESSAGE},
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "confirm", "title": "Sí"}},
        },
    ),
    "list_reply": (
        {
            "type": "list_reply",
            "list_reply": {"id": "LATTE", "title": "Latte", "description": "$55.00"},
            "context_id": BOT_MESSAGE,
        },
        {
            "context": {"from": "525512345678", "id": BOT_MESSAGE},
            "type": "interactive",
            "interactive": {
                "type": "list_reply",
                "list_reply": {"id": "LATTE", "title": "Latte", "description": "$55.00"},
            },
        },
    ),
    "location": (
        {
            "type": "location",
            "location": {
                "latitude": 19.4326,
                "longitude": -99.1332,
                "name": "Zócalo",
                "address": "Plaza de la Constitución, CDMX",
            },
        },
        {
            "type": "location",
            "location": {
                "latitude": 19.4326,
                "longitude": -99.1332,
                "name": "Zócalo",
                "address": "Plaza de la Constitución, CDMX",
            },
        },
    ),
}


def send(backoffice: str, fields: Dict[str, Any]) -> requests.Response:
    return requests.post(f"{backoffice}/simulator/api/send", json={**CUSTOMER, **fields}, timeout=10)


@pytest.mark.parametrize("name", CASES)
def test_the_webhook_is_metas_shape_and_signed(backoffice, receiver, name):
    fields, expected = CASES[name]
    started = int(time.time())
    answer = send(backoffice, fields)
    assert answer.status_code == 200, answer.text
    message_id = answer.json()["id"]
    assert answer.json()["status"] == 200 and message_id.startswith("wamid.")
    [post] = receiver.wait_for(messages_with(message_id))
    payload = verified(post)
    assert post.headers["Content-Type"] == "application/json"
    assert post.body.isascii(), "Meta escapes non-ASCII characters"
    assert payload["object"] == "whatsapp_business_account"
    [entry] = payload["entry"]
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "525512345678", "phone_number_id": CENTRO}
    assert value["contacts"] == [{"profile": {"name": "Ana López"}, "wa_id": "5215512345678"}]
    [message] = value["messages"]
    assert message.pop("id") == message_id
    stamp = message.pop("timestamp")
    assert isinstance(stamp, str) and started <= int(stamp) <= time.time()
    assert message == {"from": "5215512345678", **expected}


@pytest.mark.parametrize(
    "fixture, name",
    [("pywa__message__text.json", "text"), ("pywa__callback_selection__description.json", "list_reply")],
)
def test_the_shape_has_the_keys_of_metas_own_payloads(backoffice, receiver, fixture, name):
    answer = send(backoffice, CASES[name][0]).json()
    [post] = receiver.wait_for(messages_with(answer["id"]))
    ours, theirs = value_of(verified(post)), value_of(json.loads((WHATSAPP_FIXTURES / fixture).read_text()))
    assert set(ours) == set(theirs) and set(ours["messages"][0]) == set(theirs["messages"][0])
    assert set(ours["contacts"][0]) <= set(theirs["contacts"][0])


def test_the_connectors_answer_is_passed_back(backoffice, receiver):
    receiver.status = 403
    answer = send(backoffice, {"type": "text", "text": "hola"})
    assert answer.status_code == 200 and answer.json()["status"] == 403


def test_the_customers_message_shows_in_the_chat(backoffice):
    customer = {**CUSTOMER, "wa_id": "5215599999999"}
    sent = requests.post(
        f"{backoffice}/simulator/api/send", json={**customer, "type": "text", "text": "hola"}, timeout=10
    ).json()
    chat = requests.get(
        f"{backoffice}/simulator/api/messages", params={"phone_number_id": CENTRO, "wa_id": "5215599999999"}, timeout=5
    ).json()
    assert [(m["id"], m["direction"], m["message"]["text"]["body"]) for m in chat["messages"]] == [
        (sent["id"], "in", "hola")
    ]


@pytest.mark.parametrize(
    "fields, status",
    [
        ({"type": "sticker"}, 400),
        ({"type": "text", "text": "  "}, 400),
        ({"type": "text", "text": "hola", "wa_id": "+52 55"}, 400),
        ({"type": "button_reply", "button_reply": {"id": "x", "title": "X"}}, 400),
        ({"type": "location", "location": {"latitude": "north"}}, 400),
        ({"type": "text", "text": "hola", "phone_number_id": "999"}, 404),
    ],
)
def test_bad_requests_are_refused(backoffice, fields, status):
    answer = send(backoffice, fields)
    assert answer.status_code == status and answer.json()["error"]


def test_the_signature_is_metas_hmac_of_the_raw_body():
    body = payloads.encode(payloads.text(payloads.Chat("1", "2", "3", "Zoë"), "https://x.mx/ñ"))
    assert b"\\/" in body and b"\\u00f1" in body
    assert payloads.sign("secret", body) == "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
