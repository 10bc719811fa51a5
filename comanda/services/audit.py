"""Who did what, when and from where: one ``audit_events`` row per staff action (and per change that has
no ledger of its own), written in the transaction of the change it describes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy.orm import Session

from comanda import models as m


@dataclass(frozen=True)
class Actor:
    """Someone acting: ``staff:<id>``, ``cli:<os user>`` or ``system``, and the address they came from."""

    name: str
    ip: Optional[str] = None


def record(session: Session, actor: Actor, action: str, entity_type: str, entity_id: Any, **data: Any) -> None:
    """Add the event; ``data`` keeps what was changed (None values are left out)."""
    session.add(
        m.AuditEvent(
            actor=actor.name,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            data={key: value for key, value in data.items() if value is not None},
            ip=actor.ip,
        )
    )
