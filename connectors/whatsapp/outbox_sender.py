"""Delivers the outbox to the Graph API: each row once, a conversation's rows in order.

Rows are claimed with a conditional update (comanda.services.outbox), so several senders (replicas)
never send one row twice. Retryable failures go back to the queue with backoff; a 131047 failure
(24-hour window closed) queues the re-engagement template. A document named by its document-store id
is uploaded at send time, after checking again that it belongs to the row's conversation; media
that name a file path are never sent. Sends keep WhatsApp's pace (``pacing``): a customer who is
sent too much waits, in order, while everyone else's messages go on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List

from comanda import models as m
from comanda.concurrency import in_thread
from comanda.crash_points import crash_point
from comanda.db import transaction
from comanda.enums import Channel, OutboxStatus
from comanda.errors import ComandaError, InvalidInput
from comanda.i18n import language_or_default
from comanda.services import outbox
from comanda.services.documents import Document, invoice_document
from comanda.settings import setting
from connectors.whatsapp.pacing import Pacer
from connectors.whatsapp.statuses import queue_reengagement
from integrations.whatsapp.graph import PAIR_RATE_CODE, REENGAGEMENT_CODE, GraphClient, GraphError
from integrations.whatsapp.messages import media_problem

log = logging.getLogger(__name__)

CHANNEL = Channel.WHATSAPP.value
IDLE_POLL_SECONDS = 1.0


class OutboxSender:
    def __init__(self, graph: GraphClient, reengagement_template: str) -> None:
        self.graph = graph
        self.reengagement_template = reengagement_template
        self.pacer = Pacer(float(setting("WHATSAPP_MESSAGES_PER_SECOND")))
        self._wakeup = asyncio.Event()
        self._phone_number_ids: Dict[str, str] = {}

    def wake(self) -> None:
        """New rows are due: look now instead of at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=IDLE_POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()
            try:
                items = await in_thread(self._claim_due, self.pacer.throttled())
                await asyncio.gather(*(self._deliver(item) for item in items))
                if items:
                    self._wakeup.set()  # the next message of those conversations may be due now
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive a database hiccup
                log.exception("whatsapp: outbox sender error")

    @staticmethod
    def _claim_due(waiting: List[str]) -> List[outbox.OutboxItem]:
        with transaction() as session:
            return outbox.claim_due(session, CHANNEL, waiting=waiting)

    def phone_number_id(self, store_id: str) -> str:
        """The store's WhatsApp number id, read once per store."""
        if store_id not in self._phone_number_ids:
            with transaction() as session:
                self._phone_number_ids[store_id] = session.get(m.Store, store_id).whatsapp_phone_number_id
        return self._phone_number_ids[store_id]

    async def _deliver(self, item: outbox.OutboxItem) -> None:
        phone_number_id = await in_thread(self.phone_number_id, item.store_id or "")
        await asyncio.sleep(self.pacer.take(phone_number_id, item.recipient))
        try:
            message = await self._with_stored_document(phone_number_id, item)
            wamid = await self.graph.send_message(phone_number_id, message)
            crash_point("sent")
        except GraphError as exc:
            await in_thread(self._failed, item, exc)
            return
        except ComandaError as exc:
            await in_thread(self._refused, item, exc.message)
            return
        await in_thread(self._sent, item.id, wamid)

    async def _with_stored_document(self, phone_number_id: str, item: outbox.OutboxItem) -> Dict[str, Any]:
        """The Graph message to send: a document-store reference becomes an uploaded media id."""
        message = item.payload
        problem = media_problem(message)
        if problem:
            raise InvalidInput(problem)
        body = message.get("document")
        if not isinstance(body, dict) or "invoice_id" not in body:
            return message
        document = await in_thread(self._stored_document, item, body["invoice_id"], body["format"])
        media_id = await self.graph.upload_media(
            phone_number_id, document.content, document.mime_type, document.filename
        )
        sent = {key: value for key, value in body.items() if key not in ("invoice_id", "format")}
        return {**message, "document": {"filename": document.filename, **sent, "id": media_id}}

    @staticmethod
    def _stored_document(item: outbox.OutboxItem, invoice_id: int, fmt: str) -> Document:
        with transaction() as session:
            conversation = session.get(m.Conversation, item.conversation_id) if item.conversation_id else None
            language = language_or_default(conversation.language if conversation else None)
            return invoice_document(session, invoice_id, fmt, language, conversation_id=item.conversation_id or "")

    @staticmethod
    def _refused(item: outbox.OutboxItem, why: str) -> None:
        with transaction() as session:
            outbox.mark_failed(session, item, why, retryable=False)
        log.error("whatsapp: outbox %s not sent: %s", item.id, why)

    @staticmethod
    def _sent(item_id: int, wamid: str) -> None:
        with transaction() as session:
            outbox.mark_sent(session, item_id, wamid)

    def _failed(self, item: outbox.OutboxItem, error: GraphError) -> None:
        if error.code == PAIR_RATE_CODE:
            self.pacer.slow_down(item.recipient)
        with transaction() as session:
            status = outbox.mark_failed(session, item, str(error), error.retryable)
            if error.code == REENGAGEMENT_CODE and item.conversation_id:
                queue_reengagement(session, item.conversation_id, self.reengagement_template)
        log.log(
            logging.WARNING if status == OutboxStatus.QUEUED else logging.ERROR,
            "whatsapp: send of outbox %s failed (%s): %s",
            item.id,
            status,
            error,
        )
