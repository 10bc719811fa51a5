"""Conversation ids: Rasa's sender id names the store, the channel and the customer.

A conversation is store + customer (+ channel): the same person writing to two branches has two
conversations, each with its own tracker and cart. Ids look like ``centro:whatsapp:+5215512345678``.
Free-form ids (``rasa shell``'s "default", REST tests, a middle part that is no Channel) belong to the
default store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from comanda.enums import Channel
from comanda.settings import setting


@dataclass(frozen=True)
class ConversationRef:
    store_id: str
    channel: str
    customer: Optional[str]  # E.164 phone, or None for an anonymous test conversation


def conversation_id(store_id: str, channel: str, phone: str) -> str:
    return f"{store_id}:{channel}:{phone}"


def parse_conversation_id(sender_id: str) -> ConversationRef:
    parts = sender_id.split(":", 2)
    if len(parts) == 3 and all(parts) and Channel.parse(parts[1]) is not None:
        return ConversationRef(store_id=parts[0], channel=parts[1], customer=parts[2])
    return ConversationRef(store_id=setting("COMANDA_DEFAULT_STORE"), channel=Channel.REST.value, customer=None)
