"""WhatsApp Business Cloud API channel for Rasa: a webhook that never loses or duplicates a message.

Inbound: the signature is checked on the raw body; every message of a batch is written to the
durable inbox (unique per WhatsApp message id) before the 200 goes out; the bot then works in the
background, one message at a time per conversation and in arrival order (an in-process queue, then
Rasa's lock store across replicas). At start-up, messages acknowledged but never answered are
processed. Statuses update the outbox; a 131047 failure (24-hour window closed) queues the
re-engagement template instead.

Outbound: replies go to the durable outbox and a sender loop delivers them with backoff. The n-th
reply to an inbound message has a dedupe key, so processing that message again sends nothing twice.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from comanda import models as m
from comanda.clock import now
from comanda.db import transaction
from comanda.errors import InvalidInput
from comanda.i18n import language_or_default
from comanda.services import inbox, outbox
from comanda.services.customers import find_or_create_customer, normalize_phone, touch_conversation
from comanda.services.stores import store_for_phone_number_id
from integrations.whatsapp.graph import REENGAGEMENT_CODE, GraphClient, GraphError, describe_error
from integrations.whatsapp.messages import (
    Outgoing,
    choice_messages,
    chosen_option,
    custom_message,
    media_message,
    template_message,
    text_messages,
)
from integrations.whatsapp.webhook import ANSWERED, SIGNATURE_HEADER, Inbound, Status, check_signature, parse_webhook

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
TEMPLATE_LANGUAGE = {"es": "es_MX", "en": "en_US"}
BOT_CONCURRENCY = 2


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Database work off the event loop, so the webhook keeps answering while SQL waits."""
    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))


def bot_text(message: Inbound, options: Optional[List[str]]) -> Optional[str]:
    """What the bot reads: the text, the tapped choice's payload, or an intent payload for the rest."""
    if message.kind == "text":
        return chosen_option(message.text, options) or message.text
    if message.kind == "reply":
        reference = re.fullmatch(r"#(\d+)", message.reply_id or "")
        if reference and options and 1 <= int(reference.group(1)) <= len(options):
            return options[int(reference.group(1)) - 1]
        return message.reply_id
    if message.kind == "location":
        point = {"latitude": message.location["latitude"], "longitude": message.location["longitude"]}
        return "/share_location" + json.dumps(point)
    if message.kind == "order":
        return "/catalog_order" + json.dumps({"catalog_items": message.items})
    if message.kind == "media":
        return "/received_media" + json.dumps({"media_type": message.media_type})
    return None


class GroupCommit:
    """Writes what concurrent webhooks bring in one transaction: a burst costs a few commits, not one each."""

    def __init__(self, write_batch: Callable[[List[Inbound]], List[tuple]]) -> None:
        self._write_batch = write_batch
        self._queue: asyncio.Queue[tuple] = asyncio.Queue()

    async def write(self, messages: List[Inbound]) -> List[tuple]:
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((messages, done))
        return await done

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                stored = await in_thread(self._write_batch, [m for messages, _ in batch for m in messages])
            except Exception as exc:  # noqa: BLE001 - every waiting webhook answers 500 and Meta retries
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for messages, done in batch:
                mine = {m.message_id for m in messages}
                done.set_result([entry for entry in stored if entry[2] in mine])


