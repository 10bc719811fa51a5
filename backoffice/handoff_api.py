"""The staff API for handed-over chats, on personal tokens (``Authorization: Bearer cst_…``, made with
``comanda staff token EMAIL``), with the same rules as the console's inbox: a token acts as its owner, with
the owner's stores; another store's ticket is 404; a chat someone else owns is 409 on claim and messages.

- ``GET /api/handoffs?store=&status=waiting|open|resolved``: tickets, newest first;
- ``GET /api/handoffs/<id>``: the ticket with its ``messages`` ({from: customer|bot|staff, text, at,
  status}), private ``notes``, the 24-hour window, templates, canned replies, open cart and recent orders;
- ``POST /api/handoffs/<id>/claim``, ``/assign {"staff_id": 7}``, ``/resolve``;
- ``POST /api/handoffs/<id>/messages {"text": "…"}`` or ``{"template": "…", "params": […]}`` (optional
  ``"client_id"``: the same id sends once);
- ``POST /api/handoffs/<id>/notes {"text": "…"}``;
- ``GET /api/handoffs/<id>/media/<message id>``: a file the customer sent.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from backoffice import handoffs
from backoffice.handoff_view import conversation, ticket_summary
from backoffice.http_errors import json_error
from backoffice.openapi import Spec, json_body, obj, operation, path_id, query
from backoffice.queue_api import answer, body, read, staff_only, write
from comanda.concurrency import in_thread
from comanda.enums import HandoffStatus
from comanda.errors import ComandaError, InvalidInput
from comanda.services import handoff, handoff_messages
from comanda.services.audit import Actor
from comanda.services.staff import StaffMember
from integrations.rasa_api import RasaApi
from integrations.whatsapp import media

bp = Blueprint("handoff_api", url_prefix="/api/handoffs")
bp.middleware("request")(staff_only)
MEDIA_URL = "/api/handoffs/media/{}"


def who(request: Request) -> StaffMember:
    return request.ctx.member


def actor(request: Request) -> Actor:
    return request.ctx.actor


def done(result: handoffs.Done) -> Dict[str, Any]:
    return {**result.ticket, **({"warning": result.warning} if result.warning else {})}


async def run(work: Any, *args: Any, status: int = 200) -> HTTPResponse:
    try:
        return response.json(await in_thread(work, *args), status=status)
    except ComandaError as exc:
        return json_error(exc)


@bp.get("")
async def index(request: Request) -> HTTPResponse:
    member = who(request)
    store, status = request.args.get("store"), request.args.get("status")
    return await answer(
        request, read, lambda s: [ticket_summary(s, t) for t in handoff.list_tickets(s, member, store, status)]
    )


@bp.get("/<ticket_id:int>")
async def show(request: Request, ticket_id: int) -> HTTPResponse:
    member = who(request)

    def work(session: Session) -> Dict[str, Any]:
        found = conversation(
            session, RasaApi.from_settings(), handoff.visible_ticket(session, member, ticket_id), MEDIA_URL
        )
        return {
            **found.ticket,
            "messages": found.messages,
            "history_complete": found.history_complete,
            "window_open": found.window_open,
            "language": found.language,
            "templates": [
                {"name": t.name, "language": t.language, "body": t.body, "params": t.param_count}
                for t in found.templates
            ],
            "canned_replies": found.canned,
            "notes": found.notes,
            "cart": found.cart,
            "orders": found.orders,
        }

    return await answer(request, read, work)


@bp.post("/<ticket_id:int>/claim")
async def claim(request: Request, ticket_id: int) -> HTTPResponse:
    return await run(
        lambda: done(handoffs.claim_chat(who(request), actor(request), ticket_id, RasaApi.from_settings()))
    )


@bp.post("/<ticket_id:int>/assign")
async def assign(request: Request, ticket_id: int) -> HTTPResponse:
    colleague = body(request).get("staff_id")
    if not isinstance(colleague, int) or isinstance(colleague, bool):
        return json_error(InvalidInput("'staff_id' must be the colleague's account id (a number)"))
    return await run(
        lambda: done(handoffs.assign_chat(who(request), actor(request), ticket_id, colleague, RasaApi.from_settings()))
    )


@bp.post("/<ticket_id:int>/resolve")
async def resolve(request: Request, ticket_id: int) -> HTTPResponse:
    return await run(
        lambda: done(handoffs.resolve_chat(who(request), actor(request), ticket_id, RasaApi.from_settings()))
    )


def _optional_text(data: Dict[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"'{key}' must be text")
    return value


@bp.post("/<ticket_id:int>/messages")
async def send(request: Request, ticket_id: int) -> HTTPResponse:
    data = body(request)
    try:
        text, template = _optional_text(data, "text"), _optional_text(data, "template")
        client_id = _optional_text(data, "client_id")
    except InvalidInput as exc:
        return json_error(exc)
    return await run(
        handoffs.reply_chat,
        who(request),
        actor(request),
        ticket_id,
        RasaApi.from_settings(),
        text,
        template,
        data.get("params") or [],
        client_id,
        status=201,
    )


@bp.post("/<ticket_id:int>/notes")
async def note(request: Request, ticket_id: int) -> HTTPResponse:
    text = body(request).get("text")
    member, by = who(request), actor(request)

    def work(session: Session) -> Dict[str, Any]:
        added = handoff_messages.add_note(session, member, by, ticket_id, text if isinstance(text, str) else "")
        return {"id": added.id, "staff": member.name, "text": added.text, "at": added.created_at.isoformat()}

    try:
        return response.json(await in_thread(write, work), status=201)
    except ComandaError as exc:
        return json_error(exc)


@bp.get("/media/<inbound_id:int>")
async def customer_file(request: Request, inbound_id: int) -> HTTPResponse:
    return await media_response(who(request), inbound_id)


async def media_response(member: StaffMember, inbound_id: int) -> HTTPResponse:
    """A file the customer sent, downloaded from the Graph API the first time and kept. Shown inline only
    when it is an image or audio; anything else downloads (a customer's HTML never runs in the console)."""
    try:
        kept = await in_thread(fetch_media, member, inbound_id)
    except ComandaError as exc:
        return json_error(exc)
    mime, data, filename = kept
    inline = mime.split("/")[0] in ("image", "audio", "video") and mime != "image/svg+xml"
    safe_name = re.sub(r"[^\w.\- ]", "_", filename or f"file-{inbound_id}")[:100]
    disposition = "inline" if inline else f'attachment; filename="{safe_name}"'
    return response.raw(
        data,
        content_type=mime if inline else "application/octet-stream",
        headers={
            "Content-Disposition": disposition,
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def fetch_media(member: StaffMember, inbound_id: int) -> tuple:
    def stored(session: Session) -> Optional[tuple]:
        handoff_messages.inbound_media(session, member, inbound_id)
        found = handoff_messages.kept_media(session, inbound_id)
        return (found.mime_type, found.data, found.filename) if found else None

    kept = read(stored)
    if kept is not None:
        return kept
    reference = read(lambda s: handoff_messages.media_reference(handoff_messages.inbound_media(s, member, inbound_id)))
    downloaded = media.download(reference["id"])

    def keep(session: Session) -> tuple:
        row = handoff_messages.inbound_media(session, member, inbound_id)
        found = handoff_messages.keep_media(session, row, downloaded.data, downloaded.mime_type)
        return found.mime_type, found.data, found.filename

    return write(keep)


def _created(spec: Spec) -> Spec:
    """An operation whose success is 201 (something was added)."""
    spec["responses"]["201"] = spec["responses"].pop("200")
    return spec


_TICKET = {
    "type": "object",
    "description": "The ticket: id, conversation_id, store, customer, reason, status, assignee, waiting_since.",
}
_TICKET_ID = path_id("ticket_id", "The ticket's number.")
_ACT_ERRORS = {
    400: "Bad input.",
    404: "No such ticket at the token owner's stores.",
    409: "Someone else owns the chat, or it is resolved.",
    503: "Rasa's HTTP API did not answer.",
}
OPENAPI: Spec = {
    "paths": {
        "/api/handoffs": {
            "get": operation(
                "Handed-over chats of the token owner's stores, newest first.",
                {"type": "array", "items": _TICKET},
                {400: "An unknown store or status.", 404: "A store the token owner cannot see."},
                parameters=[
                    query("store", "Only this store (its id)."),
                    query("status", "Only tickets in this status.", {"type": "string", "enum": HandoffStatus.values()}),
                ],
                tag="handoffs",
            )
        },
        "/api/handoffs/{ticket_id}": {
            "get": operation(
                "The ticket with its messages (customer, bot, staff), notes, the 24-hour window, templates, "
                "canned replies, open cart and recent orders.",
                _TICKET,
                {404: "No such ticket at the token owner's stores.", 503: "Rasa's HTTP API did not answer."},
                parameters=[_TICKET_ID],
                tag="handoffs",
            )
        },
        **{
            f"/api/handoffs/{{ticket_id}}/{verb}": {
                "post": operation(summary, _TICKET, _ACT_ERRORS, parameters=[_TICKET_ID], tag="handoffs", body=payload)
            }
            for verb, summary, payload in (
                ("claim", "Take the chat: the bot goes quiet for it.", None),
                (
                    "assign",
                    "Hand the chat to a colleague of the same store.",
                    json_body(obj({"staff_id": {"type": "integer"}}), "The colleague's account id."),
                ),
                ("resolve", "Give the chat back to the bot; the customer is told.", None),
            )
        },
        "/api/handoffs/{ticket_id}/messages": {
            "post": _created(
                operation(
                    "Reply to the customer on WhatsApp (free text inside the 24-hour window, else a template).",
                    {"type": "object"},
                    {**_ACT_ERRORS, 409: "Someone else owns the chat, it is resolved, or the window is closed."},
                    parameters=[_TICKET_ID],
                    body=json_body(
                        {
                            "type": "object",
                            "properties": {
                                "text": {"type": "string"},
                                "template": {"type": "string"},
                                "params": {"type": "array", "items": {"type": "string"}},
                                "client_id": {"type": "string"},
                            },
                        },
                        "text, or template with params; the same client_id sends once.",
                    ),
                    tag="handoffs",
                )
            )
        },
        "/api/handoffs/{ticket_id}/notes": {
            "post": _created(
                operation(
                    "A private note on the ticket (the customer never sees it).",
                    obj(
                        {
                            "id": {"type": "integer"},
                            "staff": {"type": "string"},
                            "text": {"type": "string"},
                            "at": {"type": "string"},
                        }
                    ),
                    {400: "Bad input.", 404: "No such ticket at the token owner's stores."},
                    parameters=[_TICKET_ID],
                    body=json_body(obj({"text": {"type": "string"}})),
                    tag="handoffs",
                )
            )
        },
        "/api/handoffs/media/{inbound_id}": {
            "get": {
                **operation(
                    "A file the customer sent (downloaded from the Graph API once, then kept).",
                    {"type": "string", "format": "binary"},
                    {404: "No such file at the token owner's stores.", 502: "The Graph API did not give the file."},
                    parameters=[path_id("inbound_id", "The inbound message's number.")],
                    tag="handoffs",
                ),
            }
        },
    },
    "schemas": {},
}
_MEDIA_OK = OPENAPI["paths"]["/api/handoffs/media/{inbound_id}"]["get"]["responses"]["200"]
_MEDIA_OK["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
