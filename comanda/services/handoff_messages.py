"""What staff say in a handed-over chat: free text inside WhatsApp's 24-hour window, an approved template
outside it, canned replies with {name}/{ticket}/{store}, and private notes the customer never sees.

A reply is an outbox row (the channel's ordering, dedupe, retries and pacing; its delivery status comes
from Meta's status webhooks) and a ``handoff_replies`` row that links it to the ticket and the staff
member. The back office then appends it to Rasa's tracker so the conversation's history is complete;
``in_tracker`` stays false until that worked (the handoff sweep tries again).

Templates and canned replies are the business's data (its catalog file, per store): see
``handoff_settings``. The Graph message itself is built outside the core (``compose``), by the WhatsApp
integration.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.enums import Channel, OutboxStatus
from comanda.errors import ComandaError, InvalidInput, NotFound
from comanda.i18n import language_or_default
from comanda.services import audit, handoff, outbox
from comanda.services.audit import Actor
from comanda.services.staff import StaffMember

SERVICE_WINDOW = timedelta(hours=24)
TEXT_LIMIT = 4096  # one WhatsApp text message
NOTE_LIMIT = 2000
PARAM_LIMIT = 1024
PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")
CANNED_VARIABLES = ("name", "ticket", "store")


class WindowClosed(ComandaError):
    """More than 24 hours since the customer last wrote: WhatsApp only takes an approved template."""

    code = "window_closed"


@dataclass(frozen=True)
class Template:
    name: str
    language: str  # WhatsApp's code: es_MX, en_US
    body: str  # with {{1}}, {{2}}… where the parameters go

    @property
    def param_count(self) -> int:
        return len(set(PLACEHOLDER.findall(self.body)))

    def fill(self, params: Sequence[str]) -> str:
        return PLACEHOLDER.sub(lambda found: params[int(found.group(1)) - 1], self.body)


@dataclass(frozen=True)
class Outgoing:
    """What a reply sends: the text the customer reads, and the template when it is one."""

    recipient: str
    text: str
    template: Optional[Template] = None
    params: Sequence[str] = ()


Compose = Callable[[Outgoing], Dict[str, Any]]  # → the Graph message (integrations.whatsapp.messages)


# --- the business's data: thresholds, templates, canned replies -----------------------------------


def handoff_settings(store_id: str, data: Dict[str, Any]) -> Dict[str, Any]:
    """A store's ``handoff:`` block of the catalog file, checked, as Store columns."""
    where = f"store {store_id}: handoff"
    warn = data.get("warn_minutes", 5)
    if not isinstance(warn, int) or isinstance(warn, bool) or warn < 1:
        raise InvalidInput(f"{where}.warn_minutes must be a whole number of minutes ≥ 1")
    templates = []
    for entry in data.get("templates") or []:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "language", "body")):
            raise InvalidInput(f"{where}.templates: each needs a name, a language (es_MX) and its body text")
        numbers = sorted({int(n) for n in PLACEHOLDER.findall(entry["body"])})
        if numbers != list(range(1, len(numbers) + 1)):
            raise InvalidInput(f"{where}.templates: {entry['name']}'s parameters must be {{{{1}}}}, {{{{2}}}}… in turn")
        templates.append({k: entry[k] for k in ("name", "language", "body")})
    canned = []
    for entry in data.get("canned_replies") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise InvalidInput(f"{where}.canned_replies: each needs a key and its text in es and en")
        for language in ("es", "en"):
            text = entry.get(language)
            if not isinstance(text, str) or not text.strip():
                raise InvalidInput(f"{where}.canned_replies: {entry['key']} has no {language} text")
            unknown = set(re.findall(r"\{(\w+)\}", text)) - set(CANNED_VARIABLES)
            if unknown:
                raise InvalidInput(f"{where}.canned_replies: {entry['key']} uses unknown {sorted(unknown)}")
        canned.append({"key": entry["key"], "es": entry["es"], "en": entry["en"]})
    return {"handoff_warn_minutes": warn, "handoff_templates": templates, "canned_replies": canned}


def templates(store: m.Store, language: Optional[str] = None) -> List[Template]:
    """The store's approved templates, those in ``language`` (es, en) first when it is given."""
    found = [Template(t["name"], t["language"], t["body"]) for t in store.handoff_templates or []]
    if language:
        found.sort(key=lambda t: not t.language.startswith(language))
    return found


def find_template(store: m.Store, name: str, language: str) -> Template:
    """The template by name, in the customer's language when it exists in it."""
    matching = [t for t in templates(store, language) if t.name == name]
    if not matching:
        raise InvalidInput(f"no approved template {name!r} at {store.name}", template=name)
    return matching[0]


def canned_replies(store: m.Store, language: str, name: str, ticket: m.HandoffTicket) -> List[Dict[str, str]]:
    """The store's canned replies in the customer's language, variables filled in."""
    values = {"name": name, "ticket": f"#{ticket.id}", "store": store.name}
    return [{"key": entry["key"], "text": entry[language].format(**values)} for entry in store.canned_replies or []]


