"""Stores and the business they belong to."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.errors import NotFound


def get_store(session: Session, store_id: str) -> m.Store:
    store = session.get(m.Store, store_id)
    if store is None or not store.active:
        raise NotFound(f"no store {store_id!r}", store_id=store_id)
    return store


def store_for_phone_number_id(session: Session, phone_number_id: str) -> Optional[m.Store]:
    """The branch that owns a WhatsApp number (one number per branch)."""
    return session.execute(
        select(m.Store).where(m.Store.whatsapp_phone_number_id == phone_number_id, m.Store.active.is_(True))
    ).scalar_one_or_none()
