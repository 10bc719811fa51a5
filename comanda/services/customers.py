"""Customers and their conversations with a store."""

from __future__ import annotations

from typing import Optional

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import now
from comanda.conversations import conversation_id, parse_conversation_id
from comanda.db import insert_unless_duplicate
from comanda.errors import InvalidInput
from comanda.services.stores import get_store


def normalize_phone(raw: str) -> str:
    """E.164 from a WhatsApp id or a typed number: "5215512345678" → "+525512345678".

    WhatsApp still reports many Mexican mobiles with the "1" Mexico dropped in 2019 (+52 1 55 …);
    one person must be one customer whichever form arrives, so that "1" is removed.
    """
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not digits:
        raise InvalidInput(f"not a phone number: {raw!r}")
    if digits.startswith("521") and len(digits) == 13:
        digits = "52" + digits[3:]
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"not a phone number: {raw!r} ({exc})") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(f"not a phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def find_or_create_customer(
    session: Session, phone: Optional[str], user_id: Optional[str] = None, name: Optional[str] = None
) -> m.Customer:
    """The customer for a phone (or, without one, a WhatsApp BSUID); fills the name when unknown."""
    if not phone and not user_id:
        raise InvalidInput("a customer needs a phone number or a WhatsApp user id")
    customer = None
    if phone:
        customer = session.execute(select(m.Customer).where(m.Customer.phone == phone)).scalar_one_or_none()
    if customer is None and user_id:
        customer = session.execute(
            select(m.Customer).where(m.Customer.whatsapp_user_id == user_id)
        ).scalar_one_or_none()
    if customer is None:
        customer = m.Customer(phone=phone, whatsapp_user_id=user_id, name=name)
        session.add(customer)
        session.flush()
        return customer
    if phone and not customer.phone:
        customer.phone = phone
    if user_id and not customer.whatsapp_user_id:
        customer.whatsapp_user_id = user_id
    if name and not customer.name:
        customer.name = name
    return customer


def touch_conversation(
    session: Session, store_id: str, customer: m.Customer, channel: str, recipient: str
) -> m.Conversation:
    """The store + customer + channel conversation, created on first contact; marks the inbound time."""
    key = customer.phone or customer.whatsapp_user_id
    conversation = session.get(m.Conversation, conversation_id(store_id, channel, key))
    if conversation is None:
        conversation = m.Conversation(
            id=conversation_id(store_id, channel, key), store_id=store_id, customer_id=customer.id, channel=channel
        )
        session.add(conversation)
    conversation.recipient = recipient
    conversation.last_inbound_at = now()
    session.flush()
    return conversation


def conversation_for(session: Session, sender_id: str) -> m.Conversation:
    """The conversation behind a Rasa sender id. WhatsApp registers its conversations as messages
    arrive; the REST channel and the shell do not, so theirs are made on first use, for the customer
    whose phone the id names (``centro:rest:+5215512345678``) or an anonymous one ("default")."""
    conversation = session.get(m.Conversation, sender_id)
    if conversation is not None:
        return conversation
    ref = parse_conversation_id(sender_id)
    get_store(session, ref.store_id)
    try:
        phone = normalize_phone(ref.customer) if ref.customer else None
    except InvalidInput:
        phone = None
    customer = (
        session.execute(select(m.Customer).where(m.Customer.phone == phone)).scalar_one_or_none() if phone else None
    )
    if customer is None:
        customer = m.Customer(phone=phone)
        if insert_unless_duplicate(session, customer) is None:
            customer = session.execute(select(m.Customer).where(m.Customer.phone == phone)).scalar_one()
    insert_unless_duplicate(
        session, m.Conversation(id=sender_id, store_id=ref.store_id, customer_id=customer.id, channel=ref.channel)
    )
    return session.get(m.Conversation, sender_id)
