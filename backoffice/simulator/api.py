"""The simulator's control API, for the chat page and for tests (JSON under /simulator/api).

- ``POST /send``: the customer writes; a signed webhook goes to the connector as Meta would post it.
- ``POST /media``: the customer attaches a file (multipart ``file``); ``/send`` then sends it by id as an
  ``image``, ``audio`` (``"voice": true`` for a voice note) or ``document``, and the connector fetches it
  from the fake Graph API like Meta's.
- ``GET /messages``: one chat's messages changed after a sequence number; ``GET /sent``: every send.
- ``DELETE /chats?wa_id=…``: forget one customer's chats (the page's reset button).
- ``POST /faults`` / ``DELETE /faults``: make the next sends fail or hang, to test the connector's retries.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List

import requests
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backoffice.simulator import meta, payloads
from backoffice.simulator.state import Fault, Simulator

bp = Blueprint("simulator_api", url_prefix="/api")


class BadRequest(Exception):
    pass


def need(condition: Any, message: str) -> None:
    if not condition:
        raise BadRequest(message)


Builder = Callable[[payloads.Chat, Dict[str, Any], Simulator], Dict[str, Any]]
# What a customer's WhatsApp accepts as each kind of attachment (the rest goes as a document).
MEDIA_TYPES = {"image": ("image/jpeg", "image/png"), "audio": ("audio/",), "document": ("",)}
MAX_HANG_SECONDS = 120


def _text(chat: payloads.Chat, data: Dict[str, Any], _sim: Simulator) -> Dict[str, Any]:
    need(isinstance(data.get("text"), str) and data["text"].strip(), "text needs 'text'")
    return payloads.text(chat, data["text"])


def _reply(data: Dict[str, Any], kind: str) -> Dict[str, Any]:
    reply: Any = data.get(kind)
    need(isinstance(reply, dict) and reply.get("id") and reply.get("title"), f"{kind} needs '{kind}': {{id, title}}")
    need(data.get("context_id"), f"{kind} needs 'context_id', the id of the message it answers")
    return reply


def _button_reply(chat: payloads.Chat, data: Dict[str, Any], _sim: Simulator) -> Dict[str, Any]:
    reply = _reply(data, "button_reply")
    return payloads.button_reply(chat, reply["id"], reply["title"], data["context_id"])


def _list_reply(chat: payloads.Chat, data: Dict[str, Any], _sim: Simulator) -> Dict[str, Any]:
    reply = _reply(data, "list_reply")
    return payloads.list_reply(chat, reply["id"], reply["title"], reply.get("description"), data["context_id"])


def _location(chat: payloads.Chat, data: Dict[str, Any], _sim: Simulator) -> Dict[str, Any]:
    place = data.get("location") or {}
    try:
        latitude, longitude = float(place["latitude"]), float(place["longitude"])
    except (KeyError, TypeError, ValueError):
        raise BadRequest("location needs 'location': {latitude, longitude}") from None
    return payloads.location(chat, latitude, longitude, place.get("name"), place.get("address"))


def _media(kind: str) -> Builder:
    def build(chat: payloads.Chat, data: Dict[str, Any], sim: Simulator) -> Dict[str, Any]:
        media = sim.media.get(str(data.get("media_id", "")))
        if media is None:
            raise BadRequest(f"{kind} needs 'media_id', the id POST /simulator/api/media gave")
        need(media.mime_type.startswith(MEDIA_TYPES[kind]), f"a {media.mime_type} file cannot be sent as {kind}")
        caption = data.get("caption") or None
        need(caption is None or (isinstance(caption, str) and len(caption) <= 1024), "'caption': 1024 characters")
        voice = data.get("voice", False)
        need(isinstance(voice, bool) and (kind == "audio" or not voice), "'voice' (true/false) is for audio only")
        return payloads.media(
            chat, kind, media.id, media.mime_type, media.data, caption=caption, filename=media.filename, voice=voice
        )

    return build


BUILDERS: Dict[str, Builder] = {
    "text": _text,
    "button_reply": _button_reply,
    "list_reply": _list_reply,
    "location": _location,
    **{kind: _media(kind) for kind in MEDIA_TYPES},
}


def simulator(request: Request) -> Simulator:
    return request.app.ctx.simulator


@bp.post("/send")
async def send(request: Request) -> HTTPResponse:
    """Build the webhook Meta would post for this customer message, record it, and post it signed."""
    data = request.json if isinstance(request.json, dict) else {}
    sim = simulator(request)
    try:
        wa_id = str(data.get("wa_id", ""))
        need(re.fullmatch(r"\d{8,15}", wa_id), "'wa_id' must be the customer's number in digits")
        need(data.get("type") in BUILDERS, f"'type' must be one of {', '.join(BUILDERS)}")
        business = meta.number(str(data.get("phone_number_id", "")))
        if business is None:
            return response.json({"error": "no store has that phone_number_id"}, status=404)
        chat = payloads.Chat(business.phone_number_id, business.digits, wa_id, str(data.get("name") or ""))
        payload = BUILDERS[data["type"]](chat, data, sim)
    except BadRequest as exc:
        return response.json({"error": str(exc)}, status=400)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    sim.names[wa_id] = chat.name
    sim.add(message["id"], chat.phone_number_id, wa_id, "in", message, "received")
    try:
        answered = await meta.post_webhook(payload)
    except requests.RequestException as exc:
        return response.json(
            {"error": f"connector unreachable at {meta.connector_url()} ({type(exc).__name__})", "id": message["id"]},
            status=502,
        )
    return response.json({"status": answered, "id": message["id"]})


@bp.post("/media")
async def upload(request: Request) -> HTTPResponse:
    """Keep a file the customer attaches, as Meta keeps the media of an incoming message."""
    file = request.files.get("file")
    if file is None or not file.body:
        return response.json({"error": "send the file as multipart field 'file'"}, status=400)
    mime_type = (file.type or "application/octet-stream").split(";")[0].strip().lower()
    if mime_type == "audio/ogg":
        mime_type = "audio/ogg; codecs=opus"  # how WhatsApp labels its voice notes
    media = simulator(request).store_media(mime_type, file.name or "file", file.body)
    return response.json({"id": media.id, "mime_type": media.mime_type, "file_size": len(media.data)})


@bp.delete("/chats")
async def reset(request: Request) -> HTTPResponse:
    wa_id = request.args.get("wa_id", "")
    if not re.fullmatch(r"\d{8,15}", wa_id):
        return response.json({"error": "'wa_id' must be the customer's number in digits"}, status=400)
    return response.json({"wa_id": wa_id, "removed": simulator(request).reset(wa_id)})


@bp.get("/messages")
async def messages(request: Request) -> HTTPResponse:
    phone_number_id, wa_id = request.args.get("phone_number_id", ""), request.args.get("wa_id", "")
    try:
        after = int(request.args.get("after", "0"))
    except ValueError:
        return response.json({"error": "'after' must be a whole number"}, status=400)
    sim = simulator(request)
    changed = sim.chat(phone_number_id, wa_id, after)
    return response.json(
        {
            "messages": [r.as_json() for r in changed],
            "seq": max([after] + [r.seq for r in changed]),
            "typing": sim.is_typing(phone_number_id, wa_id),
        }
    )


@bp.get("/sent")
async def sent(request: Request) -> HTTPResponse:
    return response.json({"messages": [r.as_json() for r in simulator(request).sent()]})


@bp.post("/faults")
async def add_fault(request: Request) -> HTTPResponse:
    """``{"count": 2, "status": 500}``, ``{"status": 429, "code": 130429}``: the next sends fail with that
    HTTP status; ``{"webhook_error": 131047}``: they are accepted, then a `failed` status arrives;
    ``{"hang": 25}``: they get no answer for that many seconds (past the sender's timeout), then a 504,
    and are not accepted (Meta's edge timed out before the send)."""
    data = request.json if isinstance(request.json, dict) else {}
    values: List[Any] = [data.get(k) for k in ("count", "status", "webhook_error", "code", "hang")]
    count, status, failed, code, hang = values
    count = 1 if count is None else count
    whole = all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in values)
    kinds = sum(v is not None for v in (status, failed, hang))
    if not (
        whole
        and count > 0
        and kinds == 1
        and (status is None or 400 <= status <= 599)
        and (hang is None or 0 < hang <= MAX_HANG_SECONDS)
    ):
        return response.json(
            {
                "error": "give a positive 'count' and one of 'status' (400-599, with an optional 'code'), "
                f"'webhook_error' (an error code) or 'hang' (1-{MAX_HANG_SECONDS} seconds)"
            },
            status=400,
        )
    if hang is not None:
        status, code = 504, 131000
    elif status is None:
        code = failed
    elif code is None:
        code = 130429 if status == 429 else 131000
    fault = Fault(count, code, status, hang or 0)
    simulator(request).faults.append(fault)
    return response.json({"faults": [vars(f) for f in simulator(request).faults]})


@bp.delete("/faults")
async def clear_faults(request: Request) -> HTTPResponse:
    simulator(request).faults.clear()
    return response.json({"faults": []})
