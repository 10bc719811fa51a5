"""A handoff ticket as staff see it, for the console's inbox and the staff API alike: the ticket, the
conversation's whole history (Rasa's tracker, read through its HTTP API: the customer's messages, the
bot's with their buttons, staff's with their delivery status, media the customer sent) and the customer's
open cart and recent orders.

The tracker is the history. The customer's messages still on their way into it (stored by the channel,
not yet through Rasa) are shown after it from the inbox table, so a message shows up the moment it
arrives. When Rasa cannot be reached the page says so and shows what the database holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.enums import HandoffStatus, InboxStatus, values_in
from comanda.i18n import language_or_default
from comanda.services import carts, handoff_messages
from integrations.rasa_api import RasaApi, RasaUnavailable

RECENT_ORDERS = 5
PENDING = values_in((InboxStatus.RECEIVED, InboxStatus.PROCESSING))


def ticket_summary(session: Session, ticket: m.HandoffTicket) -> Dict[str, Any]:
    """The ticket as the API lists it (and the inbox shows it)."""
    customer = session.get(m.Customer, ticket.customer_id)
    store = session.get(m.Store, ticket.store_id)
    assignee = session.get(m.StaffUser, ticket.assigned_to) if ticket.assigned_to else None
    waiting = (ticket.claimed_at or clock.now()) - ticket.created_at
    return {
        "id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "store": ticket.store_id,
        "store_name": store.name,
        "customer": {"name": customer.name if customer else None, "phone": customer.phone if customer else None},
        "reason": ticket.reason,
        "summary": ticket.summary,
        "status": ticket.status,
        "assignee": {"id": assignee.id, "name": assignee.name, "email": assignee.email} if assignee else None,
        "waiting_since": ticket.created_at.isoformat(),
        "waiting_seconds": int(waiting.total_seconds()),
        "late": ticket.status == HandoffStatus.WAITING and waiting >= timedelta(minutes=store.handoff_warn_minutes),
        "claimed_at": _iso(ticket.claimed_at),
        "first_response_at": _iso(ticket.first_response_at),
        "resolved_at": _iso(ticket.resolved_at),
        "resolved_by": ticket.resolved_by,
    }


@dataclass
class Conversation:
    """Everything the conversation page (and GET /api/handoffs/{id}) shows."""

    ticket: Dict[str, Any]
    messages: List[Dict[str, Any]]
    history_complete: bool  # False: Rasa was unreachable, only what the database holds is shown
    window_open: bool
    language: str
    timezone: str  # the business's: times are shown in it
    templates: List[handoff_messages.Template]
    canned: List[Dict[str, str]]
    notes: List[Dict[str, Any]]
    cart: Optional[Dict[str, Any]]
    orders: List[Dict[str, Any]] = field(default_factory=list)


def conversation(session: Session, api: RasaApi, ticket: m.HandoffTicket, media_url: str) -> Conversation:
    """``media_url`` is formatted with the inbound message's id: where staff view a customer's file."""
    talk = session.get(m.Conversation, ticket.conversation_id)
    store = session.get(m.Store, ticket.store_id)
    language = language_or_default(talk.language or store.business.default_language)
    try:
        events = api.tracker(ticket.conversation_id).get("events") or []
        complete = True
    except RasaUnavailable:
        events, complete = [], False
    messages = history(session, ticket.conversation_id, events, media_url)
    name = handoff_messages.customer_name(session, talk)
    staff_names = dict(session.execute(select(m.StaffUser.id, m.StaffUser.name)).all())
    return Conversation(
        ticket=ticket_summary(session, ticket),
        messages=messages,
        history_complete=complete,
        window_open=handoff_messages.window_open(talk),
        language=language,
        timezone=store.business.timezone,
        templates=handoff_messages.templates(store, language),
        canned=handoff_messages.canned_replies(store, language, name, ticket),
        notes=[
            {"id": n.id, "staff": staff_names.get(n.staff_id), "text": n.text, "at": n.created_at.isoformat()}
            for n in handoff_messages.notes(session, ticket.id)
        ],
        cart=_cart(session, ticket.conversation_id, language),
        orders=_orders(session, talk),
    )


def history(
    session: Session, conversation_id: str, events: List[Dict[str, Any]], media_url: str
) -> List[Dict[str, Any]]:
    """Messages in order: the tracker's user and bot events, then the customer's messages not in it yet.
    Without a tracker (Rasa away) the staff replies come from the database."""
    inbound = {
        row.external_id: row
        for row in session.execute(
            select(m.InboundMessage).where(m.InboundMessage.conversation_id == conversation_id)
        ).scalars()
    }
    replies = handoff_messages.replies(session, conversation_id)
    reply_rows = {
        r.id: r for r in session.execute(select(m.HandoffReply).where(m.HandoffReply.id.in_(list(replies)))).scalars()
    }
    staff_names = dict(session.execute(select(m.StaffUser.id, m.StaffUser.name)).all())
    out: List[Dict[str, Any]] = []
    seen_inbound: set = set()
    seen_replies: set = set()
    for event in events:
        kind, metadata = event.get("event"), event.get("metadata") or {}
        at = _from_timestamp(event.get("timestamp"))
        if kind == "user":
            message_id = event.get("message_id") or metadata.get("message_id")
            row = inbound.get(message_id) if message_id else None
            if row is not None:
                seen_inbound.add(row.external_id)
                out.append(_customer(row, media_url))
            else:
                out.append(_message("customer", event.get("text") or "", at))
        elif kind == "bot" and metadata.get("from") == "staff":
            reply_id = int(metadata.get("reply_id") or 0)
            seen_replies.add(reply_id)
            out.append(_staff(reply_rows.get(reply_id), replies.get(reply_id), event, staff_names))
        elif kind == "bot":
            data = event.get("data") or {}
            buttons = [str(b.get("title")) for b in data.get("buttons") or [] if isinstance(b, dict)]
            text = event.get("text") or ("[" + str(next(iter(data.get("custom") or {}), "custom")) + "]")
            out.append({**_message("bot", text, at), "buttons": buttons})
    for reply_id, reply in sorted(reply_rows.items()):
        if reply_id not in seen_replies:  # not in the tracker yet (or no tracker): from the database
            out.append(_staff(reply, replies.get(reply_id), None, staff_names))
    for row in sorted(inbound.values(), key=lambda r: r.id):
        if row.external_id not in seen_inbound and (row.status in PENDING or not events):
            out.append(_customer(row, media_url))
    if not events:
        out.sort(key=lambda message: message["at"] or "")
    return out


def _message(sender: str, text: str, at: Optional[datetime]) -> Dict[str, Any]:
    return {"from": sender, "text": text, "at": _iso(at), "status": None, "buttons": [], "media": None}


def _customer(row: m.InboundMessage, media_url: str) -> Dict[str, Any]:
    """A customer's message as they sent it (the reply's title, not its payload; a file, viewable)."""
    parsed = (row.payload or {}).get("parsed") or {}
    raw = (row.payload or {}).get("message") or {}
    kind = parsed.get("kind")
    media = None
    if kind == "media":
        body = raw.get(parsed.get("media_type")) or {}
        text = body.get("caption") or body.get("filename") or ""
        media = {"type": parsed.get("media_type"), "url": media_url.format(row.id), "mime_type": body.get("mime_type")}
    elif kind == "reply":
        text = parsed.get("reply_title") or parsed.get("reply_id") or ""
    elif kind == "location":
        place = parsed.get("location") or {}
        text = "📍 " + (
            place.get("name") or place.get("address") or f"{place.get('latitude')}, {place.get('longitude')}"
        )
    elif kind == "order":
        text = "🛒 " + ", ".join(f"{i['quantity']} × {i['sku']}" for i in parsed.get("items") or [])
    else:
        text = parsed.get("text") or f"[{row.message_type}]"
    return {**_message("customer", text, row.received_at), "media": media}


def _staff(
    reply: Optional[m.HandoffReply],
    row: Optional[m.OutboundMessage],
    event: Optional[Dict[str, Any]],
    names: Dict[int, str],
) -> Dict[str, Any]:
    at = reply.created_at if reply is not None else _from_timestamp((event or {}).get("timestamp"))
    text = reply.text if reply is not None else str((event or {}).get("text") or "")
    message = _message("staff", text, at)
    message["status"] = handoff_messages.delivery_status(row) if row is not None else None
    message["staff"] = names.get(reply.staff_id) if reply is not None else None
    message["template"] = reply.template if reply is not None else None
    return message


def _cart(session: Session, conversation_id: str, language: str) -> Optional[Dict[str, Any]]:
    cart = carts.find_open_cart(session, conversation_id)
    if cart is None or not cart.lines:
        return None
    lines, subtotal = carts.cart_view(session, cart, language)
    return {
        "lines": [{"name": line.name, "quantity": line.quantity, "total": str(line.line_total)} for line in lines],
        "subtotal": str(subtotal),
    }


def _orders(session: Session, talk: m.Conversation) -> List[Dict[str, Any]]:
    """The customer's latest orders at this store, with their status and payment."""
    orders = session.execute(
        select(m.Order)
        .where(m.Order.customer_id == talk.customer_id, m.Order.store_id == talk.store_id)
        .order_by(m.Order.id.desc())
        .limit(RECENT_ORDERS)
    ).scalars()
    return [
        {
            "id": order.id,
            "ticket": order.ticket_code,
            "status": order.status,
            "payment_status": order.payment_status,
            "payment_method": order.payment_method,
            "total": str(order.total),
            "created_at": order.created_at.isoformat(),
        }
        for order in orders
    ]


def _from_timestamp(value: Any) -> Optional[datetime]:
    return datetime.fromtimestamp(float(value), tz=timezone.utc) if isinstance(value, (int, float)) else None


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None
