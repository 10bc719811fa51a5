"""`/console/review` (owners and managers): the messages the bot was unsure about, and the decisions on them
(it was right, another intent or a new FAQ topic, the order's lines and the words the catalog missed,
ignore); a conversation's transcript; training a new model with its progress live (SSE) and its
evaluation reports. Every query goes through the member's stores (comanda.services.review).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote

from sanic import response
from sanic.request import Request, RequestParameters
from sanic.response import HTTPResponse
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from backoffice.console.pages import bp, page
from backoffice.console.web import Visit, error_page, field, load_member, render, staff_only
from backoffice.http_errors import status_of
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.conversations import parse_conversation_id
from comanda.db import new_session, transaction
from comanda.enums import StaffRole, TrainingRunStatus
from comanda.errors import ComandaError, InvalidInput, NotFound
from comanda.i18n import LANGUAGES, t
from comanda.services import review, staff, training
from comanda.services.review_chat import intent_label
from comanda.services.training_data import FaqTopic, known_intents
from comanda.settings import home, setting

REVIEWERS = (StaffRole.OWNER, StaffRole.MANAGER)
MAX_FORM_LINES = 6  # order lines the fix form offers
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def listing(visit: Visit, store: Optional[str]) -> Dict[str, Any]:
    lang = visit.lang
    with new_session() as session:
        items = review.visible_items(session, visit.member, store)
        seen = review.where_seen(session, [i.id for i in items])
        products = [
            (p.sku, p.name_es if lang == "es" else p.name_en)
            for p in session.execute(
                select(m.Product)
                .where(m.Product.business_id == visit.member.business_id, m.Product.active.is_(True))
                .order_by(m.Product.sku)
            ).scalars()
        ]
        stores = [
            (s.id, s.name)
            for s in session.execute(
                select(m.Store).where(m.Store.id.in_(sorted(visit.member.store_ids))).order_by(m.Store.id)
            ).scalars()
        ]
        runs = training.latest_runs(session)
        me = session.get(m.StaffUser, visit.member.id)
        whatsapp = me.whatsapp_phone if me else None
    intents = sorted(known_intents(), key=lambda i: intent_label(i, lang))
    return {
        "items": [review.as_json(i, seen.get(i.id)) | {"ranking": i.ranking or []} for i in items],
        "products": products,
        "intents": [(i, intent_label(i, lang)) for i in intents],
        "label": lambda intent: intent_label(intent, lang),
        "stores": stores,
        "store": store or "",
        "runs": runs,
        "running": next((r for r in runs if r.status == TrainingRunStatus.RUNNING), None),
        "whatsapp": whatsapp,
        "eval_report": (home() / "reports" / "nlu" / "comanda" / "index.html").exists(),
        "form_lines": MAX_FORM_LINES,
        "languages": LANGUAGES,
    }


def review_page(
    request: Request, flash: Optional[str] = None, status: int = 200, problem: bool = False
) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    store = field(request, "store") or None
    return page(request, "review.html", status, flash=flash, problem=problem, **listing(visit, store))


async def shown(
    request: Request, flash: Optional[str] = None, status: int = 200, problem: bool = False
) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        return await in_thread(review_page, request, flash, status, problem)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))


@bp.get("/review")
@staff_only(*REVIEWERS)
async def review_list(request: Request) -> HTTPResponse:
    return await shown(request)


def decision_from(request: Request) -> review.Decision:
    """The posted form as a decision: ``what`` says which of the item's forms was sent."""
    what = field(request, "what")
    if what == "correct":
        return review.Decision()
    if what == "intent":
        intent = field(request, "intent")
        if not intent:
            raise InvalidInput("choose an intent", field="intent")
        return review.Decision(intent=intent)
    if what == "order":
        form: RequestParameters = request.form  # empty, never None, when nothing was posted
        skus, quantities = form.getlist("sku") or [], form.getlist("quantity") or []
        lines = [(s.strip().upper(), q.strip()) for s, q in zip(skus, quantities, strict=False) if s.strip()]
        items = review.parse_items(",".join(f"{s}:{q or 1}" for s, q in lines))
        words, meanings = form.getlist("word") or [], form.getlist("means") or []
        synonyms = [(w, s) for w, s in zip(words, meanings, strict=False) if w.strip() and s.strip()]
        return review.Decision(items=items, synonyms=review.parse_synonyms(f"{w}={s}" for w, s in synonyms))
    if what == "faq":
        examples = {lang: field(request, f"examples_{lang}").splitlines() for lang in LANGUAGES}
        answers = {lang: field(request, f"answer_{lang}") for lang in LANGUAGES}
        return review.Decision(faq=FaqTopic(field(request, "topic").strip().lower(), examples, answers))
    raise InvalidInput("unknown decision")


