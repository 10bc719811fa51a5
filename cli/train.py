"""`comanda train`: train a new model, evaluate it and the active one on the held-out set, and activate it on
every running Rasa server only when it is not worse (`--force` to override); `--rollback` goes back to the
model before. The console's "Train" button runs this same command (`--run ID`) and streams its progress.

Models live in COMANDA_MODELS_DIR: ``comanda.tar.gz`` is the active one (what a Rasa server started by
`comanda run` loads, and what `make train` keeps up to date), ``history/`` every model trained here and a
copy of each model that was replaced, so a rollback needs nothing but a file copy and ``PUT /model``.
Each server loads a model file by its path: on several hosts, COMANDA_MODELS_DIR is a shared folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from comanda.errors import ComandaError

ACTIVE = "comanda.tar.gz"
HELD_OUT = Path("tests") / "nlu"  # the project's held-out set (never trained on)
# Rasa's training lines worth showing an owner; the rest (and the whole output) go to the run's log file.
COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # Rasa colours its messages on a terminal
SHOWN = ("Starting to train component", "Finished training component", "Your Rasa model is trained", "Epochs: 100%")


def models_dir() -> Path:
    from comanda.settings import setting

    return Path(setting("COMANDA_MODELS_DIR"))


def servers() -> List[str]:
    from comanda.settings import setting

    return [url.strip().rstrip("/") for url in setting("COMANDA_RASA_SERVERS").split(",") if url.strip()]


class Run:
    """One training run as it goes: each step noted on its row (the console streams it) and printed."""

    def __init__(self, run_id: int, echo: Callable[[str], None]) -> None:
        self.id, self.echo = run_id, echo

    def note(self, line: str) -> None:
        from comanda.db import transaction
        from comanda.services import training

        self.echo(line)
        with transaction() as session:
            training.note(session, self.id, line)

    def finish(self, status: Any, error: Optional[str] = None, **fields: Any) -> None:
        from comanda.db import transaction
        from comanda.services import training

        with transaction() as session:
            training.finish(session, training.get_run(session, self.id), status, error, **fields)


def train(run: Run, forced: bool) -> Dict[str, Any]:
    """The whole run; what it decided (raises ComandaError when a step failed, after noting it)."""
    from comanda.enums import TrainingRunStatus
    from comanda.services import training

    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-run{run.id}"
    history = models_dir() / "history"
    history.mkdir(parents=True, exist_ok=True)
    active = models_dir() / ACTIVE
    try:
        new = train_model(run, history, stamp)
        run.note("evaluating the new model on the held-out set (tests/nlu)")
        new_figures = evaluate(run, new, "new")
        active_figures = None
        if active.exists():
            run.note("evaluating the active model on the same set")
            active_figures = evaluate(run, active, "active")
        comparison = training.compare(new_figures, active_figures)
        for line in summary(comparison):
            run.note(line)
        if not comparison["not_worse"] and not forced:
            run.note("the new model is worse on at least one figure: the active model stays (--force to use it anyway)")
            run.finish(TrainingRunStatus.KEPT_OLD, comparison=comparison, model_path=str(new))
            return {"status": TrainingRunStatus.KEPT_OLD.value, "comparison": comparison, "model": str(new)}
        previous = keep_active(history, f"{stamp}-before")
        report = activate(run, new)
        run.finish(
            TrainingRunStatus.ACTIVATED,
            comparison={**comparison, "servers": report},
            model_path=str(new),
            previous_model_path=str(previous) if previous else None,
        )
        return {
            "status": TrainingRunStatus.ACTIVATED.value,
            "comparison": comparison,
            "model": str(new),
            "servers": report,
        }
    except ComandaError as exc:
        run.note(f"failed: {exc.message}")
        run.finish(TrainingRunStatus.FAILED, exc.message)
        raise
    except BaseException as exc:
        run.finish(TrainingRunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise


def train_model(run: Run, history: Path, stamp: str) -> Path:
    from cli.runner import process_env, venv_bin
    from comanda.settings import home

    run.note("training a new model from data/, domain/ and config.yml (about 3 minutes)")
    log_path = home() / "var" / "training" / f"run-{run.id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        venv_bin("COMANDA_RASA_VENV", "rasa"),
        "train",
        "--force",
        "--domain",
        "domain",
        "--data",
        "data",
        "--config",
        "config.yml",
        "--out",
        str(history),
        "--fixed-model-name",
        stamp,
    ]
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command, cwd=home(), env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        last = ""
        for raw in proc.stdout:
            log.write(raw)
            line = COLOURS.sub("", raw.rstrip("\n").split("\r")[-1]).strip()
            shown = line.split(" - ")[-1][:200]
            if any(marker in line for marker in SHOWN) and shown[:12] != last[:12]:  # one line per progress bar
                run.note("  " + shown)
                last = shown
        code = proc.wait()
    model = history / f"{stamp}.tar.gz"
    if code != 0 or not model.exists():
        raise ComandaError(f"training failed (exit {code}); its output is in {log_path}")
    run.note(f"trained: {model.name}")
    return model


def evaluate(run: Run, model: Path, label: str) -> Dict[str, Any]:
    """bench/nlu_eval.py on the held-out set, against a fresh demo database (the set's order lines are
    labelled against the demo catalog), as `make eval` runs it; its figures per language."""
    from cli.runner import process_env, venv_bin
    from comanda.db import dispose_engines, transaction
    from comanda.migrate import upgrade
    from comanda.services.catalog_loader import load_catalog, read_catalog
    from comanda.settings import home, setting

    folder = home() / "var" / "training" / f"run-{run.id}-{label}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    url = f"sqlite:///{folder / 'eval.db'}"
    upgrade(url)
    with transaction(url) as session:
        load_catalog(session, read_catalog(Path(setting("COMANDA_CATALOG"))))
    dispose_engines()
    report = home() / "reports" / "nlu" / f"train-{run.id}" / label
    figures = folder / "figures.json"
    done = subprocess.run(
        [
            venv_bin("COMANDA_RASA_VENV", "python"),
            str(home() / "bench" / "nlu_eval.py"),
            "--held-out",
            str(home() / HELD_OUT),
            "--model",
            str(model),
            "--out",
            str(report),
            "--json",
            str(figures),
        ],
        cwd=home(),
        env={**process_env(), "COMANDA_DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not figures.exists():
        raise ComandaError(f"evaluating the {label} model failed: {(done.stderr or done.stdout)[-500:]}")
    run.note(f"  {label} model: report at {report.relative_to(home())}/index.html")
    return dict(json.loads(figures.read_text(encoding="utf-8")))


def summary(comparison: Dict[str, Any]) -> List[str]:
    lines = []
    for language, row in comparison["languages"].items():
        figures = ", ".join(
            f"{name.replace('_', ' ')} {pct(v['active'])} → {pct(v['new'])}"
            for name, v in row.items()
            if name in ("intent_accuracy", "order_line_exact_match")
        )
        lines.append(f"{language}: {figures}; {len(row['fixed'])} fixed, {len(row['broken'])} broken")
        lines += [f"    fixed  {c['text']!r} (was {c['was']})" for c in row["fixed"][:10]]
        lines += [f"    broken {c['text']!r} (now {c['now']})" for c in row["broken"][:10]]
    return lines


def pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1%}"


def keep_active(history: Path, name: str) -> Optional[Path]:
    """A copy of the active model in history/, for a rollback."""
    active = models_dir() / ACTIVE
    if not active.exists():
        return None
    kept = history / f"{name}.tar.gz"
    shutil.copyfile(active, kept)
    return kept


def activate(run: Optional[Run], model: Path, echo: Callable[[str], None] = print) -> List[Dict[str, str]]:
    """``model`` becomes the active file (servers that start later load it) and is loaded on every running
    Rasa server through ``PUT /model``; what each server did."""
    from comanda.settings import setting
    from integrations.rasa_api import RasaApi, RasaUnavailable

    say = run.note if run else echo
    apis = [RasaApi(url, setting("COMANDA_RASA_TOKEN")) for url in servers()]
    running = [api for api in apis if api.status() is not None]  # a server that refuses the token stops us here
    draft = models_dir() / f".{ACTIVE}.draft"
    shutil.copyfile(model, draft)
    os.replace(draft, models_dir() / ACTIVE)  # atomic: a server starting now reads the old or the new file whole
    report = []
    failures = []
    for api in apis:
        if api not in running:
            say(f"{api.url}: not running (it loads the new model when it starts)")
            report.append({"server": api.url, "result": "not running"})
            continue
        say(f"{api.url}: loading the new model (messages that arrive meanwhile wait for it)")
        try:
            api.load_model(str(model))
        except RasaUnavailable as exc:
            failures.append(exc.message)
            say(f"{api.url}: failed: {exc.message}")
            report.append({"server": api.url, "result": f"failed: {exc.message}"})
            continue
        status = api.status() or {}
        say(f"{api.url}: now running {Path(str(status.get('model_file', model))).name}")
        report.append({"server": api.url, "result": "loaded"})
    if failures:
        raise ComandaError("the model could not be loaded on every server: " + "; ".join(failures))
    return report


def rollback(echo: Callable[[str], None]) -> Dict[str, Any]:
    from comanda.db import transaction
    from comanda.enums import TrainingRunStatus
    from comanda.services import audit, training

    with transaction() as session:
        run = training.last_activated(session)
        previous, run_id = Path(run.previous_model_path), run.id
    if not previous.exists():
        raise ComandaError(f"the model before run {run_id} is gone ({previous})")
    echo(f"rolling back run {run_id}: {previous.name} becomes the active model again")
    report = activate(None, previous, echo)
    with transaction() as session:
        run = training.get_run(session, run_id)
        run.status = TrainingRunStatus.ROLLED_BACK.value
        audit.record(session, audit.Actor(run.started_by), "training.rolled_back", "training_run", run_id)
    return {"status": TrainingRunStatus.ROLLED_BACK.value, "run": run_id, "model": str(previous), "servers": report}


def cmd_train(args: argparse.Namespace) -> int:
    from cli.staff import _actor
    from comanda.db import transaction
    from comanda.services import training

    echo = (lambda line: print(line, file=sys.stderr)) if args.json else print
    if args.rollback:
        result = rollback(echo)
    else:
        with transaction() as session:
            run = training.get_run(session, args.run) if args.run else training.start(session, _actor(), args.force)
            run_id, forced = run.id, run.forced or args.force
        echo(f"training run {run_id}")
        result = train(Run(run_id, echo), forced)
        echo(f"training run {run_id}: {result['status']}")
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def add_train_parser(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a new model, compare it with the active one, and activate it on every Rasa server when not worse",
    )
    p.add_argument("--force", action="store_true", help="activate the new model even if it is worse")
    p.add_argument("--rollback", action="store_true", help="go back to the model before the last activated run")
    p.add_argument("--json", action="store_true", help="print the result (comparison, servers) as JSON")
    p.add_argument("--run", type=int, help=argparse.SUPPRESS)  # a run the console started (its row exists)
    p.set_defaults(func=cmd_train)
