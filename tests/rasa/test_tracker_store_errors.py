"""A tracker store error is the turn's error on the WhatsApp path: Rasa's FailSafeTrackerStore would save
the turn in memory only (and read the conversation as new), so a turn that failed would look done. On
SQLite and PostgreSQL."""

import asyncio
import threading
from types import SimpleNamespace

import pytest
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.exc import OperationalError

from connectors.tracker_store import ComandaTrackerStore, failing_loudly
from tests.helpers.tracker import DOMAIN

SENDER = "centro:whatsapp:+5215512345678"


def broken(*_args, **_kwargs):
    raise OperationalError("INSERT INTO events", {}, Exception("server closed the connection unexpectedly"))


def test_rasas_wrapper_alone_hides_the_error(migrated, monkeypatch):
    store = FailSafeTrackerStore(ComandaTrackerStore(domain=DOMAIN, host=None))
    monkeypatch.setattr(store._tracker_store, "sessionmaker", broken)
    asyncio.run(store.save(DialogueStateTracker.from_events(SENDER, [UserUttered("hola")])))  # "saved"
    assert asyncio.run(store.retrieve(SENDER)) is None  # and the conversation reads as a new one


def test_failing_loudly_makes_save_and_retrieve_raise(migrated, monkeypatch):
    store = FailSafeTrackerStore(ComandaTrackerStore(domain=DOMAIN, host=None))
    agent = failing_loudly(SimpleNamespace(tracker_store=store))
    assert agent.tracker_store is store
    tracker = DialogueStateTracker.from_events(SENDER, [UserUttered("hola")])
    asyncio.run(store.save(tracker))  # a working database: saved as usual
    assert asyncio.run(store.retrieve(SENDER)).latest_message.text == "hola"
    monkeypatch.setattr(store._tracker_store, "sessionmaker", broken)
    with pytest.raises(OperationalError):
        asyncio.run(store.save(tracker))
    with pytest.raises(OperationalError):
        asyncio.run(store.retrieve(SENDER))


def test_reading_and_saving_run_off_the_event_loop(migrated, monkeypatch):
    store = ComandaTrackerStore(domain=DOMAIN, host=None)
    threads = []
    for method in ("_event_query", "_additional_events"):
        original = getattr(store, method)

        def recorded(*args, _original=original, **kwargs):
            threads.append(threading.current_thread())
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, method, recorded)
    asyncio.run(store.save(DialogueStateTracker.from_events(SENDER, [UserUttered("hola")])))
    assert asyncio.run(store.retrieve(SENDER)).latest_message.text == "hola"
    assert threads and threading.main_thread() not in threads
