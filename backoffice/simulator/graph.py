"""A fake WhatsApp Cloud API (Graph API) that the connector sends to when the simulator stands in for Meta.

It checks what Meta checks (bearer token, message shape, documented length limits) and answers in
Graph's shapes, so a message the simulator accepts is one Meta would accept. Accepted messages are
kept for the chat page and the tests, and their statuses come back by signed webhook.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from typing import Any, Callable, Dict, List, Optional

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backoffice.simulator import meta, payloads
from backoffice.simulator.state import Simulator

bp = Blueprint("simulator_graph", url_prefix="/graph/<version:v[0-9]+\\.[0-9]+>")
media_bp = Blueprint("simulator_media", url_prefix="/media")


class Invalid(Exception):
    """A request Graph refuses with (#100) Invalid parameter; the text goes to error_data.details."""


def check(condition: Any, details: str) -> None:
    if not condition:
        raise Invalid(details)


def check_text(value: Any, what: str, most: int, least: int = 1) -> None:
    check(
        isinstance(value, str) and least <= len(value) <= most,
        f"{what} length invalid. Min length: {least}, Max length: {most}",
    )


def _text(content: Dict[str, Any]) -> None:
    check_text(content.get("body"), "Text body", 4096)


def _media(content: Dict[str, Any]) -> None:
    check(("id" in content) != ("link" in content), "Media needs exactly one of 'id' or 'link'")
    if "caption" in content:
        check_text(content["caption"], "Media caption", 1024)


def _template(content: Dict[str, Any]) -> None:
    check(isinstance(content.get("name"), str) and content["name"], "Parameter 'template.name' is required")
    check(
        isinstance(content.get("language"), dict) and content["language"].get("code"),
        "Parameter 'template.language.code' is required",
    )


def _location(content: Dict[str, Any]) -> None:
    for key in ("latitude", "longitude"):
        check(isinstance(content.get(key), (int, float)), f"Parameter 'location.{key}' must be a number")


def _reaction(content: Dict[str, Any]) -> None:
    check(isinstance(content.get("message_id"), str), "Parameter 'reaction.message_id' is required")
    check(isinstance(content.get("emoji"), str), "Parameter 'reaction.emoji' is required")


def _contacts(content: Any) -> None:
    check(isinstance(content, list) and content, "Parameter 'contacts' must be a non-empty list")


def _reply_buttons(action: Dict[str, Any]) -> None:
    buttons: Any = action.get("buttons")  # unvalidated JSON until checked
    check(isinstance(buttons, list) and 1 <= len(buttons) <= 3, "Buttons count invalid. Min: 1, Max: 3")
    replies: List[Any] = [b.get("reply") if isinstance(b, dict) and b.get("type") == "reply" else None for b in buttons]
    check(all(isinstance(r, dict) for r in replies), "Each button must be {'type': 'reply', 'reply': {id, title}}")
    for reply in replies:
        check_text(reply.get("title"), "Button title", 20)
        check_text(reply.get("id"), "Button id", 256)
    check(len({r["title"] for r in replies}) == len(replies), "Button titles must be unique")
    check(len({r["id"] for r in replies}) == len(replies), "Button ids must be unique")


def _list(action: Dict[str, Any]) -> None:
    check_text(action.get("button"), "Button label", 20)
    sections: Any = action.get("sections")
    check(isinstance(sections, list) and 1 <= len(sections) <= 10, "Sections count invalid. Min: 1, Max: 10")
    rows: List[Dict[str, Any]] = []
    for section in sections:
        check(
            isinstance(section, dict) and isinstance(section.get("rows"), list) and section["rows"],
            "Each section needs rows",
        )
        if len(sections) > 1 or "title" in section:
            check_text(section.get("title"), "Section title", 24)
        rows.extend(section["rows"])
    check(len(rows) <= 10, "Rows count invalid. Max: 10 rows in all sections")
    for row in rows:
        check(isinstance(row, dict), "Each row must be an object")
        check_text(row.get("id"), "Row id", 200)
        check_text(row.get("title"), "Row title", 24)
        if "description" in row:
            check_text(row["description"], "Row description", 72)
    check(len({r["id"] for r in rows}) == len(rows), "Row ids must be unique")


def _cta_url(action: Dict[str, Any]) -> None:
    parameters = action.get("parameters") or {}
    check(action.get("name") == "cta_url", "Parameter 'action.name' must be 'cta_url'")
    check_text(parameters.get("display_text"), "Display text", 20)
    check(isinstance(parameters.get("url"), str), "Parameter 'action.parameters.url' is required")


INTERACTIVE_ACTIONS: Dict[str, Callable[[Dict[str, Any]], None]] = {
    "button": _reply_buttons,
    "list": _list,
    "cta_url": _cta_url,
    "location_request_message": lambda action: check(
        action.get("name") == "send_location", "Parameter 'action.name' must be 'send_location'"
    ),
}


def _interactive(content: Dict[str, Any]) -> None:
    kind: Any = content.get("type")
    check(kind in INTERACTIVE_ACTIONS, f"Interactive type {kind!r} is not supported by the simulator")
    body: Any = content.get("body")
    check(isinstance(body, dict), "Parameter 'interactive.body' is required")
    check_text(body.get("text"), "Body text", 4096 if kind == "list" else 1024)
    header: Any = content.get("header")
    if header is not None:
        check(isinstance(header, dict), "Parameter 'interactive.header' must be an object")
        if header.get("type") == "text":
            check_text(header.get("text"), "Header text", 60)
    if content.get("footer") is not None:
        check(isinstance(content["footer"], dict), "Parameter 'interactive.footer' must be an object")
        check_text(content["footer"].get("text"), "Footer text", 60)
    action: Any = content.get("action")
    check(isinstance(action, dict), "Parameter 'interactive.action' is required")
    INTERACTIVE_ACTIONS[kind](action)


MESSAGE_TYPES: Dict[str, Callable[[Any], None]] = {
    "text": _text,
    "interactive": _interactive,
    "template": _template,
    "location": _location,
    "reaction": _reaction,
    "contacts": _contacts,
    **{kind: _media for kind in ("image", "document", "audio", "video", "sticker")},
}


def validate(body: Dict[str, Any]) -> None:
    """Refuse what Meta refuses: a wrong envelope, an unknown type, a field over its documented limit."""
    check(body.get("messaging_product") == "whatsapp", "Parameter 'messaging_product' must be 'whatsapp'")
    check(body.get("recipient_type", "individual") == "individual", "Parameter 'recipient_type' is invalid")
    check(isinstance(body.get("to"), str) and re.fullmatch(r"\+?\d{8,15}", body["to"]), "Parameter 'to' is invalid")
    kind = body.get("type", "text")
    check(kind in MESSAGE_TYPES, f"Message type {kind!r} is not supported")
    content = body.get(kind)
    check(isinstance(content, list if kind == "contacts" else dict), f"Parameter {kind!r} is required")
    MESSAGE_TYPES[kind](content)


def graph_error(code: int, status: int = 400, details: Optional[str] = None) -> HTTPResponse:
    return response.json(payloads.graph_error(code, details), status=status)


def authorized(request: Request) -> bool:
    expected = f"Bearer {meta.credential('WHATSAPP_ACCESS_TOKEN')}"
    return hmac.compare_digest(request.headers.get("authorization", "").encode(), expected.encode())


def simulator(request: Request) -> Simulator:
    return request.app.ctx.simulator


def unknown_object(object_id: str) -> HTTPResponse:
    return graph_error(
        100,
        details=f"Unsupported post request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
    )


@bp.post("/<phone_number_id>/messages")
async def send(request: Request, version: str, phone_number_id: str) -> HTTPResponse:
    if not authorized(request):
        return graph_error(190, status=401)
    business = meta.number(phone_number_id)
    if business is None:
        return unknown_object(phone_number_id)
    try:
        body = json.loads(request.body or b"null")
        check(isinstance(body, dict), "The request body must be a JSON object")
        if body.get("status") == "read":
            return mark_read(request, phone_number_id, body)
        validate(body)
    except (Invalid, ValueError) as exc:
        return graph_error(100, details=str(exc))
    sim = simulator(request)
    fault = sim.take_fault()
    if fault is not None and fault.http_status is not None:
        await asyncio.sleep(fault.hang_seconds)
        return graph_error(fault.code, status=fault.http_status)
    wa_id = re.sub(r"\D", "", body["to"])
    message_id = payloads.new_message_id()
    sim.add(message_id, phone_number_id, wa_id, "out", body, "accepted")
    to = payloads.Chat(phone_number_id, business.digits, wa_id, sim.names.get(wa_id, ""))
    request.app.add_task(meta.report_statuses(sim, to, message_id, fault))
    accepted: Dict[str, Any] = {"id": message_id}
    if body.get("type") == "template":
        accepted["message_status"] = "accepted"
    return response.json(
        {"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": wa_id}], "messages": [accepted]}
    )


