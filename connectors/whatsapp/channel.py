"""The HTTP side of the WhatsApp channel: Rasa's input channel (Meta's webhook) and output channel.

Inbound: the signature is checked on the raw body; every message of a batch is written to the
durable inbox before the 200 goes out (``inbox_writer``); the bot works in the background
(``inbox_worker``), and statuses update the outbox (``statuses``).

Outbound: the bot's messages become outbox rows, which ``outbox_sender`` delivers. The n-th reply to
an inbound message has a dedupe key, so processing that message again sends nothing twice. Media go
by link, by media id, or (documents) by their id in the document store, and only to the
conversation they belong to; a message naming a file path is refused and logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from comanda import models as m
from comanda import strict_json
from comanda.concurrency import in_thread
from comanda.db import transaction
from comanda.enums import Channel
from comanda.errors import ComandaError, InvalidInput
from comanda.i18n import language_or_default
from comanda.services import outbox
from comanda.services.documents import invoice_document
from connectors.whatsapp.inbox_worker import InboxWorker
from connectors.whatsapp.inbox_writer import GroupCommit
from connectors.whatsapp.outbox_sender import OutboxSender
from connectors.whatsapp.statuses import apply_statuses
from integrations.whatsapp.graph import GraphClient
from integrations.whatsapp.messages import (
    Outgoing,
    choice_messages,
    custom_message,
    media_message,
    media_problem,
    text_messages,
)
from integrations.whatsapp.webhook import SIGNATURE_HEADER, check_signature, parse_webhook

log = logging.getLogger(__name__)

CHANNEL = Channel.WHATSAPP.value


class WhatsAppInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> WhatsAppInput:
        credentials = credentials or {}
        return cls(
            verify_token=str(credentials.get("verify_token") or ""),
            app_secret=str(credentials.get("app_secret") or ""),
            access_token=str(credentials.get("access_token") or ""),
            graph_url=str(credentials.get("graph_url") or "https://graph.facebook.com/v21.0"),
            reengagement_template=str(credentials.get("reengagement_template") or "comanda_reengagement"),
        )

    def __init__(
        self,
        verify_token: str,
        app_secret: str,
        access_token: str,
        graph_url: str,
        reengagement_template: str = "comanda_reengagement",
    ) -> None:
        self.verify_token = verify_token
        self.app_secret = app_secret
        self.graph = GraphClient(graph_url, access_token)
        self.reengagement_template = reengagement_template
        self._app: Any = None
        self._sender: Optional[OutboxSender] = None
        self._worker: Optional[InboxWorker] = None
        self._inbox_writer: Optional[GroupCommit] = None
        self._tasks: List[asyncio.Task] = []

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("whatsapp_webhook", __name__)

        @bp.listener("after_server_start")
        async def start(app: Any, _loop: Any) -> None:
            self._app = app
            self._sender = OutboxSender(self.graph, self.reengagement_template)
            self._worker = InboxWorker(
                self.graph,
                agent=lambda: app.ctx.agent,
                on_new_message=on_new_message,
                new_output=lambda reply_to: WhatsAppOutput(self, reply_to=reply_to),
                after_turn=self.wake_sender,
            )
            self._inbox_writer = GroupCommit()
            for work in (self._inbox_writer.run(), self._sender.run(), self._worker.recover()):
                self._tasks.append(asyncio.create_task(work))

        @bp.listener("before_server_stop")
        async def stop(_app: Any, _loop: Any) -> None:
            for task in self._tasks:
                task.cancel()
            await self.graph.close()

        @bp.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            args = request.args
            token = args.get("hub.verify_token") or ""
            if (
                args.get("hub.mode") == "subscribe"
                and self.verify_token
                and hmac.compare_digest(token.encode(), self.verify_token.encode())
            ):
                return response.text(args.get("hub.challenge") or "")
            return response.text("forbidden", status=403)

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            problem = check_signature(self.app_secret, request.body, request.headers.get(SIGNATURE_HEADER))
            if problem:
                log.warning("whatsapp webhook: %s signature, request dropped", problem)
                return response.text(f"{problem} signature", status=401 if problem == "missing" else 403)
            try:
                data = strict_json.loads(request.body)
            except InvalidInput as exc:  # a 5xx would have Meta deliver the same body again for days
                log.warning("whatsapp webhook: signed body refused: %s", exc.message)
                return response.text(exc.message, status=400)
            await self.handle(data)
            return response.json({"status": "ok"})

        return bp

    async def handle(self, data: Any) -> None:
        """Store every message of a (verified) webhook, then answer and apply statuses in the background.

        Only the inbox write happens before the 200: routing to a store and customer, and the bot,
        come after, so acknowledgements stay fast however busy the bot is.
        """
        assert self._inbox_writer is not None and self._worker is not None
        messages, statuses = parse_webhook(data)
        new = await self._inbox_writer.write(messages) if messages else []
        for stored in new:
            self._spawn(self._worker.process(stored.inbox_id, stored.key))
        if statuses:
            self._spawn(self._apply_statuses(statuses))

    async def _apply_statuses(self, statuses: List[Any]) -> None:
        await in_thread(apply_statuses, statuses, self.reengagement_template)
        self.wake_sender()

    @staticmethod
    def _spawn(work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        task.add_done_callback(
            lambda t: (
                t.cancelled()
                or not t.exception()
                or log.error("whatsapp: background task failed", exc_info=t.exception())
            )
        )

    def wake_sender(self) -> None:
        if self._sender is not None:
            self._sender.wake()

    async def language_of(self, conversation_id: str) -> str:
        """The conversation's language, as the bot last knew it."""
        assert self._worker is not None
        return await self._worker.language_of(conversation_id)

    def get_output_channel(self) -> OutputChannel:
        """For proactive messages (Rasa's trigger_intent with the latest output channel)."""
        return WhatsAppOutput(self)


