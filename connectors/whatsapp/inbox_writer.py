"""The webhook's only work before its 200: every message in the durable inbox.

Concurrent webhooks share one transaction and one INSERT (a group commit), so a burst costs a few
statements and commits, not a few per message. Redeliveries are dropped by the inbox's unique message
id. The inbox fits odd values to its columns; should a group still fail, its messages are written one by
one, and one that cannot be written is parked with its error for staff, so it neither fails the other
customers' webhooks nor comes back from Meta forever. Only a database that takes nothing at all fails
the webhook (500: Meta delivers it again later).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from comanda.concurrency import in_thread
from comanda.db import transaction
from comanda.enums import Channel, InboxStatus
from comanda.services import inbox
from integrations.whatsapp.webhook import ANSWERED, Inbound

log = logging.getLogger(__name__)

CHANNEL = Channel.WHATSAPP.value


@dataclass(frozen=True)
class Stored:
    """A new message for the bot: its inbox row, its ordering key and WhatsApp's id."""

    inbox_id: int
    key: str
    message_id: str


def ordering_key(message: Inbound) -> str:
    """Messages with the same key are answered one at a time, in arrival order (one per conversation)."""
    return f"{message.phone_number_id}:{message.sender}"


def store_messages(
    messages: List[Inbound], lease_owner: Optional[str] = None, lease_seconds: float = 0
) -> List[Stored]:
    """The batch in one transaction and one INSERT; if that fails, each message in its own (see the module).
    Messages for the bot are held by ``lease_owner`` (the worker that will answer them) for ``lease_seconds``."""
    try:
        with transaction() as session:
            rows = [_new_message(message, lease_owner) for message in messages]
            ids = inbox.record_inbound_many(session, CHANNEL, rows, lease_seconds)
            return [stored for stored in map(_stored, messages, ids) if stored]
    except Exception:  # noqa: BLE001 - whatever failed the group is isolated below
        log.exception("whatsapp: group commit of %d message(s) failed; writing them one by one", len(messages))
    new = []
    for message in messages:
        try:
            with transaction() as session:
                row = _new_message(message, lease_owner)
                stored = _stored(
                    message, inbox.record_inbound(session, CHANNEL, **vars(row), lease_seconds=lease_seconds)
                )
        except Exception as exc:  # noqa: BLE001 - parked for staff; a failure to park fails the webhook
            log.exception("whatsapp: message %s cannot be stored: parked", message.message_id)
            with transaction() as session:
                inbox.record_unstorable(
                    session, CHANNEL, message.message_id, repr(message.raw), f"{type(exc).__name__}: {exc}"
                )
            continue
        if stored:
            new.append(stored)
    return new


def _answered(message: Inbound) -> bool:
    return message.kind in ANSWERED and message.sender is not None


def _new_message(message: Inbound, lease_owner: Optional[str]) -> inbox.NewMessage:
    """The row of one message: what the bot must answer is held by ``lease_owner``, the rest only logged."""
    answered = _answered(message)
    return inbox.NewMessage(
        message.message_id,
        message.message_type,
        message.to_record(),
        sender=message.sender,
        status=InboxStatus.RECEIVED if answered else InboxStatus.IGNORED,
        lease_owner=lease_owner if answered else None,
    )


def _stored(message: Inbound, inbox_id: Optional[int]) -> Optional[Stored]:
    """What the bot must answer, or None (a redelivery, or nothing to answer)."""
    if inbox_id is None:
        log.info("whatsapp: message %s is a redelivery: dropped", message.message_id)
        return None
    if not _answered(message):
        log.info("whatsapp: %s message %s: logged, no reply", message.message_type, message.message_id)
        return None
    return Stored(inbox_id, ordering_key(message), message.message_id)


class GroupCommit:
    """Writes what concurrent webhooks bring in one transaction, on a thread of its own: on the loop's shared
    pool the write waited behind the bot's and the status webhooks' database work, and the ack with it."""

    def __init__(self, write_batch: Callable[[List[Inbound]], List[Stored]]) -> None:
        self._write_batch = write_batch
        self._queue: asyncio.Queue[Tuple[List[Inbound], asyncio.Future]] = asyncio.Queue()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatsapp-inbox")

    async def write(self, messages: List[Inbound]) -> List[Stored]:
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((messages, done))
        return await done

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                stored = await in_thread(
                    self._write_batch, [m for messages, _ in batch for m in messages], executor=self._thread
                )
            except Exception as exc:  # noqa: BLE001 - every waiting webhook answers 500 and Meta retries
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for messages, done in batch:
                mine = {m.message_id for m in messages}
                done.set_result([entry for entry in stored if entry.message_id in mine])
