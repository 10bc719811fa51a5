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
from contextvars import ContextVar
from functools import partial
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from comanda import models as m
from comanda import strict_json
from comanda.concurrency import in_background, in_thread
from comanda.crash_points import crash_point
from comanda.db import transaction
from comanda.enums import Channel
from comanda.errors import ComandaError, InvalidInput
from comanda.i18n import language_or_default
from comanda.services import outbox
from comanda.services.documents import invoice_document
from connectors import tracker_store
from connectors.whatsapp.inbox_worker import InboxWorker, TurnOutput
from connectors.whatsapp.inbox_writer import GroupCommit, store_messages
from connectors.whatsapp.outbox_sender import OutboxSender
from connectors.whatsapp.statuses import apply_statuses
from integrations.whatsapp.graph import GraphClient
from integrations.whatsapp.messages import (
    Outgoing,
    choice_messages,
    custom_message,
    media_message,
    media_problem,
    merged_text,
    text_messages,
)
from integrations.whatsapp.webhook import SIGNATURE_HEADER, Status, check_signature, parse_webhook

log = logging.getLogger(__name__)

CHANNEL = Channel.WHATSAPP.value
MAX_MESSAGES_PER_TURN = 6  # WhatsApp messages one turn may send, however much the bot says
STREAMED = 3  # of which those that go out as they come; the rest is held for the end of the turn


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
        self._sender: Optional[OutboxSender] = None
        self._worker: Optional[InboxWorker] = None
        self._inbox_writer: Optional[GroupCommit] = None
        self._tasks: List[asyncio.Task] = []

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("whatsapp_webhook", __name__)

        @bp.listener("after_server_start")
        async def start(app: Any, _loop: Any) -> None:
            self._sender = OutboxSender(self.graph, self.reengagement_template)
            self._worker = InboxWorker(
                self.graph,
                agent=lambda: tracker_store.failing_loudly(app.ctx.agent),
                on_new_message=on_new_message,
                new_output=lambda reply_to: WhatsAppOutput(self, reply_to=reply_to),
                after_turn=self.wake_sender,
            )
            tracker_store.before_save(flush_before_save)
            self._inbox_writer = GroupCommit(
                partial(store_messages, lease_owner=self._worker.owner, lease_seconds=self._worker.lease_seconds)
            )
            for work in (self._inbox_writer.run(), self._sender.run(), self._worker.keep_leases()):
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
            self._worker.spawn(stored.inbox_id, stored.key)
        if statuses:
            in_background(self._apply_statuses(statuses), "whatsapp: applying statuses")

    async def _apply_statuses(self, statuses: List[Status]) -> None:
        await in_thread(apply_statuses, statuses, self.reengagement_template)
        self.wake_sender()

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


# The output holding replies of the turn running in this asyncio task, until it flushes them.
_unflushed: ContextVar[Optional[WhatsAppOutput]] = ContextVar("whatsapp_unflushed_output", default=None)


async def flush_before_save(tracker: DialogueStateTracker) -> None:
    """Tracker-store hook (connectors.tracker_store): the replies a turn holds back are queued before Rasa
    saves the turn, so a crash between the two loses none of them (a replayed turn queues them again
    under the same dedupe keys)."""
    output = _unflushed.get()
    if output is not None:
        await output.flush(tracker.sender_id)