def sendable_problem(session: Session, conversation: m.Conversation, message: Dict[str, Any]) -> Optional[str]:
    """Why a bot message may not go to this conversation: a file path, a malformed media message, or
    a document of the document store that is not this conversation's."""
    problem = media_problem(message)
    body = message.get("document")
    if problem or not isinstance(body, dict) or "invoice_id" not in body:
        return problem
    language = language_or_default(conversation.language)
    try:
        invoice_document(session, body["invoice_id"], body["format"], language, conversation_id=conversation.id)
    except ComandaError as exc:
        return exc.message
    return None


class WhatsAppOutput(OutputChannel):
    """Turns the bot's messages into outbox rows for the conversation's WhatsApp recipient."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, channel: WhatsAppInput, reply_to: Optional[str] = None) -> None:
        self.channel = channel
        self.reply_to = reply_to
        self._sent = 0

    async def _queue(self, conversation_id: str, build: Callable[[str], Outgoing]) -> None:
        keys: List[Optional[str]] = []

        def write() -> None:
            with transaction() as session:
                conversation = session.get(m.Conversation, conversation_id)
                if conversation is None or not conversation.recipient:
                    log.error("whatsapp: no WhatsApp recipient for conversation %s: message dropped", conversation_id)
                    return
                outgoing = build(conversation.recipient)
                for message in outgoing.messages:
                    problem = sendable_problem(session, conversation, message)
                    if problem:
                        log.error("whatsapp: message to %s refused: %s", conversation_id, problem)
                        continue
                    key = f"{self.reply_to}:{self._sent + len(keys)}" if self.reply_to else None
                    keys.append(key)
                    outbox.enqueue(
                        session,
                        CHANNEL,
                        conversation.recipient,
                        message,
                        store_id=conversation.store_id,
                        conversation_id=conversation_id,
                        dedupe_key=key,
                    )
                if outgoing.options is not None:
                    conversation.numbered_options = outgoing.options

        await in_thread(write)
        self._sent += len(keys)
        self.channel.wake_sender()

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self._queue(recipient_id, lambda to: Outgoing(text_messages(to, text)))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: List[Dict[str, Any]], **kwargs: Any
    ) -> None:
        language = await self.channel.language_of(recipient_id)
        await self._queue(recipient_id, lambda to: choice_messages(to, text, buttons, language))

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: List[Dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies, **kwargs)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self._queue(recipient_id, lambda to: Outgoing([media_message(to, "image", link=image)]))

    async def send_attachment(self, recipient_id: str, attachment: Any, **kwargs: Any) -> None:
        if isinstance(attachment, dict):
            await self.send_custom_json(recipient_id, {"type": "document", "document": attachment})
        else:
            await self._queue(recipient_id, lambda to: Outgoing([media_message(to, "document", link=str(attachment))]))

    async def send_custom_json(self, recipient_id: str, json_message: Dict[str, Any], **kwargs: Any) -> None:
        def build(to: str) -> Outgoing:
            message = custom_message(to, json_message)
            if message is None:
                log.warning("whatsapp: custom message without a WhatsApp type dropped: %s", json_message)
                return Outgoing([])
            return Outgoing([message])

        await self._queue(recipient_id, build)

    async def send_elements(self, recipient_id: str, elements: Any, **kwargs: Any) -> None:
        log.warning("whatsapp: carousel elements are not supported on WhatsApp; dropped")
