"""WhatsApp through Twilio: a Rasa input and output channel for shops whose number lives on Twilio.

Rasa's built-in `twilio` channel trusts any caller and drops buttons and media. This one checks
Twilio's signature before reading anything; stores each MessageSid once in the durable inbox (so a
redelivery is dropped, even by another replica or after a restart) with its customer and
conversation; tells the bot about locations, media and button taps; and sends buttons as a numbered
list, since free-form WhatsApp on Twilio has no interactive buttons without the Content API. A reply
that is just a number picks that option, as on the Cloud API channel.

credentials.yml:

    connectors.twilio_whatsapp.TwilioWhatsAppInput:
      account_sid: ${TWILIO_ACCOUNT_SID}
      auth_token: ${TWILIO_AUTH_TOKEN}
      twilio_number: ${TWILIO_WHATSAPP_NUMBER}  # whatsapp:+14155238886
      # optional: store (default COMANDA_DEFAULT_STORE); webhook_url, the public URL set in Twilio's
      # console when a proxy or tunnel changes the URL this server sees; api_base_url, for a fake API
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs

from aiohttp import ClientError
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request, RequestParameters
from sanic.response import HTTPResponse
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from comanda import models as m
from comanda.concurrency import in_thread
from comanda.conversations import parse_conversation_id
from comanda.db import transaction
from comanda.enums import Channel, InboxStatus
from comanda.errors import InvalidInput
from comanda.services import inbox
from comanda.services.customers import find_or_create_customer, normalize_phone, touch_conversation
from comanda.settings import setting
from integrations.whatsapp.messages import chosen_option, split_text

logger = logging.getLogger(__name__)

CHANNEL = Channel.TWILIO.value  # inbox channel and conversation ids (centro:twilio:+52...)
MAX_BODY = 1600  # Twilio refuses longer message bodies
MAX_MEDIA = 10  # Twilio's own limit of media in one message


def whatsapp_address(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


def _number(value: Optional[str]) -> Optional[float]:
    """A finite number Twilio wrote as text, or None for anything else (the field is outside input)."""
    try:
        number = float(value or "")
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def media_count(form: Dict[str, str]) -> int:
    """NumMedia as a count (0 when missing or not a small whole number; Twilio sends at most 10)."""
    value = form.get("NumMedia") or "0"
    return min(int(value), MAX_MEDIA) if value.isascii() and value.isdigit() else 0


def bot_text(form: Dict[str, str], options: Optional[List[str]]) -> Optional[str]:
    """What the bot reads: a location or media as an intent payload, a tapped or numbered option as its payload."""
    latitude, longitude = _number(form.get("Latitude")), _number(form.get("Longitude"))
    if latitude is not None and longitude is not None:
        place = {"latitude": latitude, "longitude": longitude}
        return f"/share_location{json.dumps(place)}"
    if media_count(form) > 0:
        kind = (form.get("MediaContentType0") or "").split("/")[0]
        return (
            f"/received_media{json.dumps({'media_type': kind if kind in ('image', 'audio', 'video') else 'document'})}"
        )
    if form.get("ButtonPayload") or form.get("ButtonText"):
        return form.get("ButtonPayload") or form["ButtonText"]
    body = form.get("Body", "").strip()
    return chosen_option(body, options) or body or None


class TwilioWhatsAppOutput(OutputChannel):
    """Sends through Twilio's Messages API to the address the conversation came from.

    A refused send is logged: the bot cannot take its turn back.
    """

    @classmethod
    def name(cls) -> str:
        return "twilio_whatsapp"

    def __init__(self, client: Client, twilio_number: str) -> None:
        self.client = client
        self.from_ = whatsapp_address(twilio_number)

    async def _send(self, recipient_id: str, **fields: Any) -> None:
        to = await in_thread(address_of, recipient_id)
        try:
            await self.client.messages.create_async(to=to, from_=self.from_, **fields)
        except (TwilioRestException, ClientError) as exc:
            logger.error("Twilio did not take a message to %s: %s", to, exc)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        for part in split_text(text, MAX_BODY):
            await self._send(recipient_id, body=part)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: List[Dict[str, Any]], **kwargs: Any
    ) -> None:
        """Buttons as "1. title" lines; the conversation remembers their payloads for a numbered answer."""
        await in_thread(remember_options, recipient_id, [b.get("payload") or b["title"] for b in buttons])
        numbered = "\n".join(f"{n}. {b['title']}" for n, b in enumerate(buttons, start=1))
        await self.send_text_message(recipient_id, f"{text}\n\n{numbered}" if text else numbered)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self._send(recipient_id, media_url=[image])

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        await self._send(recipient_id, media_url=[attachment])

    async def send_custom_json(self, recipient_id: str, json_message: Dict[str, Any], **kwargs: Any) -> None:
        """Fields for Twilio's Messages API as they are, e.g. content_sid and content_variables."""
        await self._send(recipient_id, **json_message)


