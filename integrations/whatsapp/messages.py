"""Rasa bot messages → WhatsApp Cloud API message objects, within WhatsApp's documented limits.

Text is split at 4096 characters on paragraph boundaries. Choices become reply buttons (up to 3),
an interactive list (4 to 10), or numbered text (more), whose numbers the customer can answer with.
Every choice's payload is also returned, so the channel can map a tapped id or a typed number back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from comanda.i18n import t
from comanda.services.cfdi.links import FORMATS

TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
BUTTON_TITLE_LIMIT = 20
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
ID_LIMIT = 256
MAX_BUTTONS = 3
MAX_ROWS = 10


@dataclass
class Outgoing:
    """Graph message bodies to send in order, and the payloads of any choices offered."""

    messages: List[Dict[str, Any]] = field(default_factory=list)
    options: Optional[List[str]] = None


def split_text(text: str, limit: int = TEXT_LIMIT) -> List[str]:
    """Pieces of at most ``limit`` characters, cut between paragraphs, else lines, else words."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    for separator in ("\n\n", "\n", " "):
        cut = text.rfind(separator, 0, limit + 1)
        if cut > 0:
            return [text[:cut].rstrip()] + split_text(text[cut + len(separator) :], limit)
    return [text[:limit]] + split_text(text[limit:], limit)


def shorten(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def envelope(to: str, kind: str, body: Dict[str, Any]) -> Dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: body}


NUMBER_ANSWER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


def chosen_option(text: Optional[str], options: Optional[List[str]]) -> Optional[str]:
    """The payload a customer picked by typing its number ("2", "2.") from the last choices offered."""
    number = NUMBER_ANSWER.match(text or "")
    if number and options and 1 <= int(number.group(1)) <= len(options):
        return options[int(number.group(1)) - 1]
    return None


def text_messages(to: str, text: str) -> List[Dict[str, Any]]:
    return [envelope(to, "text", {"body": piece, "preview_url": "http" in piece}) for piece in split_text(text)]


def _option_id(payload: str, index: int) -> str:
    """The payload itself when it fits WhatsApp's id limit; otherwise a reference to the saved options."""
    return payload if len(payload) <= ID_LIMIT else f"#{index + 1}"


def _unique_titles(titles: List[str], limit: int) -> List[str]:
    out: List[str] = []
    for title in titles:
        candidate, n = shorten(title, limit), 2
        while candidate in out:
            suffix = f" {n}"
            candidate, n = shorten(title, limit - len(suffix)).rstrip("…") + suffix, n + 1
        out.append(candidate)
    return out


def choice_messages(to: str, text: str, buttons: List[Dict[str, Any]], language: str) -> Outgoing:
    """A question with choices, as WhatsApp shows them best for their number."""
    payloads = [str(b.get("payload") or b.get("title")) for b in buttons]
    titles = [str(b.get("title") or b.get("payload")) for b in buttons]
    out = Outgoing(options=payloads)
    if len(buttons) > MAX_ROWS:
        lines = [f"{i}. {title}" for i, title in enumerate(titles, start=1)]
        out.messages = text_messages(
            to, f"{text}\n\n" + "\n".join(lines) + f"\n\n{t('whatsapp.reply_with_number', language)}"
        )
        return out
    body = text
    if len(text) > INTERACTIVE_BODY_LIMIT:
        out.messages = text_messages(to, text)
        body = t("whatsapp.choose", language)
    if len(buttons) <= MAX_BUTTONS:
        interactive = {
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": _option_id(p, i), "title": title}}
                    for i, (p, title) in enumerate(
                        zip(payloads, _unique_titles(titles, BUTTON_TITLE_LIMIT), strict=False)
                    )
                ]
            },
        }
    else:
        rows = []
        for i, (button, payload, title) in enumerate(
            zip(buttons, payloads, _unique_titles(titles, ROW_TITLE_LIMIT), strict=False)
        ):
            row = {"id": _option_id(payload, i), "title": title}
            description = button.get("description") or (titles[i] if len(titles[i]) > ROW_TITLE_LIMIT else None)
            if description:
                row["description"] = shorten(description, ROW_DESCRIPTION_LIMIT)
            rows.append(row)
        interactive = {
            "type": "list",
            "body": {"text": body},
            "action": {
                "button": shorten(t("whatsapp.list_button", language), BUTTON_TITLE_LIMIT),
                "sections": [{"rows": rows}],
            },
        }
    out.messages.append(envelope(to, "interactive", interactive))
    return out