def ordering_key(message: Inbound) -> str:
    """Messages with the same key are answered one at a time, in arrival order (one per conversation)."""
    return f"{message.phone_number_id}:{message.sender}"


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
        self._on_new_message: Optional[Callable[[UserMessage], Awaitable[Any]]] = None
        self._locks: Dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._wakeup: Optional[asyncio.Event] = None
        self._busy: Optional[asyncio.Semaphore] = None
        self._inbox_writer: Optional[GroupCommit] = None
        self._nlu_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatsapp-nlu")
        self._tasks: List[asyncio.Task] = []
        self._phone_number_ids: Dict[str, str] = {}

    # --- the webhook -----------------------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("whatsapp_webhook", __name__)
        self._on_new_message = on_new_message

        @bp.listener("after_server_start")
        async def start(app: Any, _loop: Any) -> None:
            self._app = app
            self._wakeup = asyncio.Event()
            # Model inference blocks the event loop: few messages in the bot at once keep acks quick.
            self._busy = asyncio.Semaphore(BOT_CONCURRENCY)
            self._inbox_writer = GroupCommit(self._store_all)
            self._tasks.append(asyncio.create_task(self._inbox_writer.run()))
            self._tasks.append(asyncio.create_task(self._sender_loop()))
            self._tasks.append(asyncio.create_task(self._recover()))

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
                data = json.loads(request.body)
            except ValueError:
                return response.text("body is not JSON", status=400)
            await self.handle(data)
            return response.json({"status": "ok"})

        return bp

    async def handle(self, data: Any) -> None:
        """Store every message of a (verified) webhook, then answer and apply statuses in the background.

        Only the inbox write happens before the 200: routing to a store and customer, and the bot,
        come after, so acknowledgements stay fast however busy the bot is.
        """
        messages, statuses = parse_webhook(data)
        new = await self._inbox_writer.write(messages) if messages else []
        for inbox_id, key, _ in new:
            self._spawn(self._process(inbox_id, key, recovering=False))
        if statuses:
            self._spawn(in_thread(self._apply_statuses, statuses))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(
            lambda t: (
                t.cancelled()
                or not t.exception()
                or log.error("whatsapp: background task failed", exc_info=t.exception())
            )
        )

    def _store_all(self, messages: List[Inbound]) -> List[tuple]:
        """One transaction for the batch; if it fails, those webhooks fail and Meta delivers them again."""
        new = []
        with transaction() as session:
            for message in messages:
                answered = message.kind in ANSWERED and message.sender is not None
                inbox_id = inbox.record_inbound(
                    session,
                    CHANNEL,
                    message.message_id,
                    message.message_type,
                    message.to_record(),
                    sender=message.sender,
                    status="received" if answered else "ignored",
                )
                if inbox_id is None:
                    log.info("whatsapp: message %s is a redelivery: dropped", message.message_id)
                elif not answered:
                    log.info(
                        "whatsapp: %s message %s from %s: logged, no reply",
                        message.message_type,
                        message.message_id,
                        message.sender,
                    )
                else:
                    new.append((inbox_id, ordering_key(message), message.message_id))
        return new

    # --- answering -------------------------------------------------------------------------------

    async def _process(self, inbox_id: int, key: str, recovering: bool) -> None:
        async with self._locks[key], self._busy:
            prepared = await in_thread(self._prepare, inbox_id, recovering)
            if prepared is None:
                return
            external_id, text, phone_number_id, conversation_id = prepared
            try:
                if recovering and await self._already_answered(conversation_id, external_id):
                    await in_thread(self._finish, inbox_id, "processed", None)
                    return
                await self._mark_read(phone_number_id, external_id)
                parse_data = await asyncio.get_running_loop().run_in_executor(
                    self._nlu_thread, self._understand, text, conversation_id
                )
                output = WhatsAppOutput(self, reply_to=external_id)
                await self._on_new_message(
                    UserMessage(
                        text,
                        output,
                        conversation_id,
                        parse_data=parse_data,
                        input_channel=CHANNEL,
                        message_id=external_id,
                        metadata={"channel": CHANNEL, "message_id": external_id},
                    )
                )
                await in_thread(self._finish, inbox_id, "processed", None, await self.language_of(conversation_id))
            except Exception as exc:  # noqa: BLE001 - recorded on the inbox row for staff and retries
                log.exception("whatsapp: processing message %s failed", external_id)
                await in_thread(self._finish, inbox_id, "failed", f"{type(exc).__name__}: {exc}")
            finally:
                self.wake_sender()

    def _understand(self, text: str, conversation_id: str) -> Dict[str, Any]:
        """NLU on the NLU thread: Rasa's own parse (graph inference), which needs no event loop of its own
        beyond this call, so the webhook's loop stays free to acknowledge while models run."""
        return asyncio.run(self._agent().processor.parse_message(UserMessage(text, sender_id=conversation_id)))

    def _prepare(self, inbox_id: int, recovering: bool) -> Optional[tuple]:
        """Claim a stored message and route it: store by number, customer, conversation, bot text."""
        with transaction() as session:
            if not inbox.claim(session, inbox_id, recovering):
                return None
            row = session.get(m.InboundMessage, inbox_id)
            message = Inbound.from_record(row.payload)
            store = store_for_phone_number_id(session, message.phone_number_id)
            try:
                phone = normalize_phone(message.wa_id) if message.wa_id else None
            except InvalidInput:
                phone = None
            if store is None or (phone is None and message.user_id is None):
                why = "unknown phone_number_id" if store is None else f"unusable sender {message.wa_id!r}"
                log.warning(
                    "whatsapp: %s for message %s (%s): acknowledged, not processed",
                    why,
                    message.message_id,
                    message.phone_number_id,
                )
                inbox.finish(session, inbox_id, "ignored", why)
                return None
            customer = find_or_create_customer(session, phone, message.user_id, message.profile_name)
            conversation = touch_conversation(session, store.id, customer, CHANNEL, message.sender)
            row.store_id, row.conversation_id = store.id, conversation.id
            return (
                row.external_id,
                bot_text(message, conversation.numbered_options),
                message.phone_number_id,
                conversation.id,
            )

    def _finish(self, inbox_id: int, status: str, error: Optional[str], language: Optional[str] = None) -> None:
        """Close the inbox row; remember the language the bot now speaks with this customer."""
        with transaction() as session:
            inbox.finish(session, inbox_id, status, error)
            row = session.get(m.InboundMessage, inbox_id)
            conversation = session.get(m.Conversation, row.conversation_id) if language else None
            if conversation is not None:
                conversation.language = language
                session.get(m.Customer, conversation.customer_id).language = language

    async def _mark_read(self, phone_number_id: str, message_id: str) -> None:
        try:
            await self.graph.mark_read(phone_number_id, message_id, typing=True)
        except GraphError as exc:
            log.warning("whatsapp: could not mark %s as read: %s", message_id, exc)

    async def _already_answered(self, conversation_id: str, message_id: str) -> bool:
        """A message whose turn Rasa saved before the crash must not be answered again."""
        tracker = await self._agent().tracker_store.retrieve(conversation_id)
        return tracker is not None and any(getattr(event, "message_id", None) == message_id for event in tracker.events)

    async def _recover(self) -> None:
        """Answer what was acknowledged but never answered (a crash between the 200 and the reply)."""
        await in_thread(self._abandon_interrupted_sends)
        rows = await in_thread(self._unfinished)
        if rows:
            log.info("whatsapp: recovering %d unanswered message(s)", len(rows))
        for inbox_id, key in rows:
            self._spawn(self._process(inbox_id, key, recovering=True))

    def _unfinished(self) -> List[tuple]:
        with transaction() as session:
            return [(r.id, ordering_key(Inbound.from_record(r.payload))) for r in inbox.unfinished(session, CHANNEL)]

    def _abandon_interrupted_sends(self) -> None:
        with transaction() as session:
            outbox.abandon_interrupted(session, CHANNEL)

    def _agent(self) -> Any:
        return self._app.ctx.agent

    async def language_of(self, conversation_id: str) -> str:
        """The conversation's language, as the bot last knew it (the tracker's `language` slot)."""
        tracker = await self._agent().tracker_store.retrieve(conversation_id) if self._app else None
        return language_or_default(tracker.get_slot("language") if tracker else None)

    # --- statuses and the outbox sender ----------------------------------------------------------

    def _apply_statuses(self, statuses: List[Status]) -> None:
        for status in statuses:
            with transaction() as session:
                error = "; ".join(f"{c} {describe_error(c)}" for c in status.error_codes) or None
                row = outbox.apply_status(session, status.message_id, status.status, error)
                if row is None:
                    continue
                if status.status == "failed":
                    log.warning("whatsapp: message %s to %s failed: %s", status.message_id, row.recipient, error)
                if REENGAGEMENT_CODE in status.error_codes and row.conversation_id:
                    self._queue_reengagement(session, row.conversation_id)
        self.wake_sender()

    def _queue_reengagement(self, session: Any, conversation_id: str) -> None:
        """Outside the 24-hour window only a template may be sent: ask the customer to write back."""
        conversation = session.get(m.Conversation, conversation_id)
        if conversation is None or not conversation.recipient:
            return
        store = session.get(m.Store, conversation.store_id)
        language = language_or_default(conversation.language or store.business.default_language)
        message = template_message(
            conversation.recipient, self.reengagement_template, TEMPLATE_LANGUAGE[language], [store.name]
        )
        key = f"reengage:{conversation_id}:{now().date().isoformat()}"
        if outbox.enqueue(
            session,
            CHANNEL,
            conversation.recipient,
            message,
            store_id=store.id,
            conversation_id=conversation_id,
            dedupe_key=key,
        ):
            log.info("whatsapp: 24-hour window closed for %s: re-engagement template queued", conversation_id)

    def wake_sender(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _sender_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()
            try:
                items = await in_thread(self._claim_due)
                await asyncio.gather(*(self._deliver(item) for item in items))
                if items:
                    self._wakeup.set()  # the next message of those conversations may be due now
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive a database hiccup
                log.exception("whatsapp: outbox sender error")

    def _claim_due(self) -> List[outbox.OutboxItem]:
        with transaction() as session:
            return outbox.claim_due(session, CHANNEL)

    def phone_number_id(self, store_id: str) -> str:
        if store_id not in self._phone_number_ids:
            with transaction() as session:
                self._phone_number_ids[store_id] = session.get(m.Store, store_id).whatsapp_phone_number_id
        return self._phone_number_ids[store_id]

    async def _deliver(self, item: outbox.OutboxItem) -> None:
        phone_number_id = await in_thread(self.phone_number_id, item.store_id)
        try:
            message = await self._with_uploaded_media(phone_number_id, item.payload)
            wamid = await self.graph.send_message(phone_number_id, message)
        except GraphError as exc:
            await in_thread(self._failed, item, exc)
            return
        await in_thread(self._sent, item.id, wamid)

    async def _with_uploaded_media(self, phone_number_id: str, message: Dict[str, Any]) -> Dict[str, Any]:
        """A document or image given as a local file path is uploaded at send time (e.g. invoice PDFs)."""
        kind = message.get("type")
        body = message.get(kind) if isinstance(message.get(kind), dict) else None
        if not body or "path" not in body:
            return message
        path = Path(body["path"])
        mime = body.get("mime_type") or ("application/pdf" if path.suffix == ".pdf" else "application/octet-stream")
        media_id = await self.graph.upload_media(phone_number_id, path.read_bytes(), mime, path.name)
        uploaded = {k: v for k, v in body.items() if k not in ("path", "mime_type")}
        return {**message, kind: {**uploaded, "id": media_id}}

    def _sent(self, item_id: int, wamid: str) -> None:
        with transaction() as session:
            outbox.mark_sent(session, item_id, wamid)

    def _failed(self, item: outbox.OutboxItem, error: GraphError) -> None:
        with transaction() as session:
            status = outbox.mark_failed(session, item, str(error), error.retryable)
            if error.code == REENGAGEMENT_CODE and item.conversation_id:
                self._queue_reengagement(session, item.conversation_id)
        log.log(
            logging.WARNING if status == "queued" else logging.ERROR,
            "whatsapp: send of outbox %s failed (%s): %s",
            item.id,
            status,
            error,
        )

    def get_output_channel(self) -> OutputChannel:
        """For proactive messages (Rasa's trigger_intent with the latest output channel)."""
        return WhatsAppOutput(self)


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
        keys = []
        outgoing_ref: List[Outgoing] = []

        def write() -> None:
            with transaction() as session:
                conversation = session.get(m.Conversation, conversation_id)
                if conversation is None or not conversation.recipient:
                    log.error("whatsapp: no WhatsApp recipient for conversation %s: message dropped", conversation_id)
                    return
                outgoing = build(conversation.recipient)
                outgoing_ref.append(outgoing)
                for message in outgoing.messages:
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
        # The message's own language (actions say it): the tracker is saved only after the turn.
        language = kwargs.get("language") or await self.channel.language_of(recipient_id)
        language = language_or_default(language)
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
