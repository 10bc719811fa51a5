"""The review inbox from the Rasa side: the tracker store hands every saved turn to the collector (the real
parse data of Rasa's UserUttered events, a correction speaking about the message before it, a tracker saved
twice counted once), and what the decisions write is training data Rasa accepts
(`rasa data validate --fail-on-warnings`)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from comanda.db import new_session
from comanda.services import review, training_data
from connectors.tracker_store import ComandaTrackerStore
from tests.helpers.review import parse, project_copy

DOMAIN = Domain.from_yaml("slots: {}")
SENDER = "centro:whatsapp:+5215512345678"


def user(text: str, message_id: str, **reading) -> UserUttered:
    return UserUttered(text, parse_data=parse(**reading), message_id=message_id)


def test_saved_turns_feed_the_inbox_once(demo):
    store = ComandaTrackerStore(domain=DOMAIN, host=None)
    events = [
        user("me das la cuenta", "m1", intent="show_cart", confidence=0.93),
        ActionExecuted("action_show_cart"),
        BotUttered("Tu carrito está vacío"),
    ]
    tracker = DialogueStateTracker.from_events(SENDER, events, slots=DOMAIN.slots)
    asyncio.run(store.save(tracker))  # sure of itself: nothing kept
    tracker.update(user("no, eso no", "m2", intent="deny", confidence=0.95))
    asyncio.run(store.save(tracker))
    tracker.update(user("quiero 2 pambazos", "m3", intent="add_items", confidence=0.5, unplaced=["pambazos"]))
    asyncio.run(store.save(tracker))
    asyncio.run(ComandaTrackerStore(domain=DOMAIN, host=None).save(tracker))  # another replica saves it again
    with new_session() as session:
        found = {i.text: (i.reason, i.count) for i in review.visible_items(session, None)}
    assert found == {"me das la cuenta": ("corrected", 1), "quiero 2 pambazos": ("unplaced", 1)}


def validate(home: Path) -> subprocess.CompletedProcess:
    rasa = Path(sys.executable).parent / "rasa"
    return subprocess.run(
        [
            str(rasa),
            "data",
            "validate",
            "--domain",
            "domain",
            "--data",
            "data",
            "--config",
            "config.yml",
            "--fail-on-warnings",
        ],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_what_decisions_write_is_valid_training_data(tmp_path, monkeypatch):
    home = project_copy(tmp_path)
    monkeypatch.setenv("COMANDA_HOME", str(home))
    assert training_data.add_example("ps nomas eso gracias [jaja](risa)", "thank", "es")
    assert training_data.add_example("i'd wanna grab a bite real quick", "show_menu", "en")
    assert not training_data.add_example("ps nomas eso gracias [jaja](risa)", "thank", "es")  # already there
    training_data.add_faq_topic(
        training_data.FaqTopic(
            "parking",
            {"es": ["hay donde dejar el carro?", "tienen estacionamiento propio"], "en": ["is there parking nearby"]},
            {"es": "Sí: hay estacionamiento en la esquina.", "en": "Yes: there's parking at the corner."},
        )
    )
    with pytest.raises(Exception, match="already an example of faq/parking"):
        training_data.add_example("tienen estacionamiento propio", "greet", "es")
    done = validate(home)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = (home / "data" / "nlu" / "es" / "reviewed.yml").read_text(encoding="utf-8")
    assert "- ps nomas eso gracias (jaja)(risa)" in written and "language: es" in written