def window_open(conversation: m.Conversation, at: Optional[datetime] = None) -> bool:
    """Free text may go: the customer wrote within 24 hours (WhatsApp's customer service window)."""
    last = conversation.last_inbound_at
    return last is not None and (at or clock.now()) - last < SERVICE_WINDOW


def customer_name(session: Session, conversation: m.Conversation) -> str:
    customer = session.get(m.Customer, conversation.customer_id)
    return (customer.name or "").split(" ")[0] if customer and customer.name else ""


# --- replies and notes ---------------------------------------------------------------------------


def send_reply(
    session: Session,
    who: StaffMember,
    actor: Actor,
    ticket_id: int,
    compose: Compose,
    text: Optional[str] = None,
    template: Optional[str] = None,
    params: Sequence[Any] = (),
    client_key: Optional[str] = None,
) -> m.HandoffReply:
    """Queue a staff message to the customer. A waiting ticket is claimed by whoever answers it; one
    another person owns is ``TicketTaken``. Free text needs the 24-hour window (``WindowClosed``
    otherwise); a template needs its exact parameters. ``client_key`` makes a repeated submit (a
    double click, a retried request) send once."""
    ticket = handoff.visible_ticket(session, who, ticket_id)
    dedupe = f"staff:{who.id}:{client_key}"[:240] if client_key else None
    if dedupe:
        earlier = session.execute(
            select(m.HandoffReply)
            .join(m.OutboundMessage, m.OutboundMessage.id == m.HandoffReply.outbound_message_id)
            .where(m.OutboundMessage.dedupe_key == dedupe)
        ).scalar_one_or_none()
        if earlier is not None:
            return earlier
    handoff.take_for_reply(session, who, actor, ticket)
    conversation = session.get(m.Conversation, ticket.conversation_id)
    if conversation.channel != Channel.WHATSAPP or not conversation.recipient:
        raise InvalidInput(f"conversation {conversation.id} is not a WhatsApp chat: staff cannot write to it here")
    outgoing = _outgoing(session, conversation, text, template, params)
    outbound_id = outbox.enqueue(
        session,
        Channel.WHATSAPP.value,
        conversation.recipient,
        compose(outgoing),
        store_id=conversation.store_id,
        conversation_id=conversation.id,
        dedupe_key=dedupe,
    )
    if outbound_id is None:  # the same key raced in from another request: that one is the reply
        raise InvalidInput("this message was sent already")
    now = clock.now()
    reply = m.HandoffReply(
        ticket_id=ticket.id,
        staff_id=who.id,
        outbound_message_id=outbound_id,
        text=outgoing.text,
        template=outgoing.template.name if outgoing.template else None,
        params=list(outgoing.params),
        in_tracker=False,
        created_at=now,
    )
    session.add(reply)
    session.execute(
        update(m.HandoffTicket)
        .where(m.HandoffTicket.id == ticket.id, m.HandoffTicket.first_response_at.is_(None))
        .values(first_response_at=now)
    )
    session.execute(update(m.HandoffTicket).where(m.HandoffTicket.id == ticket.id).values(updated_at=now))
    session.flush()
    audit.record(
        session,
        actor,
        "handoff.reply",
        "handoff_ticket",
        ticket.id,
        reply=reply.id,
        template=reply.template,
        outbound_message=outbound_id,
    )
    return reply


def _outgoing(
    session: Session, conversation: m.Conversation, text: Optional[str], template: Optional[str], params: Sequence[Any]
) -> Outgoing:
    if (text is None) == (template is None):
        raise InvalidInput("send either a text or a template (with its params)")
    if text is not None:
        text = text.strip()
        if not text:
            raise InvalidInput("the message is empty")
        if len(text) > TEXT_LIMIT:
            raise InvalidInput(f"a message may have at most {TEXT_LIMIT} characters")
        if not window_open(conversation):
            raise WindowClosed(
                "the customer last wrote more than 24 hours ago: WhatsApp only delivers an approved template now"
            )
        return Outgoing(conversation.recipient, text)
    store = session.get(m.Store, conversation.store_id)
    language = language_or_default(conversation.language or store.business.default_language)
    chosen = find_template(store, str(template), language)
    if not isinstance(params, (list, tuple)) or not all(isinstance(p, (str, int, float)) for p in params):
        raise InvalidInput("params must be a list of texts")
    values = [" ".join(str(p).split()) for p in params]
    if len(values) != chosen.param_count or any(not v or len(v) > PARAM_LIMIT for v in values):
        raise InvalidInput(f"template {chosen.name} takes {chosen.param_count} non-empty parameter(s)")
    return Outgoing(conversation.recipient, chosen.fill(values), chosen, values)


def replies_to_track(session: Session, older_than_seconds: float = 0, limit: int = 50) -> List[int]:
    """Staff replies not yet in Rasa's tracker, oldest first (those sent in the last seconds are left to
    the request that sent them)."""
    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    return list(
        session.execute(
            select(m.HandoffReply.id)
            .where(m.HandoffReply.in_tracker.is_(False), m.HandoffReply.created_at <= cutoff)
            .order_by(m.HandoffReply.id)
            .limit(limit)
        ).scalars()
    )


