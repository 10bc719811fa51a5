"""WhatsApp Cloud API payloads as Meta builds them, and Meta's webhook signature: pure functions.

The simulator posts these to the connector; the connector's tests and benchmarks reuse them so both
sides agree on one rendering of Meta's documented shapes (see tests/fixtures/whatsapp/).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from integrations.whatsapp.webhook import sign  # noqa: F401 - Meta's signature, shared with the connector

# The WhatsApp Business Account id the simulator pretends to be (entry[].id of every webhook).
WABA_ID = "100000000000001"
ERROR_CODES_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# Error titles and details as Meta words them, by code.
ERRORS: Dict[int, Dict[str, str]] = {
    100: {"title": "Invalid parameter", "details": "Invalid parameter"},
    130429: {"title": "Rate limit hit", "details": "Cloud API message throughput has been reached."},
    131000: {"title": "Something went wrong", "details": "Message failed to send due to an unknown error."},
    131047: {
        "title": "Re-engagement message",
        "details": "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
    },
    131056: {
        "title": "(Business Account, Consumer Account) pair rate limit hit",
        "details": "Too many messages sent from the sender phone number to the same recipient phone number "
        "in a short period of time.",
    },
}


@dataclass(frozen=True)
class Chat:
    """One customer writing to one business number: what every webhook about them repeats."""

    phone_number_id: str
    display_phone_number: str  # digits only, as Meta writes it in metadata
    wa_id: str
    name: str = ""


def new_message_id() -> str:
    return f"wamid.{uuid.uuid4().hex.upper()}"


def unix_now() -> str:
    return str(int(time.time()))


def encode(payload: Dict[str, Any]) -> bytes:
    """Meta's wire format: compact JSON with non-ASCII and slashes escaped.

    Escaping like Meta makes a connector that re-serialises the body before checking the
    signature fail here, as it would in production.
    """
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def webhook(chat: Chat, value: Dict[str, Any]) -> Dict[str, Any]:
    """The envelope of every messages-field webhook around one change value."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": chat.display_phone_number,
                                "phone_number_id": chat.phone_number_id,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def inbound(
    chat: Chat,
    message_type: str,
    content: Dict[str, Any],
    *,
    context_id: Optional[str] = None,
    message_id: Optional[str] = None,
    timestamp: Optional[str] = None,
) -> Dict[str, Any]:
    """A customer's message; ``context_id`` is the business message it answers."""
    message: Dict[str, Any] = {}
    if context_id:
        message["context"] = {"from": chat.display_phone_number, "id": context_id}
    message.update(
        {
            "from": chat.wa_id,
            "id": message_id or new_message_id(),
            "timestamp": timestamp or unix_now(),
            "type": message_type,
            message_type: content,
        }
    )
    return webhook(chat, {"contacts": [{"profile": {"name": chat.name}, "wa_id": chat.wa_id}], "messages": [message]})


def text(chat: Chat, body: str, **ids: Any) -> Dict[str, Any]:
    return inbound(chat, "text", {"body": body}, **ids)


def button_reply(chat: Chat, button_id: str, title: str, context_id: str, **ids: Any) -> Dict[str, Any]:
    return inbound(
        chat,
        "interactive",
        {"type": "button_reply", "button_reply": {"id": button_id, "title": title}},
        context_id=context_id,
        **ids,
    )


def list_reply(
    chat: Chat, row_id: str, title: str, description: Optional[str], context_id: str, **ids: Any
) -> Dict[str, Any]:
    reply = {"id": row_id, "title": title}
    if description:
        reply["description"] = description
    return inbound(chat, "interactive", {"type": "list_reply", "list_reply": reply}, context_id=context_id, **ids)


def location(
    chat: Chat, latitude: float, longitude: float, name: Optional[str] = None, address: Optional[str] = None, **ids: Any
) -> Dict[str, Any]:
    place: Dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    place.update({k: v for k, v in (("name", name), ("address", address)) if v})
    return inbound(chat, "location", place, **ids)


def media(
    chat: Chat,
    kind: str,
    media_id: str,
    mime_type: str,
    data: bytes,
    *,
    caption: Optional[str] = None,
    filename: Optional[str] = None,
    voice: bool = False,
    **ids: Any,
) -> Dict[str, Any]:
    """A photo, audio (``voice``: a voice note recorded in WhatsApp) or document the customer sent; the
    bytes stay at the Graph API under ``media_id``, the webhook carries their type and SHA-256 (base64)."""
    content: Dict[str, Any] = {}
    if caption and kind in ("image", "document", "video"):
        content["caption"] = caption
    if filename and kind == "document":
        content["filename"] = filename
    content.update(mime_type=mime_type, sha256=base64.b64encode(hashlib.sha256(data).digest()).decode(), id=media_id)
    if kind == "audio":
        content["voice"] = voice
    return inbound(chat, kind, content, **ids)


def error_object(code: int) -> Dict[str, Any]:
    """An error as it appears in a failed status's ``errors`` list."""
    known = ERRORS.get(code, {"title": f"Error {code}", "details": f"Simulated error {code}."})
    return {
        "code": code,
        "title": known["title"],
        "message": known["title"],
        "error_data": {"details": known["details"]},
        "href": ERROR_CODES_URL,
    }


def status(
    chat: Chat,
    message_id: str,
    state: str,
    *,
    errors: Optional[List[Dict[str, Any]]] = None,
    timestamp: Optional[str] = None,
) -> Dict[str, Any]:
    """A status webhook (sent, delivered, read or failed) for a message the business sent."""
    stamp = timestamp or unix_now()
    update: Dict[str, Any] = {"id": message_id, "status": state, "timestamp": stamp, "recipient_id": chat.wa_id}
    if state in ("sent", "delivered"):
        conversation_id = hashlib.md5(f"{chat.phone_number_id}:{chat.wa_id}".encode()).hexdigest()
        update["conversation"] = {"id": conversation_id, "origin": {"type": "service"}}
        if state == "sent":
            update["conversation"]["expiration_timestamp"] = str(int(stamp) + 24 * 3600)
        update["pricing"] = {
            "billable": False,
            "pricing_model": "PMP",
            "type": "free_customer_service",
            "category": "service",
        }
    if errors:
        update["errors"] = errors
    value: Dict[str, Any] = {"statuses": [update]}
    if chat.name:
        value["contacts"] = [{"profile": {"name": chat.name}, "wa_id": chat.wa_id}]
    return webhook(chat, value)


def graph_error(code: int, details: Optional[str] = None) -> Dict[str, Any]:
    """Graph's error envelope for a refused API call."""
    if code == 190:
        return {
            "error": {
                "message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException",
                "code": 190,
                "fbtrace_id": _trace_id(),
            }
        }
    known = ERRORS.get(code, {"title": f"Error {code}", "details": f"Simulated error {code}."})
    return {
        "error": {
            "message": f"(#{code}) {known['title']}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or known["details"]},
            "fbtrace_id": _trace_id(),
        }
    }


def _trace_id() -> str:
    return secrets.token_urlsafe(16)