def address_of(recipient_id: str) -> str:
    """The WhatsApp address Twilio gave for a conversation; else the number in the conversation id."""
    with transaction() as session:
        conversation = session.get(m.Conversation, recipient_id)
        if conversation is not None and conversation.recipient:
            return conversation.recipient
    return whatsapp_address(parse_conversation_id(recipient_id).customer or recipient_id)


def remember_options(recipient_id: str, payloads: List[str]) -> None:
    with transaction() as session:
        conversation = session.get(m.Conversation, recipient_id)
        if conversation is not None:
            conversation.numbered_options = payloads


class TwilioWhatsAppInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "twilio_whatsapp"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        return cls(
            credentials["account_sid"],
            credentials["auth_token"],
            credentials["twilio_number"],
            store=credentials.get("store") or setting("COMANDA_DEFAULT_STORE"),
            webhook_url=credentials.get("webhook_url"),
            api_base_url=credentials.get("api_base_url"),
        )

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        twilio_number: str,
        store: str,
        webhook_url: Optional[str] = None,
        api_base_url: Optional[str] = None,
    ) -> None:
        self.validator = RequestValidator(auth_token)
        self.twilio_number = twilio_number
        self.store = store
        self.webhook_url = webhook_url
        self.client = Client(account_sid, auth_token, http_client=AsyncTwilioHttpClient(pool_connections=False))
        if api_base_url:
            self.client.api.base_url = api_base_url

    def get_output_channel(self) -> OutputChannel:
        return TwilioWhatsAppOutput(self.client, self.twilio_number)

    def signed(self, request: Request, params: RequestParameters) -> bool:
        """Twilio signs the URL it called plus every form field, blank ones included."""
        signature = request.headers.get("X-Twilio-Signature")
        return bool(signature) and self.validator.validate(self.webhook_url or request.url, params, signature)

    def record(self, form: Dict[str, str]) -> Optional[Tuple[int, str, Optional[str]]]:
        """Store the message once, with its customer and conversation: (inbox id, conversation id, text for
        the bot), or None for a MessageSid already stored."""
        sender = form["From"]
        with transaction() as session:
            customer = find_or_create_customer(session, normalize_phone(sender), name=form.get("ProfileName"))
            conversation = touch_conversation(session, self.store, customer, CHANNEL, sender)
            text = bot_text(form, conversation.numbered_options)
            inbox_id = inbox.record_inbound(
                session,
                CHANNEL,
                form["MessageSid"],
                form.get("MessageType") or "text",
                {"form": form, "text": text},
                store_id=self.store,
                conversation_id=conversation.id,
                sender=sender,
                status=InboxStatus.PROCESSING if text else InboxStatus.IGNORED,
            )
        return None if inbox_id is None else (inbox_id, conversation.id, text)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("twilio_whatsapp_webhook", __name__)

        @webhook.get("/")
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.post("/webhook")
        async def receive(request: Request) -> HTTPResponse:
            params = RequestParameters(parse_qs(request.body.decode("utf-8"), keep_blank_values=True))
            if not self.signed(request, params):
                logger.warning("refused a Twilio webhook without a valid X-Twilio-Signature")
                return response.text("invalid signature", status=403)
            form = {name: values[0] for name, values in params.items()}
            if not form.get("MessageSid") or not form.get("From"):
                return response.text("MessageSid and From are required", status=400)
            try:
                stored = await in_thread(self.record, form)
            except InvalidInput as exc:
                logger.warning("Twilio message %s from an unusable number: %s", form["MessageSid"], exc)
                return response.text("", status=204)
            if stored is None or stored[2] is None:  # a redelivery, or nothing the bot reads
                return response.text("", status=204)
            inbox_id, conversation_id, text = stored
            media = [
                {"url": form.get(f"MediaUrl{i}"), "content_type": form.get(f"MediaContentType{i}")}
                for i in range(media_count(form))
            ]
            metadata = {
                "channel": CHANNEL,
                "message_id": form["MessageSid"],
                "store_id": self.store,
                "profile_name": form.get("ProfileName"),
                "media": media,
            }
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        self.get_output_channel(),
                        conversation_id,
                        input_channel=self.name(),
                        message_id=form["MessageSid"],
                        metadata=metadata,
                    )
                )
            except Exception as exc:  # noqa: BLE001 - kept on the inbox row for staff, then raised to Sanic
                await in_thread(finish, inbox_id, InboxStatus.FAILED, f"{type(exc).__name__}: {exc}")
                raise
            await in_thread(finish, inbox_id, InboxStatus.PROCESSED)
            return response.text("", status=204)

        return webhook


def finish(inbox_id: int, status: str, error: Optional[str] = None) -> None:
    with transaction() as session:
        inbox.finish(session, inbox_id, status, error)
