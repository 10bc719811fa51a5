"""What Meta reports about sent messages: sent, delivered, read, failed.

A status moves its outbox row forward (never back). A failure with 131047 (the customer last wrote
more than 24 hours ago) queues the approved re-engagement template instead, at most once a day per
conversation, in the customer's language.
"""

from __future__ import annotations

import logging
from typing import List

from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import now
from comanda.db import transaction
from comanda.enums import Channel, OutboxStatus
from comanda.i18n import language_or_default
from comanda.services import outbox
from integrations.whatsapp.graph import REENGAGEMENT_CODE, describe_error
from integrations.whatsapp.messages import template_message
from integrations.whatsapp.webhook import Status

log = logging.getLogger(__name__)

CHANNEL = Channel.WHATSAPP.value
TEMPLATE_LANGUAGE = {"es": "es_MX", "en": "en_US"}


def apply_statuses(statuses: List[Status], reengagement_template: str) -> None:
    """Each status in its own transaction: one unknown or odd report does not hold up the others."""
    for status in statuses:
        with transaction() as session:
            error = "; ".join(f"{c} {describe_error(c)}" for c in status.error_codes) or None
            row = outbox.apply_status(session, status.message_id, status.status, error)
            if row is None:
                continue
            if status.status == OutboxStatus.FAILED:
                log.warning("whatsapp: message %s to %s failed: %s", status.message_id, row.recipient, error)
            if REENGAGEMENT_CODE in status.error_codes and row.conversation_id:
                queue_reengagement(session, row.conversation_id, reengagement_template)


def queue_reengagement(session: Session, conversation_id: str, template: str) -> None:
    """Outside the 24-hour window only a template may be sent: ask the customer to write back."""
    conversation = session.get(m.Conversation, conversation_id)
    if conversation is None or not conversation.recipient:
        return
    store = session.get(m.Store, conversation.store_id)
    language = language_or_default(conversation.language or store.business.default_language)
    message = template_message(conversation.recipient, template, TEMPLATE_LANGUAGE[language], [store.name])
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
