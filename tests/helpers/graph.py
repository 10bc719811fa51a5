"""The simulator's fake WhatsApp Cloud API as the connector meets it: its access token and app secret, sends
(bearer token, JSON bodies), faults armed, what it kept, and the signed webhooks it posts back."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Callable, Dict, List

import requests

from comanda.settings import SIMULATOR_WHATSAPP
from tests.helpers.fake_http import Request
from tests.helpers.simulator import CENTRO

TOKEN = SIMULATOR_WHATSAPP["WHATSAPP_ACCESS_TOKEN"]
APP_SECRET = SIMULATOR_WHATSAPP["WHATSAPP_APP_SECRET"]
WEBHOOK_PATH = "/webhooks/whatsapp/webhook"
WA_ID = "5215512345678"


class Graph:
    """The connector's side of the fake Cloud API: bearer token, JSON bodies."""

    def __init__(self, base: str) -> None:
        self.base = f"{base}/simulator/graph/v21.0"

    def send(self, body: Dict[str, Any], phone_number_id: str = CENTRO, token: str = TOKEN) -> requests.Response:
        return requests.post(
            f"{self.base}/{phone_number_id}/messages",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )


def message(kind: str, content: Any, to: str = WA_ID) -> Dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: content}


TEXT = message("text", {"body": "hola\nqué tal", "preview_url": False})


def arm(backoffice: str, fault: Dict[str, Any]) -> requests.Response:
    return requests.post(f"{backoffice}/simulator/api/faults", json=fault, timeout=5)


def sent(backoffice: str) -> List[Dict[str, Any]]:
    """Every message the fake Cloud API accepted."""
    return requests.get(f"{backoffice}/simulator/api/sent", timeout=5).json()["messages"]


def verified(post: Request) -> Dict[str, Any]:
    """A webhook's JSON body, after checking Meta's signature over the exact bytes received."""
    expected = "sha256=" + hmac.new(APP_SECRET.encode(), post.body, hashlib.sha256).hexdigest()
    assert post.headers.get("X-Hub-Signature-256") == expected, "bad or missing X-Hub-Signature-256"
    return json.loads(post.body)


def value_of(payload: Dict[str, Any]) -> Dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]


def statuses_of(message_id: str) -> Callable[[Dict[str, Any]], bool]:
    return lambda p: any(s["id"] == message_id for s in value_of(p).get("statuses", []))


def messages_with(message_id: str) -> Callable[[Dict[str, Any]], bool]:
    return lambda p: any(m["id"] == message_id for m in value_of(p).get("messages", []))
