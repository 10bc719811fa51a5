"""Meta's webhook for the WhatsApp Cloud API: signature check and parsing, with no I/O.

``parse_webhook`` takes any JSON value and never raises: every entry × change × message and status
becomes an ``Inbound`` or a ``Status``; what cannot be understood is skipped. Real payloads carry
placeholders, numbers as strings, no ``from`` (users known only by BSUID) or no ``contacts``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_TYPES = ("image", "audio", "voice", "video", "document", "sticker")
# Kinds the bot answers; everything else (reactions, system notices, unsupported) is only logged.
ANSWERED = ("text", "reply", "location", "order", "media")


def sign(app_secret: str, raw_body: bytes) -> str:
    """The header value Meta sends: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def check_signature(app_secret: str, raw_body: bytes, header: Optional[str]) -> Optional[str]:
    """None when the signature is right; otherwise "missing" or "invalid". Compared in constant time."""
    if not header:
        return "missing"
    if not app_secret or not hmac.compare_digest(sign(app_secret, raw_body), header.strip()):
        return "invalid"
    return None


@dataclass
class Inbound:
    """One customer message, classified for the bot."""

    phone_number_id: str
    message_id: str
    kind: str  # text | reply | location | order | media | ignored
    message_type: str  # Meta's own type
    wa_id: Optional[str] = None  # the customer's WhatsApp id (phone digits), when Meta gives it
    user_id: Optional[str] = None  # business-scoped user id (BSUID)
    profile_name: Optional[str] = None
    text: Optional[str] = None
    reply_id: Optional[str] = None
    reply_title: Optional[str] = None
    location: Optional[Dict[str, Any]] = None
    items: List[Dict[str, Any]] = field(default_factory=list)
    media_type: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict)

    @property
    def sender(self) -> Optional[str]:
        return self.wa_id or self.user_id

    def to_record(self) -> Dict[str, Any]:
        """What the inbox keeps: Meta's message as received, and what was read from it."""
        return {"message": self.raw, "parsed": {k: v for k, v in asdict(self).items() if k != "raw"}}

    @classmethod
    def from_record(cls, record: Dict[str, Any]) -> Inbound:
        return cls(**record["parsed"], raw=record["message"])


@dataclass
class Status:
    phone_number_id: str
    message_id: str
    status: str  # sent | delivered | read | failed | ...
    recipient_id: Optional[str] = None
    errors: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def error_codes(self) -> List[int]:
        return [code for code in (_int(e.get("code")) for e in self.errors) if code is not None]


def parse_webhook(data: Any) -> Tuple[List[Inbound], List[Status]]:
    messages: List[Inbound] = []
    statuses: List[Status] = []
    for entry in _list(_dict(data).get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            value = _dict(change.get("value"))
            if change.get("field", "messages") != "messages":
                continue
            phone_number_id = _str(_dict(value.get("metadata")).get("phone_number_id"))
            if not phone_number_id:
                continue
            contacts = [_dict(c) for c in _list(value.get("contacts"))]
            for raw in _list(value.get("messages")):
                message = _parse_message(phone_number_id, _dict(raw), contacts)
                if message is not None:
                    messages.append(message)
            for raw in _list(value.get("statuses")):
                status = _parse_status(phone_number_id, _dict(raw))
                if status is not None:
                    statuses.append(status)
    return messages, statuses


def _parse_message(phone_number_id: str, raw: Dict[str, Any], contacts: List[Dict[str, Any]]) -> Optional[Inbound]:
    message_id = _str(raw.get("id"))
    if not message_id:
        return None
    wa_id = _str(raw.get("from"))
    user_id = _str(raw.get("from_user_id"))
    contact = _contact_for(wa_id, user_id, contacts)
    if contact:
        wa_id = wa_id or _str(contact.get("wa_id"))
        user_id = user_id or _str(contact.get("user_id"))
    name = _str(_dict(contact.get("profile")).get("name")) if contact else None
    message_type = _str(raw.get("type")) or "unknown"
    inbound = Inbound(
        phone_number_id, message_id, "ignored", message_type, wa_id=wa_id, user_id=user_id, profile_name=name, raw=raw
    )
    body = _dict(raw.get(message_type))
    if message_type == "text":
        text = _str(body.get("body"))
        if text:
            inbound.kind, inbound.text = "text", text
    elif message_type == "interactive":
        reply_type = _str(body.get("type"))
        reply = _dict(body.get(reply_type)) if reply_type in ("button_reply", "list_reply") else {}
        if _str(reply.get("id")):
            inbound.kind, inbound.reply_id, inbound.reply_title = "reply", _str(reply["id"]), _str(reply.get("title"))
    elif message_type == "button":
        payload = _str(body.get("payload")) or _str(body.get("text"))
        if payload:
            inbound.kind, inbound.reply_id, inbound.reply_title = "reply", payload, _str(body.get("text"))
    elif message_type == "location":
        latitude, longitude = _float(body.get("latitude")), _float(body.get("longitude"))
        if latitude is not None and longitude is not None and -90 <= latitude <= 90 and -180 <= longitude <= 180:
            inbound.kind = "location"
            inbound.location = {
                "latitude": latitude,
                "longitude": longitude,
                "name": _str(body.get("name")),
                "address": _str(body.get("address")),
            }
    elif message_type == "order":
        items = []
        for item in _list(body.get("product_items")):
            item = _dict(item)
            sku, quantity = _str(item.get("product_retailer_id")), _int(item.get("quantity"))
            if sku and quantity and quantity > 0:
                items.append({"sku": sku, "quantity": quantity})
        if items:
            inbound.kind, inbound.items = "order", items
    elif message_type in MEDIA_TYPES:
        inbound.kind, inbound.media_type = "media", message_type
    return inbound


def _parse_status(phone_number_id: str, raw: Dict[str, Any]) -> Optional[Status]:
    message_id, status = _str(raw.get("id")), _str(raw.get("status"))
    if not message_id or not status:
        return None
    return Status(
        phone_number_id,
        message_id,
        status,
        recipient_id=_str(raw.get("recipient_id")),
        errors=[_dict(e) for e in _list(raw.get("errors"))],
    )


def _contact_for(wa_id: Optional[str], user_id: Optional[str], contacts: List[Dict[str, Any]]) -> Dict[str, Any]:
    for contact in contacts:
        if (wa_id and _str(contact.get("wa_id")) == wa_id) or (user_id and _str(contact.get("user_id")) == user_id):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> Optional[str]:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        text = str(value).strip()
        return text or None
    return None


def _int(value: Any) -> Optional[int]:
    try:
        return int(str(value).strip()) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> Optional[float]:
    try:
        number = float(str(value).strip()) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and number == number and abs(number) != float("inf") else None