@bp.post("/review/<item_id:int>/<action:(accept|ignore)>")
@staff_only(*REVIEWERS)
async def decide(request: Request, item_id: int, action: str) -> HTTPResponse:
    visit: Visit = request.ctx.visit

    def work() -> str:
        with transaction() as session:
            item = review.get_item(session, item_id, visit.member)
            if action == "ignore":
                review.ignore(session, visit.actor, item)
                return t("console.review.ignored", visit.lang, text=item.text)
            review.accept(session, visit.actor, item, decision_from(request))
            return t(f"console.review.done.{item.status}", visit.lang, text=item.text)

    try:
        flash = await in_thread(work)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    except ComandaError as exc:
        return await shown(request, t("console.error.refused", visit.lang, reason=exc.message), status_of(exc), True)
    return await shown(request, flash)


@bp.post("/review/whatsapp")
@staff_only(*REVIEWERS)
async def my_whatsapp(request: Request) -> HTTPResponse:
    """The member's own WhatsApp number, from which they review by writing "revisar"."""
    visit: Visit = request.ctx.visit

    def work() -> Optional[str]:
        with transaction() as session:
            user = session.get(m.StaffUser, visit.member.id)
            return staff.set_whatsapp_phone(session, visit.actor, user, field(request, "whatsapp_phone") or None)

    try:
        number = await in_thread(work)
    except ComandaError as exc:
        return await shown(request, t("console.error.refused", visit.lang, reason=exc.message), status_of(exc), True)
    return await shown(
        request, t("console.review.whatsapp_saved" if number else "console.review.whatsapp_cleared", visit.lang)
    )


# --- a conversation, as Rasa's tracker store keeps it ----------------------------------------------


def transcript(session: Session, conversation_id: str, limit: int = 80) -> List[Dict[str, Any]]:
    """The conversation's latest messages from Rasa's ``events`` table (the tracker store shares the database):
    what the customer said (with the intent read) and what the bot answered (none before Rasa made the table)."""
    if not inspect(session.get_bind()).has_table("events"):
        return []
    rows = session.execute(
        text(
            "SELECT type_name, timestamp, intent_name, data FROM events "
            "WHERE sender_id = :sender AND type_name IN ('user', 'bot') ORDER BY id DESC LIMIT :limit"
        ),
        {"sender": conversation_id, "limit": limit},
    ).all()
    said = []
    for kind, when, intent, data in reversed(rows):
        event = json.loads(data) if isinstance(data, str) else (data or {})
        said.append({"who": kind, "at": when, "intent": intent, "text": event.get("text") or ""})
    return said


@bp.get("/review/conversations/<conversation_id:str>")
@staff_only(*REVIEWERS)
async def conversation(request: Request, conversation_id: str) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    conversation_id = unquote(conversation_id)  # Sanic hands the path's part over as it came
    if not visit.member.sees(parse_conversation_id(conversation_id).store_id):
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))

    def read() -> List[Dict[str, Any]]:
        with new_session() as session:
            return transcript(session, conversation_id)

    lines = await in_thread(read)
    return page(request, "review_conversation.html", conversation_id=conversation_id, lines=lines)


# --- training --------------------------------------------------------------------------------------


