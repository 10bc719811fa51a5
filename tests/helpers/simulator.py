"""Speaking to the bot as WhatsApp customers do, through the simulator (which plays Meta), and reading
what the bot sent at its Graph API. ``stack`` is any running stack with ``rasa`` and ``backoffice`` URLs
and the WhatsApp ``app_secret``."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Dict, List

import requests

from integrations.whatsapp.webhook import sign
from tests.e2e.conftest import wait_for

CENTRO, ROMA = "106540352242922", "106540352242933"


def customer_says(stack, wa_id, text, phone_number_id=CENTRO, name="Ana"):
    answer = requests.post(
        f"{stack.backoffice}/simulator/api/send",
        timeout=60,
        json={"phone_number_id": phone_number_id, "wa_id": wa_id, "name": name, "type": "text", "text": text},
    )
    assert answer.status_code == 200 and answer.json()["status"] == 200, answer.text
    return answer.json()["id"]


def bot_messages(stack, wa_id, phone_number_id=CENTRO):
    answer = requests.get(
        f"{stack.backoffice}/simulator/api/messages",
        timeout=10,
        params={"phone_number_id": phone_number_id, "wa_id": wa_id},
    )
    return sorted((r for r in answer.json()["messages"] if r["direction"] == "out"), key=lambda r: r["n"])


def texts(records):
    out = []
    for record in records:
        message = record["message"]
        if message.get("type") == "text":
            out.append(message["text"]["body"])
        elif message.get("type") == "interactive":
            out.append(message["interactive"]["body"]["text"])
    return out


def wait_replies(stack, wa_id, count=1, phone_number_id=CENTRO, timeout=40):
    return wait_for(
        lambda: (lambda r: r if len(r) >= count else None)(bot_messages(stack, wa_id, phone_number_id)), timeout=timeout
    ) or bot_messages(stack, wa_id, phone_number_id)


def new_wa_id():
    return "52155" + str(uuid.uuid4().int)[:8]


def webhook(messages, phone_number_id=CENTRO, contacts=None):
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "525512345678", "phone_number_id": phone_number_id},
                            "contacts": contacts
                            or [{"profile": {"name": "Test"}, "wa_id": msg["from"]} for msg in messages],
                            "messages": messages,
                        },
                    }
                ],
            }
        ],
    }


def text_message(wa_id, body):
    return {
        "from": wa_id,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": body},
    }


def post_signed(stack, payload, secret=None, header=True):
    raw = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if header:
        headers["X-Hub-Signature-256"] = sign(secret or stack.app_secret, raw)
    return requests.post(f"{stack.rasa}/webhooks/whatsapp/webhook", data=raw, headers=headers, timeout=30)


def tap(stack, wa_id: str, record: Dict[str, Any], title: str, phone_number_id: str = CENTRO) -> None:
    """Tap the button or list row with this title on a bot message, as WhatsApp posts it."""
    interactive = record["message"]["interactive"]
    if interactive["type"] == "button":
        choices = [b["reply"] for b in interactive["action"]["buttons"]]
        kind = "button_reply"
    else:
        choices = [row for section in interactive["action"]["sections"] for row in section["rows"]]
        kind = "list_reply"
    [choice] = [c for c in choices if c["title"] == title]
    answer = requests.post(
        f"{stack.backoffice}/simulator/api/send",
        timeout=60,
        json={
            "phone_number_id": phone_number_id,
            "wa_id": wa_id,
            "type": kind,
            "context_id": record["id"],
            kind: {"id": choice["id"], "title": choice["title"]},
        },
    )
    assert answer.status_code == 200 and answer.json()["status"] == 200, answer.text


def say_and_wait(stack, wa_id: str, text: str, new: int = 1, timeout: float = 40, **kwargs: Any) -> List[Dict]:
    before = len(bot_messages(stack, wa_id))
    customer_says(stack, wa_id, text, **kwargs)
    return wait_replies(stack, wa_id, count=before + new, timeout=timeout)[before:]


def tap_and_wait(
    stack, wa_id: str, record: Dict[str, Any], title: str, new: int = 1, timeout: float = 40
) -> List[Dict]:
    before = len(bot_messages(stack, wa_id))
    tap(stack, wa_id, record, title)
    return wait_replies(stack, wa_id, count=before + new, timeout=timeout)[before:]