def media_message(
    to: str,
    kind: str,
    link: Optional[str] = None,
    media_id: Optional[str] = None,
    caption: Optional[str] = None,
    filename: Optional[str] = None,
) -> Dict[str, Any]:
    """An image or document by public link or by uploaded media id."""
    body: Dict[str, Any] = {"link": link} if link else {"id": media_id}
    if caption:
        body["caption"] = shorten(caption, INTERACTIVE_BODY_LIMIT)
    if filename and kind == "document":
        body["filename"] = filename
    return envelope(to, kind, body)


MEDIA_KINDS = ("image", "document", "audio", "video", "sticker")


def media_problem(message: Dict[str, Any]) -> Optional[str]:
    """Why a media message may not be sent, or None. Media go by public link, by media id, or (documents)
    by a document-store reference ``{"invoice_id": 42, "format": "pdf"}``; never from a file path, which
    would let whoever writes bot messages (the Rasa API token) send the server's files."""
    kind = message.get("type")
    if kind not in MEDIA_KINDS:
        return None
    body = message.get(kind)
    if not isinstance(body, dict):
        return f"{kind} must be an object"
    if "path" in body:
        return f"{kind} names a file path; only links, media ids and the document store's ids are sent"
    sources = [key for key in ("link", "id", "invoice_id") if key in body]
    if len(sources) != 1:
        return f"{kind} needs exactly one of link, id or invoice_id"
    if sources == ["invoice_id"]:
        stored = body["invoice_id"]
        if kind != "document" or not isinstance(stored, int) or isinstance(stored, bool) or stored <= 0:
            return "invoice_id must be a positive whole number, in a document"
        if body.get("format") not in FORMATS:
            return f"an invoice document's format is one of {', '.join(FORMATS)}"
    return None


def readable_text(message: Dict[str, Any]) -> Optional[str]:
    """A message as plain text, when it has one: a choice as its question and option titles, a media
    message by link as its caption or file name and the link. None for the rest (a template, a media id)."""
    kind = str(message.get("type"))
    body: Dict[str, Any] = message[kind] if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        return body.get("body")
    if kind == "interactive":
        action = body.get("action") or {}
        titles = [b["reply"]["title"] for b in action.get("buttons", [])] + [
            row["title"] for section in action.get("sections", []) for row in section.get("rows", [])
        ]
        return "\n".join([(body.get("body") or {}).get("text", "")] + [f"• {title}" for title in titles]).strip()
    if kind in MEDIA_KINDS and body.get("link"):
        name = body.get("caption") or body.get("filename") or kind
        return f"📎 {name}: {body['link']}"
    return None


def merged_text(messages: List[Dict[str, Any]], language: str, limit: int = TEXT_LIMIT) -> str:
    """Several messages as one text within ``limit``; what does not fit (or cannot be text) is counted in
    a closing line, so nothing is left out without a word."""
    parts = [text for text in (readable_text(m) for m in messages) if text]
    left_out = len(messages) - len(parts)
    room = limit - len(t("whatsapp.more_not_shown", language, count=len(messages))) - 2
    kept: List[str] = []
    for part in parts:
        if len("\n\n".join(kept + [part])) > room:
            if not kept:
                kept.append(shorten(part, room))
            left_out += len(parts) - len(kept)
            break
        kept.append(part)
    if left_out:
        kept.append(t("whatsapp.more_not_shown", language, count=left_out))
    return "\n\n".join(kept)


def custom_message(to: str, custom: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Any Graph message (a template, a catalog list, ...) given as Rasa custom JSON.

    Accepted forms: ``{"whatsapp": {<Graph message>}}`` or a Graph message with its ``type``.
    """
    message = custom.get("whatsapp", custom)
    if not isinstance(message, dict) or "type" not in message:
        return None
    return {"messaging_product": "whatsapp", "recipient_type": "individual", **message, "to": to}


def template_message(to: str, name: str, language_code: str, parameters: List[str]) -> Dict[str, Any]:
    components = (
        [{"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}] if parameters else []
    )
    return envelope(to, "template", {"name": name, "language": {"code": language_code}, "components": components})
