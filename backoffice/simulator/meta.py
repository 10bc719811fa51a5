"""What Meta does around the Cloud API: it knows the business numbers, and signs and posts webhooks.

Webhooks go to the real connector, `{COMANDA_RASA_URL}/webhooks/whatsapp/webhook`. They are posted
from a thread, so the connector may answer only after it has called the fake Graph API on this same
event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import requests
from sqlalchemy import select

from backoffice.simulator import payloads
from backoffice.simulator.state import Fault, Simulator
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session
from comanda.settings import SIMULATOR_WHATSAPP, setting

logger = logging.getLogger(__name__)

STATUS_STEP_SECONDS = 0.15  # between the send and each of sent, delivered, read
WEBHOOK_TIMEOUT_SECONDS = 30


def credential(name: str) -> str:
    """The simulator's demo WhatsApp secret: it never signs or checks with a real app's, even when set."""
    return SIMULATOR_WHATSAPP[name]


def connector_url() -> str:
    return f"{setting('COMANDA_RASA_URL').rstrip('/')}/webhooks/whatsapp/webhook"


@dataclass(frozen=True)
class Number:
    """A store's WhatsApp number as the simulator offers it."""

    phone_number_id: str
    display: str  # "+52 55 1234 5678"
    store_name: str
    timezone: str  # the business's (IANA name): the chat shows every time in it

    @property
    def digits(self) -> str:
        return re.sub(r"\D", "", self.display)


_known: Dict[str, Number] = {}


def numbers() -> List[Number]:
    """Every active store with a WhatsApp number, read from the database."""
    with new_session() as session:
        stores = session.execute(
            select(m.Store, m.Business.timezone)
            .join(m.Business, m.Business.id == m.Store.business_id)
            .where(m.Store.whatsapp_phone_number_id.is_not(None), m.Store.active.is_(True))
            .order_by(m.Store.name)
        ).all()
        found = [
            Number(s.whatsapp_phone_number_id, s.whatsapp_display_number or s.whatsapp_phone_number_id, s.name, zone)
            for s, zone in stores
        ]
    _known.update((n.phone_number_id, n) for n in found)
    return found


def number(phone_number_id: str) -> Optional[Number]:
    """The store number with this id; found numbers are kept, so the send path rarely reads the database."""
    if phone_number_id not in _known:
        numbers()
    return _known.get(phone_number_id)


async def post_webhook(payload: Dict[str, Any]) -> int:
    """Sign the exact bytes and post them to the connector; its HTTP status."""
    body = payloads.encode(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature-256": payloads.sign(credential("WHATSAPP_APP_SECRET"), body),
    }
    response = await in_thread(
        requests.post, connector_url(), data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
    )
    return response.status_code


async def report_statuses(sim: Simulator, to: payloads.Chat, message_id: str, fault: Optional[Fault]) -> None:
    """After an accepted send: sent, delivered, read; or one `failed` when a fault says so."""
    steps: List[Tuple[str, Optional[List[Dict[str, Any]]]]]
    if fault is not None:
        steps = [("failed", [payloads.error_object(fault.code)])]
    else:
        steps = [("sent", None), ("delivered", None), ("read", None)]
    for state, errors in steps:
        await asyncio.sleep(STATUS_STEP_SECONDS)
        sim.set_status(message_id, state, errors)
        try:
            answered = await post_webhook(payloads.status(to, message_id, state, errors=errors))
        except requests.RequestException as exc:
            logger.warning("status %s of %s not delivered to the connector: %s", state, message_id, exc)
            continue
        if answered != 200:
            logger.warning("connector answered %s to status %s of %s", answered, state, message_id)