class WhatsAppOutput(TurnOutput):
    """Turns the bot's messages into outbox rows for the conversation's WhatsApp recipient.

    A turn (an output with ``reply_to``) sends at most MAX_MESSAGES_PER_TURN WhatsApp messages: its first
    messages go out as they come while they fit in STREAMED; the rest are held, and at the end of the
    turn (``flush``) sent as they are if they fit, else merged into one text (choices as their titles,
    documents as their links), followed by the last choice offered as it was. What does not fit even
    there is counted in a closing line ("… and 12 more messages"): the bound never drops an answer
    silently. Proactive messages (``reply_to`` None: Rasa's trigger_intent) go out as they come.
    """

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, channel: WhatsAppInput, reply_to: Optional[str] = None) -> None:
        self.channel = channel
        self.reply_to = reply_to
        self._written = 0
        self._offered = False  # whether this turn offered numbered choices
        self._held: List[Outgoing] = []

    async def _queue(self, conversation_id: str, build: Callable[[str], Outgoing]) -> None:
        held = await in_thread(self._write_or_hold, conversation_id, build)
        if held:
            _unflushed.set(self)
        else:
            self.channel.wake_sender()
            if self.reply_to:
                crash_point("replying")

    def _write_or_hold(self, conversation_id: str, build: Callable[[str], Outgoing]) -> bool:
        """Queue the message now, or hold it for the end of the turn (then True)."""
        with transaction() as session:
            conversation = session.get(m.Conversation, conversation_id)
            if conversation is None or not conversation.recipient:
                log.error("whatsapp: no WhatsApp recipient for conversation %s: message dropped", conversation_id)
                return False
            outgoing = build(conversation.recipient)
            outgoing.messages = [msg for msg in outgoing.messages if self._sendable(session, conversation, msg)]
            if self.reply_to and (self._held or self._written + len(outgoing.messages) > STREAMED):
                self._held.append(outgoing)
                return True
            self._write(session, conversation, outgoing)
            return False

    async def flush(self, conversation_id: str) -> None:
        """Queue what the turn held back, within the bound (see the class)."""
        held, self._held = self._held, []
        if _unflushed.get() is self:
            _unflushed.set(None)
        if held:
            await in_thread(self._write_held, conversation_id, held)
            self.channel.wake_sender()
        if self.reply_to and self._written and not self._offered:
            await in_thread(self._forget_options, conversation_id)

    @staticmethod
    def _forget_options(conversation_id: str) -> None:
        """A turn that answered without choices: a bare number now answers its question ("how many?"),
        not a button of an earlier message."""
        with transaction() as session:
            conversation = session.get(m.Conversation, conversation_id)
            if conversation is not None:
                conversation.numbered_options = None

    def discard(self) -> None:
        """Forget what an interrupted turn held back: running the turn again produces it again."""
        self._held = []
        if _unflushed.get() is self:
            _unflushed.set(None)

    def _write_held(self, conversation_id: str, held: List[Outgoing]) -> None:
        with transaction() as session:
            conversation = session.get(m.Conversation, conversation_id)
            if sum(len(outgoing.messages) for outgoing in held) > MAX_MESSAGES_PER_TURN - STREAMED:
                last_choice = held.pop() if held[-1].options is not None else None
                language = language_or_default(conversation.language)
                merged = merged_text([message for outgoing in held for message in outgoing.messages], language)
                held = [Outgoing(text_messages(conversation.recipient, merged))]
                held += [last_choice] if last_choice else []
            for outgoing in held:
                self._write(session, conversation, outgoing)

    def _write(self, session: Session, conversation: m.Conversation, outgoing: Outgoing) -> None:
        """Outbox rows, the n-th reply to an inbound message keyed "<its id>:<n>" (a replayed turn sends
        nothing twice)."""
        for message in outgoing.messages:
            key = f"{self.reply_to}:{self._written}" if self.reply_to else None
            self._written += 1
            outbox.enqueue(
                session,
                CHANNEL,
                conversation.recipient,
                message,
                store_id=conversation.store_id,
                conversation_id=conversation.id,
                dedupe_key=key,
            )
        if outgoing.options is not None:
            conversation.numbered_options = outgoing.options
            self._offered = True

    @staticmethod
    def _sendable(session: Session, conversation: m.Conversation, message: Dict[str, Any]) -> bool:
        problem = sendable_problem(session, conversation, message)
        if problem:
            log.error("whatsapp: message to %s refused: %s", conversation.id, problem)
        return problem is None

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self._queue(recipient_id, lambda to: Outgoing(text_messages(to, text)))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: List[Dict[str, Any]], **kwargs: Any
    ) -> None:
        # The message's own language (actions say it): the tracker is saved only after the turn.
        language = language_or_default(kwargs.get("language") or await self.channel.language_of(recipient_id))
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