def mark_read(request: Request, phone_number_id: str, body: Dict[str, Any]) -> HTTPResponse:
    """Mark a customer's message read and, when asked, show the typing indicator in the chat."""
    check(body.get("messaging_product") == "whatsapp", "Parameter 'messaging_product' must be 'whatsapp'")
    check(isinstance(body.get("message_id"), str), "Parameter 'message_id' is required")
    indicator = body.get("typing_indicator")
    check(indicator is None or indicator == {"type": "text"}, "Parameter 'typing_indicator' is invalid")
    sim = simulator(request)
    record = sim.records.get(body["message_id"])
    if record is not None and record.direction == "in":
        sim.set_status(record.id, "read")
        if indicator:
            sim.start_typing(phone_number_id, record.wa_id)
    return response.json({"success": True})


@bp.post("/<phone_number_id>/media")
async def upload(request: Request, version: str, phone_number_id: str) -> HTTPResponse:
    if not authorized(request):
        return graph_error(190, status=401)
    if meta.number(phone_number_id) is None:
        return unknown_object(phone_number_id)
    file = request.files.get("file")
    if request.form.get("messaging_product") != "whatsapp" or file is None:
        return graph_error(100, details="Multipart fields 'messaging_product=whatsapp' and 'file' are required")
    media = simulator(request).store_media(request.form.get("type") or file.type, file.name, file.body)
    return response.json({"id": media.id})


@bp.get("/<media_id>")
async def media_info(request: Request, version: str, media_id: str) -> HTTPResponse:
    if not authorized(request):
        return graph_error(190, status=401)
    media = simulator(request).media.get(media_id)
    if media is None:
        return unknown_object(media_id)
    return response.json(
        {
            "messaging_product": "whatsapp",
            "url": f"{request.scheme}://{request.host}/simulator/media/{media.id}",
            "mime_type": media.mime_type,
            "sha256": hashlib.sha256(media.data).hexdigest(),
            "file_size": len(media.data),
            "id": media.id,
        }
    )


@media_bp.get("/<media_id>")
async def media_bytes(request: Request, media_id: str) -> HTTPResponse:
    """The download URL: unlike Meta's, it needs no token, so the chat page can show the file."""
    media = simulator(request).media.get(media_id)
    if media is None:
        return response.json({"error": "no such media"}, status=404)
    return response.raw(media.data, content_type=media.mime_type)