def claim_tracking(session: Session, reply_id: int) -> Optional[m.HandoffReply]:
    """Take a reply to append it to the tracker: the reply for exactly one caller, None for the others."""
    taken = session.execute(
        update(m.HandoffReply)
        .where(m.HandoffReply.id == reply_id, m.HandoffReply.in_tracker.is_(False))
        .values(in_tracker=True)
        .execution_options(synchronize_session=False)
    ).rowcount
    return session.get(m.HandoffReply, reply_id) if taken else None


def release_tracking(session: Session, reply_id: int) -> None:
    """Rasa did not take it: due again."""
    session.execute(update(m.HandoffReply).where(m.HandoffReply.id == reply_id).values(in_tracker=False))


def add_note(session: Session, who: StaffMember, actor: Actor, ticket_id: int, text: str) -> m.HandoffNote:
    """A private note on the ticket (any colleague with access to its store may add one)."""
    ticket = handoff.visible_ticket(session, who, ticket_id)
    text = (text or "").strip()
    if not text:
        raise InvalidInput("the note is empty")
    if len(text) > NOTE_LIMIT:
        raise InvalidInput(f"a note may have at most {NOTE_LIMIT} characters")
    note = m.HandoffNote(ticket_id=ticket.id, staff_id=who.id, text=text)
    session.add(note)
    session.execute(update(m.HandoffTicket).where(m.HandoffTicket.id == ticket.id).values(updated_at=clock.now()))
    session.flush()
    audit.record(session, actor, "handoff.note", "handoff_ticket", ticket.id, note=note.id)
    return note


def notes(session: Session, ticket_id: int) -> List[m.HandoffNote]:
    return list(
        session.execute(
            select(m.HandoffNote).where(m.HandoffNote.ticket_id == ticket_id).order_by(m.HandoffNote.id)
        ).scalars()
    )


def replies(session: Session, conversation_id: str) -> Dict[int, m.OutboundMessage]:
    """The conversation's staff replies by reply id, with their outbox rows (delivery status)."""
    rows = session.execute(
        select(m.HandoffReply, m.OutboundMessage)
        .join(m.OutboundMessage, m.OutboundMessage.id == m.HandoffReply.outbound_message_id)
        .join(m.HandoffTicket, m.HandoffTicket.id == m.HandoffReply.ticket_id)
        .where(m.HandoffTicket.conversation_id == conversation_id)
    ).all()
    return {reply.id: row for reply, row in rows}


def delivery_status(row: m.OutboundMessage) -> str:
    """sent, delivered, read or failed as staff see it (queued reads as sending, given up as failed)."""
    if row.status in (OutboxStatus.QUEUED, OutboxStatus.SENDING):
        return OutboxStatus.SENDING.value
    return OutboxStatus.FAILED.value if row.status == OutboxStatus.GIVEN_UP else str(row.status)


# --- files the customer sent ---------------------------------------------------------------------


def inbound_media(session: Session, who: StaffMember, inbound_id: int) -> m.InboundMessage:
    """A customer's media message in one of ``who``'s stores (NotFound otherwise, or when it is no file)."""
    row = session.get(m.InboundMessage, inbound_id)
    parsed = ((row.payload or {}).get("parsed") or {}) if row is not None else {}
    if row is None or not who.sees(row.store_id) or parsed.get("kind") != "media":
        raise NotFound(f"no file {inbound_id}", inbound_id=inbound_id)
    return row


def media_reference(row: m.InboundMessage) -> Dict[str, Any]:
    """The media object of Meta's message: id, mime_type, sha256, filename, caption."""
    payload = row.payload or {}
    body = (payload.get("message") or {}).get((payload.get("parsed") or {}).get("media_type") or "")
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise NotFound(f"message {row.id} names no media id")
    return body


def kept_media(session: Session, inbound_id: int) -> Optional[m.CustomerMedia]:
    return session.execute(
        select(m.CustomerMedia).where(m.CustomerMedia.inbound_message_id == inbound_id)
    ).scalar_one_or_none()


def keep_media(session: Session, row: m.InboundMessage, data: bytes, mime_type: str) -> m.CustomerMedia:
    """Keep a downloaded file, once per message; the SHA-256 Meta announced (base64 in webhooks, hex in
    the Graph API) must match when it gave one."""
    reference = media_reference(row)
    raw = hashlib.sha256(data).digest()
    digest = raw.hex()
    if reference.get("sha256") and reference["sha256"] not in (digest, base64.b64encode(raw).decode()):
        raise InvalidInput(f"media {reference['id']} does not match the SHA-256 Meta announced")
    existing = kept_media(session, row.id)
    if existing is not None:
        return existing
    media = m.CustomerMedia(
        inbound_message_id=row.id,
        media_id=reference["id"][:200],
        mime_type=(reference.get("mime_type") or mime_type).split(";")[0].strip()[:100],
        filename=(reference.get("filename") or None) and str(reference["filename"])[:255],
        sha256=digest,
        size=len(data),
        data=data,
    )
    session.add(media)
    session.flush()
    return media
