"""Answers the inbox: one message at a time per conversation, in arrival order, each exactly once.

A stored message waits for the sender's earlier ones (held by any replica), is claimed (a lease:
comanda.services.inbox), routed (store by the business number, customer, conversation), read by the NLU
on a thread of its own (model inference would otherwise block the webhook's event loop) and handed to
Rasa, whose lock store keeps one turn at a time per conversation across replicas.

- Leases: this process renews the leases of every message it holds, every third of a lease, and
  takes over any message whose holder stopped renewing (a crash, on this replica or another), so a
  message acknowledged but never answered is answered within a lease, not only at the next start.
  If Rasa saved the message's turn before the crash, it is not answered again.
- Failed actions: a turn whose custom action fails is interrupted before Rasa saves it
  (``turns``) and run again with backoff for COMANDA_TURN_RETRY_SECONDS; then the customer is
  told (``utter_turn_failed``) and the message parked for staff. Any other failure releases the
  message, taken again at the next lease round; one claimed MAX_CLAIMS times (each claim a failure,
  or a process that died on it) is parked too: nothing loops forever.
- Bounds: the bot reads at most MAX_TEXT_CHARS of a message (the customer is told the rest was not
  read: ``utter_message_truncated``), and a turn's replies are bounded by the output channel.
- A paused conversation (Rasa's ConversationPaused: a person has it) is still stored and logged on
  the tracker, but the bot sends nothing, not even the typing indicator; a message there that asks for
  another kind of request (a return after a privacy request) gets a ticket of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import uuid
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple

from rasa.core.agent import Agent
from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from comanda import models as m
from comanda.concurrency import in_background, in_thread
from comanda.conversations import parse_conversation_id
from comanda.crash_points import crash_point
from comanda.db import transaction
from comanda.enums import Channel, InboxStatus
from comanda.errors import InvalidInput
from comanda.i18n import language_or_default
from comanda.services import handoff, inbox, review_chat
from comanda.services.customers import find_or_create_customer, normalize_phone, touch_conversation
from comanda.services.stores import store_for_phone_number_id
from comanda.settings import setting_int
from connectors.whatsapp import turns
from connectors.whatsapp.inbox_writer import ordering_key
from integrations.whatsapp.graph import GraphClient, GraphError
from integrations.whatsapp.messages import chosen_option
from integrations.whatsapp.webhook import Inbound

log = logging.getLogger(__name__)

CHANNEL = Channel.WHATSAPP.value
BOT_CONCURRENCY = 2  # model inference blocks the event loop: few messages in the bot at once keep acks quick
MAX_TEXT_CHARS = 1000  # what the bot reads of one message (a real order is a few dozen words)
MAX_CLAIMS = 5
FIRST_RETRY_SECONDS, LONGEST_RETRY_SECONDS = 1.0, 15.0
EARLIER_POLL_SECONDS = 0.2  # how often a message behind the sender's earlier ones looks whether they are answered
TRUNCATED_RESPONSE = "utter_message_truncated"
FAILED_RESPONSE = "utter_turn_failed"
INTENT_PREFIX = "/"  # Rasa reads "/intent{…}" as an intent with entities


def typed_text(text: str) -> Tuple[str, bool]:
    """What the bot reads of a typed message: never an intent payload (a leading "/" would let a customer
    trigger any intent, even /restart during a handoff), at most MAX_TEXT_CHARS; and whether it was cut."""
    text = text.strip().lstrip(INTENT_PREFIX).strip()
    if len(text) <= MAX_TEXT_CHARS:
        return text, False
    cut = text.rfind(" ", 0, MAX_TEXT_CHARS + 1)
    return text[: cut if cut > MAX_TEXT_CHARS // 2 else MAX_TEXT_CHARS].rstrip(), True


def bot_text(message: Inbound, options: Optional[List[str]]) -> Tuple[Optional[str], bool]:
    """What the bot reads: the text, the tapped choice's payload, or an intent payload for the rest; and
    whether a typed text was cut."""
    if message.kind == "text":
        chosen = chosen_option(message.text, options)
        return (chosen, False) if chosen else typed_text(message.text or "")
    if message.kind == "reply":
        reference = re.fullmatch(r"#(\d+)", message.reply_id or "")
        if reference and options and 1 <= int(reference.group(1)) <= len(options):
            return options[int(reference.group(1)) - 1], False
        return message.reply_id, False
    if message.kind == "location" and message.location:
        point = {"latitude": message.location["latitude"], "longitude": message.location["longitude"]}
        return "/share_location" + json.dumps(point), False
    if message.kind == "order":
        return "/catalog_order" + json.dumps({"catalog_items": message.items}), False
    if message.kind == "media":
        return "/received_media" + json.dumps({"media_type": message.media_type}), False
    return None, False


@dataclass(frozen=True)
class Routed:
    """A claimed message, ready for the bot."""

    attempt: int
    external_id: str
    text: Optional[str]
    truncated: bool
    phone_number_id: str
    conversation_id: str


class TurnOutput(OutputChannel):
    """Rasa's output channel as the worker drives it for one turn (connectors.whatsapp.channel): what it held
    back goes out at ``flush``, or is forgotten at ``discard`` before the turn runs again."""

    @abstractmethod
    async def flush(self, conversation_id: str) -> None: ...

    @abstractmethod
    def discard(self) -> None: ...


class EarlierCheck:
    """The messages asking whether their sender's earlier ones are answered, and the answer for all of them."""

    def __init__(self) -> None:
        self.ids: Set[int] = set()
        self.result: asyncio.Future[Set[int]] = asyncio.get_running_loop().create_future()


