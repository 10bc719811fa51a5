"""Training runs: one at a time (a stale one gives way), progress appended, and the comparison that decides
whether a new model may replace the active one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import TrainingRunStatus
from comanda.errors import NotFound
from comanda.services import training
from comanda.services.audit import Actor

OWNER = Actor("staff:1")


def figures(accuracy, exact, errors=(), per_intent=None):
    return {
        "intent_accuracy": accuracy,
        "order_line_exact_match": exact,
        "intent_errors": [{"text": t, "expected": "greet", "predicted": "thank"} for t in errors],
        "order_line_errors": [],
        "per_intent": per_intent or {"greet": {"precision": 1.0, "recall": accuracy}},
    }


def test_not_worse_means_no_figure_of_any_language_went_down():
    active = {"es": figures(0.98, 1.0, ["hola we"]), "en": figures(0.97, 0.95)}
    better = {"es": figures(0.99, 1.0), "en": figures(0.97, 0.96, ["yo"])}
    compared = training.compare(better, active)
    assert compared["not_worse"] and compared["had_active"]
    es, en = compared["languages"]["es"], compared["languages"]["en"]
    assert es["intent_accuracy"] == {"active": 0.98, "new": 0.99}
    assert es["fixed"] == [{"text": "hola we", "was": "thank (expected greet)"}] and es["broken"] == []
    assert en["broken"] == [{"text": "yo", "now": "thank (expected greet)"}]
    assert es["per_intent"] == {"greet": {"recall": {"active": 0.98, "new": 0.99}}}
    worse = {"es": figures(0.99, 1.0), "en": figures(0.97, 0.93)}
    assert not training.compare(worse, active)["not_worse"]
    first = training.compare(worse, None)  # no active model yet: nothing to be worse than
    assert first["not_worse"] and not first["had_active"] and first["languages"]["en"]["fixed"] == []


def test_one_run_at_a_time_and_a_stale_one_gives_way(migrated):
    with transaction() as session:
        first = training.start(session, OWNER).id
    with transaction() as session, pytest.raises(training.TrainingBusy, match=f"training run {first} is still running"):
        training.start(session, OWNER)
    with transaction() as session:
        training.note(session, first, "training a new model")
        training.note(session, first, "trained")
    with new_session() as session:
        progress = session.get(m.TrainingRun, first).progress.splitlines()
    assert [line[9:] for line in progress] == ["training a new model", "trained"]
    with transaction() as session:  # its process died an hour ago
        session.execute(update(m.TrainingRun).values(started_at=clock.now() - timedelta(hours=2)))
    with transaction() as session:
        second = training.start(session, OWNER, forced=True)
        assert second.forced and second.id != first
    with new_session() as session:
        stale = session.get(m.TrainingRun, first)
        assert stale.status == TrainingRunStatus.FAILED and "stopped without finishing" in stale.error
    with new_session() as session, pytest.raises(NotFound):
        training.last_activated(session)