def start_training(visit: Visit, forced: bool) -> int:
    """A run row, then `comanda train --run ID` in the Rasa environment, detached: it outlives this request
    (and this back office), and writes its progress to the row."""
    with transaction() as session:
        run = training.start(session, visit.actor, forced)
        run_id = run.id
    program = Path(setting("COMANDA_RASA_VENV")) / "bin" / "comanda"
    log = home() / "var" / "training" / f"console-run-{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log, "w") as out:
            subprocess.Popen(
                [str(program), "train", "--run", str(run_id)],
                cwd=home(),
                env=dict(os.environ),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    except OSError as exc:
        with transaction() as session:
            training.finish(
                session, training.get_run(session, run_id), TrainingRunStatus.FAILED, f"could not start: {exc}"
            )
    return run_id


@bp.post("/review/train")
@staff_only(*REVIEWERS)
async def train(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        run_id = await in_thread(start_training, visit, field(request, "force") == "1")
    except ComandaError as exc:
        return await shown(request, t("console.error.refused", visit.lang, reason=exc.message), status_of(exc), True)
    return response.redirect(f"/console/review/train/{run_id}", status=303)


def run_view(run_id: int, lang: str) -> Tuple[str, bool]:
    """The run's progress fragment, and whether it is over."""
    with new_session() as session:
        run = training.get_run(session, run_id)
        reports = [
            label
            for label in ("new", "active")
            if (home() / "reports" / "nlu" / f"train-{run_id}" / label / "index.html").exists()
        ]
        body = render("_training_run.html", lang=lang, run=run, reports=reports, label=lambda i: intent_label(i, lang))
        return body, run.status != TrainingRunStatus.RUNNING


@bp.get("/review/train/<run_id:int>")
@staff_only(*REVIEWERS)
async def training_page(request: Request, run_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        body, over = await in_thread(run_view, run_id, visit.lang)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    return page(request, "review_training.html", run_id=run_id, progress=body, over=over)


@bp.get("/review/train/<run_id:int>/stream")
@staff_only(*REVIEWERS)
async def training_stream(request: Request, run_id: int) -> Optional[HTTPResponse]:
    """The run's progress as server-sent events, from the database (any back office, any terminal's run),
    every second while it runs; the stream ends with the run."""
    from backoffice.console.live import event

    visit: Visit = request.ctx.visit
    try:
        body, over = await in_thread(run_view, run_id, visit.lang)
    except NotFound:
        return response.text("not found", status=404)
    resp = await request.respond(
        content_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await resp.send(event("progress", body))
    sent, beats = body, 0
    while not over:
        await asyncio.sleep(1)
        body, over = await in_thread(run_view, run_id, visit.lang)
        if body != sent:
            sent = body
            await resp.send(event("progress", body))
        beats += 1
        if beats % 15 == 0:
            if await in_thread(load_member, visit.token) is None:
                await resp.send(event("logout", ""))
                break
            await resp.send(": still here\n\n")
    await resp.send(event("done", ""))
    await resp.eof()
    return None


@bp.get("/review/reports/<run_id:int>/<label:(new|active)>/<path:path>")
@staff_only(*REVIEWERS)
async def report(request: Request, run_id: int, label: str, path: str) -> HTTPResponse:
    """The evaluation reports of a run (bench/nlu_eval.py's HTML, Rasa's images), read-only."""
    return await report_file(home() / "reports" / "nlu" / f"train-{run_id}" / label, path)


@bp.get("/review/reports/eval/<path:path>")
@staff_only(*REVIEWERS)
async def eval_report(request: Request, path: str) -> HTTPResponse:
    """The latest `make eval` report (reports/nlu/comanda/)."""
    return await report_file(home() / "reports" / "nlu" / "comanda", path)


async def report_file(folder: Path, path: str) -> HTTPResponse:
    root = folder.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return response.text("not found", status=404)
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    body = await in_thread(target.read_bytes)
    headers = {"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store"}
    return response.raw(body, content_type=kind, headers=headers)