class InboxWorker:
    def __init__(
        self,
        graph: GraphClient,
        agent: Callable[[], Agent],
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        new_output: Callable[[str], TurnOutput],
        after_turn: Callable[[], None],
    ) -> None:
        self.graph = graph
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = setting_int("COMANDA_INBOX_LEASE_SECONDS")
        self.retry_seconds = setting_int("COMANDA_TURN_RETRY_SECONDS")
        self._agent = agent
        self._on_new_message = on_new_message
        self._new_output = new_output
        self._after_turn = after_turn
        self._locks: Dict[str, Tuple[asyncio.Lock, int]] = {}
        self._held: Set[int] = set()
        self._busy = asyncio.Semaphore(BOT_CONCURRENCY)
        self._next_check: Optional[EarlierCheck] = None
        self._checking = asyncio.Lock()
        self._nlu_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatsapp-nlu")
        turns.install()

    # --- the leases ------------------------------------------------------------------------------

    async def keep_leases(self) -> None:
        """Every third of a lease: renew what this process holds, take over what nobody holds any more."""
        while True:
            try:
                await in_thread(self._renew, set(self._held))  # a copy: the loop changes the set
                for inbox_id, key in await in_thread(self._expired):
                    if inbox_id not in self._held:
                        log.info("whatsapp: message %s was left unanswered by a process that died: answering", inbox_id)
                        self.spawn(inbox_id, key)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive a database hiccup
                log.exception("whatsapp: inbox lease round failed")
            await asyncio.sleep(self.lease_seconds / 3)

    def _renew(self, held: Set[int]) -> None:
        """Only what this process is answering: a row stored for it that it never took up expires."""
        with transaction() as session:
            inbox.renew(session, self.owner, self.lease_seconds, only=held)

    @staticmethod
    def _expired() -> List[Tuple[int, str]]:
        with transaction() as session:
            return [(r.id, ordering_key(Inbound.from_record(r.payload))) for r in inbox.expired(session, CHANNEL)]

    # --- answering -------------------------------------------------------------------------------

    def spawn(self, inbox_id: int, key: str) -> None:
        """Answer a stored message in the background (after those of its conversation queued before it)."""
        self._held.add(inbox_id)
        in_background(self.process(inbox_id, key), f"whatsapp: answering inbox message {inbox_id}")

    async def process(self, inbox_id: int, key: str) -> None:
        self._held.add(inbox_id)
        try:
            await self._after_earlier(inbox_id)
            async with self._conversation_lock(key):
                crash_point("acknowledged")
                await self._until_ready()
                async with self._busy:
                    routed = await in_thread(self._claim_and_route, inbox_id)
                if routed is None:
                    return
                crash_point("claimed")
                if routed.attempt > MAX_CLAIMS:
                    log.error("whatsapp: message %s taken %d times without an answer: parked", inbox_id, MAX_CLAIMS)
                    await in_thread(self._finish, inbox_id, InboxStatus.PARKED, f"claimed {MAX_CLAIMS} times")
                    return
                try:
                    await self._answer(inbox_id, routed)
                except Exception as exc:  # noqa: BLE001 - taken again at the next lease round, MAX_CLAIMS times at most
                    log.exception("whatsapp: answering message %s failed; it will be taken again", inbox_id)
                    await in_thread(self._release, inbox_id, f"{type(exc).__name__}: {exc}")
        finally:
            self._held.discard(inbox_id)
            self._after_turn()

    async def _after_earlier(self, inbox_id: int) -> None:
        """Wait until the customer's earlier messages are answered, wherever they are: another replica may hold
        one (the balancer spreads a customer's messages), or one that died (it is taken over when its lease
        runs out). Not under the conversation lock: this very process may be the one to take it over. Bounded
        (the longest an earlier message may rightly take: its lease running out, then its retries), after which
        this one goes ahead out of order rather than wait forever behind a message that never ends."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3 * self.lease_seconds + self.retry_seconds
        while await self._earlier_unfinished(inbox_id):
            if loop.time() > deadline:
                log.warning("whatsapp: message %s waited too long for the earlier ones: answering it", inbox_id)
                return
            await asyncio.sleep(EARLIER_POLL_SECONDS)

    async def _earlier_unfinished(self, inbox_id: int) -> bool:
        """Asked together: every message that asks while a check is running joins the next one, so a burst of
        hundreds costs a few queries, not hundreds of threads and connections contending with the webhooks'
        acknowledgements (a third of the Rasa server's time in a profile of the webhook bench)."""
        check = self._next_check
        if check is None:
            check = self._next_check = EarlierCheck()
            in_background(self._run_check(check), "whatsapp: checking earlier messages")
        check.ids.add(inbox_id)
        return inbox_id in await asyncio.shield(check.result)

    async def _run_check(self, check: EarlierCheck) -> None:
        async with self._checking:  # one check at a time: those asking meanwhile gather for the next
            self._next_check = None
            try:
                check.result.set_result(await in_thread(self._with_earlier_unfinished, check.ids))
            except Exception as exc:  # noqa: BLE001 - each waiting message gets the error, as it would alone
                check.result.set_exception(exc)

    @staticmethod
    def _with_earlier_unfinished(ids: Set[int]) -> Set[int]:
        with transaction() as session:
            return inbox.earlier_unfinished(session, ids)

    async def _until_ready(self) -> None:
        """A restarted server finds stored messages before Rasa has loaded the model: they wait for it, rather
        than fail a claim (each failed claim counts towards parking the message)."""
        while not self._agent().is_ready():
            await asyncio.sleep(0.2)

    async def _answer(self, inbox_id: int, routed: Routed) -> None:
        if review_chat.is_review_message(routed.text) and await self._review(routed):
            await in_thread(self._finish, inbox_id, InboxStatus.PROCESSED, None)
            return
        tracker = await self._agent().tracker_store.retrieve(routed.conversation_id)
        if routed.attempt > 1 and _has_message(tracker, routed.external_id):
            log.info("whatsapp: message %s was answered before the crash: not again", routed.external_id)
            await in_thread(self._finish, inbox_id, InboxStatus.PROCESSED, None)
            return
        paused = tracker is not None and tracker.is_paused()
        await self._mark_read(routed.phone_number_id, routed.external_id, typing=not paused)
        parse_data = await in_thread(self._understand, routed.text, routed.conversation_id, executor=self._nlu_thread)
        crash_point("understood")
        language = await self.language_of(routed.conversation_id, parse_data)
        notice = TRUNCATED_RESPONSE if routed.truncated and not paused else None
        output, failure = await self._run_turn(routed, parse_data, language, notice)
        if failure is not None:
            if not paused:
                await self._say(output, routed.conversation_id, FAILED_RESPONSE, language)
            await output.flush(routed.conversation_id)
            await in_thread(self._finish, inbox_id, InboxStatus.PARKED, failure)
            return
        crash_point("turn_saved")
        await output.flush(routed.conversation_id)
        language = await self.language_of(routed.conversation_id, parse_data)
        request = ((parse_data.get("intent") or {}).get("name"), routed.text) if paused else None
        await in_thread(self._finish, inbox_id, InboxStatus.PROCESSED, None, language, request)
        crash_point("processed")

    async def _review(self, routed: Routed) -> bool:
        """An owner or manager reviewing from their phone (comanda.services.review_chat): answered here, not
        by the bot. False when the sender is not a reviewer of this store (the bot answers as usual)."""
        answered = await in_thread(self._review_turn, routed)
        if answered is None:
            return False
        language, replies = answered
        output = self._new_output(routed.external_id)
        for reply in replies:
            if reply.buttons:
                buttons = [{"title": title, "payload": payload} for title, payload in reply.buttons]
                await output.send_text_with_buttons(routed.conversation_id, reply.text, buttons, language=language)
            else:
                await output.send_text_message(routed.conversation_id, reply.text)
        await output.flush(routed.conversation_id)
        return True

    @staticmethod
    def _review_turn(routed: Routed) -> Optional[Tuple[str, List[review_chat.Reply]]]:
        ref = parse_conversation_id(routed.conversation_id)
        with transaction() as session:
            member = review_chat.reviewer(session, ref.store_id, ref.customer)
            if member is None:
                return None
            return member.language, review_chat.answer(session, member, ref.store_id, routed.text or "")

    async def _run_turn(
        self, routed: Routed, parse_data: Dict[str, Any], language: str, notice: Optional[str]
    ) -> Tuple[TurnOutput, Optional[str]]:
        """Rasa's turn (after ``notice``, a response for the customer), run again with backoff while a
        custom action fails: (the last attempt's output, None when it went through, else why not)."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + self.retry_seconds, FIRST_RETRY_SECONDS
        while True:
            output = self._new_output(routed.external_id)
            try:
                if notice:
                    await self._say(output, routed.conversation_id, notice, language)
                async with self._busy:
                    with turns.interrupt_on_failed_action():
                        await self._on_new_message(
                            UserMessage(
                                routed.text,
                                output,
                                routed.conversation_id,
                                parse_data=parse_data,
                                input_channel=CHANNEL,
                                message_id=routed.external_id,
                                metadata={"channel": CHANNEL, "message_id": routed.external_id},
                            )
                        )
                return output, None
            except Exception as exc:  # noqa: BLE001 - an action server down, a database hiccup: try again
                failure = f"{type(exc).__name__}: {exc}"
                if loop.time() + delay > deadline:
                    log.error("whatsapp: message %s could not be answered: %s; parked", routed.external_id, failure)
                    return output, failure
                log.warning("whatsapp: turn of %s failed (%s); again in %.0f s", routed.external_id, failure, delay)
                output.discard()
            await asyncio.sleep(delay)
            delay = min(delay * 2, LONGEST_RETRY_SECONDS)

    async def _say(self, output: TurnOutput, conversation_id: str, response: str, language: str) -> None:
        """A response of the domain, in the customer's language, through the turn's output."""
        processor = self._processor()
        tracker = DialogueStateTracker.from_events(
            conversation_id, [SlotSet("language", language)], slots=processor.domain.slots
        )
        message = await processor.nlg.generate(response, tracker, output.name())
        if message:
            await output.send_response(conversation_id, message)

    def _understand(self, text: str, conversation_id: str) -> Dict[str, Any]:
        """Rasa's own parse (graph inference), run on the NLU thread: it needs no event loop of its own
        beyond this call, so the webhook's loop stays free to acknowledge while models run."""
        return asyncio.run(self._processor().parse_message(UserMessage(text, sender_id=conversation_id)))

    def _processor(self) -> MessageProcessor:
        """The loaded model's processor: a message is answered only once there is one (``_until_ready``)."""
        processor = self._agent().processor
        assert processor is not None
        return processor

    def _claim_and_route(self, inbox_id: int) -> Optional[Routed]:
        """Claim a stored message and route it: store by number, customer, conversation, bot text."""
        with transaction() as session:
            attempt = inbox.claim(session, inbox_id, self.owner, self.lease_seconds)
            if attempt is None:
                return None
            row = session.get(m.InboundMessage, inbox_id)
            message = Inbound.from_record(row.payload)
            store = store_for_phone_number_id(session, message.phone_number_id)
            try:
                phone = normalize_phone(message.wa_id) if message.wa_id else None
            except InvalidInput:
                phone = None
            if store is None or message.sender is None or (phone is None and message.user_id is None):
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
            text, truncated = bot_text(message, conversation.numbered_options)
            return Routed(attempt, row.external_id, text, truncated, message.phone_number_id, conversation.id)

    @staticmethod
    def _release(inbox_id: int, error: str) -> None:
        with transaction() as session:
            inbox.release(session, inbox_id, error)

    @staticmethod
    def _finish(
        inbox_id: int,
        status: str,
        error: Optional[str],
        language: Optional[str] = None,
        paused_request: Optional[Tuple[Optional[str], str]] = None,
    ) -> None:
        """Close the inbox row; remember the language the bot now speaks with this customer; a message to a
        paused conversation that asks for another kind of request gets its ticket (``paused_request``:
        its intent and text)."""
        with transaction() as session:
            inbox.finish(session, inbox_id, status, error)
            row = session.get(m.InboundMessage, inbox_id)
            if paused_request is not None:
                handoff.note_paused_request(session, row.conversation_id, *paused_request)
            conversation = session.get(m.Conversation, row.conversation_id) if language else None
            if conversation is not None:
                conversation.language = language
                session.get(m.Customer, conversation.customer_id).language = language

    async def _mark_read(self, phone_number_id: str, message_id: str, typing: bool) -> None:
        """Blue ticks, and the typing indicator while the bot works (not while a person has the chat)."""
        try:
            await self.graph.mark_read(phone_number_id, message_id, typing=typing)
        except GraphError as exc:
            log.warning("whatsapp: could not mark %s as read: %s", message_id, exc)

    def _conversation_lock(self, key: str) -> _KeyedLock:
        return _KeyedLock(self._locks, key)

    async def language_of(self, conversation_id: str, parse_data: Optional[Dict[str, Any]] = None) -> str:
        """The conversation's language as the bot last knew it (the tracker's `language` slot), else the
        one the NLU read in this message."""
        tracker = await self._agent().tracker_store.retrieve(conversation_id)
        slot = tracker.get_slot("language") if tracker else None
        read = [e.get("value") for e in (parse_data or {}).get("entities", []) if e.get("entity") == "language"]
        return language_or_default(slot or (read[0] if read else None))


def _has_message(tracker: Optional[DialogueStateTracker], message_id: str) -> bool:
    """Whether Rasa saved a turn for this message (a crash after the save, before the inbox row closed)."""
    return tracker is not None and any(getattr(event, "message_id", None) == message_id for event in tracker.events)


class _KeyedLock:
    """One asyncio lock per conversation, forgotten when nobody holds or waits for it (FIFO, so messages
    of one conversation are answered in arrival order)."""

    def __init__(self, locks: Dict[str, Tuple[asyncio.Lock, int]], key: str) -> None:
        self._locks, self._key = locks, key

    async def __aenter__(self) -> None:
        lock, users = self._locks.get(self._key) or (asyncio.Lock(), 0)
        self._locks[self._key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:  # cancelled while waiting: no longer a user
            self._leave()
            raise

    async def __aexit__(self, *exc: Any) -> None:
        self._locks[self._key][0].release()
        self._leave()

    def _leave(self) -> None:
        lock, users = self._locks[self._key]
        if users == 1:
            del self._locks[self._key]
        else:
            self._locks[self._key] = (lock, users - 1)
