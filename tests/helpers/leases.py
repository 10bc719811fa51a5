"""Inbound messages under a lease, as the lease tests take them: received by a process, claimed, expired."""

from __future__ import annotations

from typing import List

from comanda.db import new_session, transaction
from comanda.services import inbox

LEASE = 30


def received(external_id, owner):
    with transaction() as session:
        return inbox.record_inbound(
            session, "whatsapp", external_id, "text", {}, sender="521", lease_owner=owner, lease_seconds=LEASE
        )


def claim(row_id, owner):
    with transaction() as session:
        return inbox.claim(session, row_id, owner, LEASE)


def expired() -> List[int]:
    with new_session() as session:
        return [row.id for row in inbox.expired(session, "whatsapp")]
