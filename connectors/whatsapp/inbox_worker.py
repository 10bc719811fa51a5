"""Answers the inbox: one message at a time per conversation, in arrival order.

A stored message is claimed, routed (store by the business number, customer, conversation), read by
the NLU on a thread of its own (model inference would otherwise block the webhook's event loop) and
handed to Rasa, whose lock store keeps one turn at a time per conversation across replicas. At
start-up, messages acknowledged but never answered are processed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.agent import Agent
from rasa.core.channels.channel import OutputChannel, UserMessage

from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import transaction
from comanda.enums import Channel, InboxStatus
from comanda.errors import InvalidInput
from comanda.i18n import language_or_default
from comanda.services import inbox
from comanda.services.customers import find_or_create_customer, normalize_phone, touch_conversation
from comanda.services.stores import store_for_phone_number_id
from connectors.whatsapp.inbox_writer import ordering_key
from integrations.whatsapp.graph import GraphClient, GraphError
from integrations.whatsapp.messages import chosen_option
from integrations.whatsapp.webhook import Inbound

log = logging.getLogger(__name__)

CHANNEL = Channel.WHATSAPP.value
BOT_CONCURRENCY = 2  # model inference blocks the event loop: few messages in the bot at once keep acks quick


def bot_text(message: Inbound, options: Optional[List[str]]) -> Optional[str]:
    """What the bot reads: the text, the tapped choice's payload, or an intent payload for the rest."""
    if message.kind == "text":
        return chosen_option(message.text, options) or message.text
    if message.kind == "reply":
        reference = re.fullmatch(r"#(\d+)", message.reply_id or "")
        if reference and options and 1 <= int(reference.group(1)) <= len(options):
            return options[int(reference.group(1)) - 1]
        return message.reply_id
    if message.kind == "location" and message.location:
        point = {"latitude": message.location["latitude"], "longitude": message.location["longitude"]}
        return "/share_location" + json.dumps(point)
    if message.kind == "order":
        return "/catalog_order" + json.dumps({"catalog_items": message.items})
    if message.kind == "media":
        return "/received_media" + json.dumps({"media_type": message.media_type})
    return None


@dataclass(frozen=True)
class Routed:
    """A claimed message, ready for the bot."""

    external_id: str
    text: Optional[str]
    phone_number_id: str
    conversation_id: str


class InboxWorker:
    def __init__(
        self,
        graph: GraphClient,
        agent: Callable[[], Agent],
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        new_output: Callable[[str], OutputChannel],
        after_turn: Callable[[], None],
    ) -> None:
        self.graph = graph
        self._agent = agent
        self._on_new_message = on_new_message
        self._new_output = new_output
        self._after_turn = after_turn
        self._locks: Dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._busy = asyncio.Semaphore(BOT_CONCURRENCY)
        self._nlu_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatsapp-nlu")

    async def process(self, inbox_id: int, key: str, recovering: bool = False) -> None:
        async with self._locks[key], self._busy:
            routed = await in_thread(self._claim_and_route, inbox_id, recovering)
            if routed is None:
                return
            try:
                if recovering and await self._already_answered(routed.conversation_id, routed.external_id):
                    await in_thread(self._finish, inbox_id, InboxStatus.PROCESSED, None)
                    return
                await self._mark_read(routed.phone_number_id, routed.external_id)
                parse_data = await in_thread(
                    self._understand, routed.text, routed.conversation_id, executor=self._nlu_thread
                )
                await self._on_new_message(
                    UserMessage(
                        routed.text,
                        self._new_output(routed.external_id),
                        routed.conversation_id,
                        parse_data=parse_data,
                        input_channel=CHANNEL,
                        message_id=routed.external_id,
                        metadata={"channel": CHANNEL, "message_id": routed.external_id},
                    )
                )
                language = await self.language_of(routed.conversation_id)
                await in_thread(self._finish, inbox_id, InboxStatus.PROCESSED, None, language)
            except Exception as exc:  # noqa: BLE001 - recorded on the inbox row for staff and retries
                log.exception("whatsapp: processing message %s failed", routed.external_id)
                await in_thread(self._finish, inbox_id, InboxStatus.FAILED, f"{type(exc).__name__}: {exc}")
            finally:
                self._after_turn()

    async def recover(self) -> None:
        """Answer what was acknowledged but never answered (a crash between the 200 and the reply)."""
        rows = await in_thread(self._unfinished)
        if rows:
            log.info("whatsapp: recovering %d unanswered message(s)", len(rows))
        await asyncio.gather(*(self.process(inbox_id, key, recovering=True) for inbox_id, key in rows))

    def _understand(self, text: str, conversation_id: str) -> Dict[str, Any]:
        """Rasa's own parse (graph inference), run on the NLU thread: it needs no event loop of its own
        beyond this call, so the webhook's loop stays free to acknowledge while models run."""
        return asyncio.run(self._agent().processor.parse_message(UserMessage(text, sender_id=conversation_id)))

    @staticmethod
    def _claim_and_route(inbox_id: int, recovering: bool) -> Optional[Routed]:
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
                inbox.finish(session, inbox_id, InboxStatus.IGNORED, why)
                return None
            customer = find_or_create_customer(session, phone, message.user_id, message.profile_name)
            conversation = touch_conversation(session, store.id, customer, CHANNEL, message.sender)
            row.store_id, row.conversation_id = store.id, conversation.id
            return Routed(
                row.external_id,
                bot_text(message, conversation.numbered_options),
                message.phone_number_id,
                conversation.id,
            )

    @staticmethod
    def _finish(inbox_id: int, status: str, error: Optional[str], language: Optional[str] = None) -> None:
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

    @staticmethod
    def _unfinished() -> List[tuple]:
        with transaction() as session:
            return [(r.id, ordering_key(Inbound.from_record(r.payload))) for r in inbox.unfinished(session, CHANNEL)]

    async def language_of(self, conversation_id: str) -> str:
        """The conversation's language, as the bot last knew it (the tracker's `language` slot)."""
        tracker = await self._agent().tracker_store.retrieve(conversation_id)
        return language_or_default(tracker.get_slot("language") if tracker else None)
