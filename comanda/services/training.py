"""Training runs (`comanda train`, the console's button): one at a time, their progress as it happens, the
comparison of the new model with the active one on the held-out set, and the decision to activate it.

A run is a ``training_runs`` row: the command line appends each step to ``progress`` and the console
streams it from there, so a run started on one back office (or in a terminal) is watched from any.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.enums import TrainingRunStatus
from comanda.errors import InvalidInput, NotFound
from comanda.services import audit
from comanda.services.audit import Actor

STALE_AFTER = timedelta(hours=1)  # a run "running" this long died with its process: another may start
MAX_PROGRESS_CHARS = 20000
FIGURES = ("intent_accuracy", "order_line_exact_match")


class TrainingBusy(InvalidInput):
    code = "training_busy"


def start(session: Session, actor: Actor, forced: bool = False) -> m.TrainingRun:
    """A new run; refused while another one is running (unless it went stale)."""
    running = session.execute(
        select(m.TrainingRun).where(m.TrainingRun.status == TrainingRunStatus.RUNNING.value).with_for_update()
    ).scalars()
    for other in running:
        if clock.now() - other.started_at < STALE_AFTER:
            raise TrainingBusy(f"training run {other.id} is still running (started by {other.started_by})")
        finish(session, other, TrainingRunStatus.FAILED, error="its process stopped without finishing")
    run = m.TrainingRun(started_by=actor.name, forced=forced, status=TrainingRunStatus.RUNNING.value, progress="")
    session.add(run)
    session.flush()
    audit.record(session, actor, "training.started", "training_run", run.id, forced=forced or None)
    return run


def get_run(session: Session, run_id: int) -> m.TrainingRun:
    run = session.get(m.TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}", run_id=run_id)
    return run


def latest_runs(session: Session, limit: int = 5) -> List[m.TrainingRun]:
    return list(session.execute(select(m.TrainingRun).order_by(m.TrainingRun.id.desc()).limit(limit)).scalars())


def note(session: Session, run_id: int, line: str) -> None:
    """One more line of progress (the oldest lines go when it grows past MAX_PROGRESS_CHARS)."""
    run = get_run(session, run_id)
    stamp = clock.now().strftime("%H:%M:%S")
    text = f"{run.progress}{stamp} {line.rstrip()}\n"
    run.progress = text[-MAX_PROGRESS_CHARS:]


def finish(
    session: Session,
    run: m.TrainingRun,
    status: TrainingRunStatus,
    error: Optional[str] = None,
    **fields: Any,
) -> m.TrainingRun:
    run.status, run.error, run.finished_at = status.value, error[:1000] if error else None, clock.now()
    for name, value in fields.items():
        setattr(run, name, value)
    audit.record(session, audit.Actor(run.started_by), f"training.{status.value}", "training_run", run.id, error=error)
    return run


def last_activated(session: Session) -> m.TrainingRun:
    """The latest run whose model went live and has a model before it to go back to."""
    run = session.execute(
        select(m.TrainingRun)
        .where(m.TrainingRun.status == TrainingRunStatus.ACTIVATED.value, m.TrainingRun.previous_model_path.isnot(None))
        .order_by(m.TrainingRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if run is None:
        raise NotFound("no activated training run to roll back")
    return run


def compare(new: Dict[str, Dict[str, Any]], active: Optional[Dict[str, Dict[str, Any]]]) -> Dict[str, Any]:
    """The new model's figures (bench/nlu_eval.py's JSON, per language) against the active model's: each
    figure side by side, per-intent precision and recall that moved, the messages fixed and broken, and
    whether the new model is not worse on any figure of any language."""
    languages: Dict[str, Any] = {}
    not_worse = True
    for language, figures in sorted(new.items()):
        before = (active or {}).get(language) or {}
        row: Dict[str, Any] = {}
        for name in FIGURES:
            now, then = figures.get(name), before.get(name)
            row[name] = {"active": then, "new": now}
            if then is not None and (now is None or now < then):
                not_worse = False
        intents = {}
        for intent, scores in (figures.get("per_intent") or {}).items():
            old = (before.get("per_intent") or {}).get(intent) or {}
            moved = {
                k: {"active": old.get(k), "new": scores.get(k)}
                for k in ("precision", "recall")
                if old.get(k) != scores.get(k)
            }
            if moved:
                intents[intent] = moved
        row["per_intent"] = intents
        row["per_intent_new"] = figures.get("per_intent") or {}
        row["fixed"], row["broken"] = _changes(before.get("intent_errors"), figures.get("intent_errors"))
        lines_fixed, lines_broken = _changes(before.get("order_line_errors"), figures.get("order_line_errors"))
        row["fixed"] += lines_fixed
        row["broken"] += lines_broken
        languages[language] = row
    return {"languages": languages, "not_worse": not_worse, "had_active": active is not None}


def _changes(before: Optional[List[Dict[str, Any]]], after: Optional[List[Dict[str, Any]]]) -> tuple:
    """(messages wrong before and right now, messages right before and wrong now)."""
    old = {e["text"]: e for e in before or []}
    new = {e["text"]: e for e in after or []}
    if before is None:
        return [], []
    fixed = [{"text": t, "was": _said(e)} for t, e in old.items() if t not in new]
    broken = [{"text": t, "now": _said(e)} for t, e in new.items() if t not in old]
    return fixed, broken


def _said(error: Dict[str, Any]) -> str:
    return f"{error.get('predicted')} (expected {error.get('expected')})"
