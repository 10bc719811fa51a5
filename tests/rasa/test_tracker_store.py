"""Rasa's SQL tracker store on Comanda's database: same file (or schema) as Comanda's tables."""

import asyncio

from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import inspect

from comanda.db import get_engine
from connectors.tracker_store import ComandaTrackerStore
from tests.helpers.tracker import DOMAIN


def test_trackers_live_in_the_comanda_database(migrated):
    store = ComandaTrackerStore(domain=DOMAIN, host=None)
    tracker = DialogueStateTracker.from_events(
        "centro:whatsapp:+5215512345678", [UserUttered("hola"), SlotSet("language", "es")], slots=DOMAIN.slots
    )
    asyncio.run(store.save(tracker))
    again = asyncio.run(store.retrieve("centro:whatsapp:+5215512345678"))
    assert again.get_slot("language") == "es" and again.latest_message.text == "hola"
    tables = set(inspect(get_engine()).get_table_names())
    assert {"events", "orders", "stock_movements"} <= tables
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
