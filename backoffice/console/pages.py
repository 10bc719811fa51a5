"""The console's pages: login and logout, the queue display (live columns, bump, recall, sound), and each
person's preferences (language, sound). Every query goes through the staff member's stores."""

from __future__ import annotations

import secrets
from math import ceil
from typing import Any, List, Optional, Tuple

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select

from backoffice.console import live
from backoffice.console.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    STATIC,
    Visit,
    clear_cookie,
    client_ip,
    error_page,
    field,
    html,
    is_htmx,
    load_member,
    login_csrf_matches,
    render,
    request_language,
    safe_next,
    set_cookie,
    staff_context,
    staff_only,
)
from backoffice.http_errors import status_of
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session, transaction
from comanda.enums import LoginOutcome, OrderStatus
from comanda.errors import ComandaError, NotFound
from comanda.i18n import t
from comanda.services import order_queue, staff
from comanda.services.orders import StatusConflict
from comanda.services.staff import StaffMember
from comanda.settings import setting_int

bp = Blueprint("console", url_prefix="/console")
bp.static("/static", str(STATIC), name="static")


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTTPResponse:
    return html(render(template, **staff_context(request.ctx.visit, request.path), **context), status)


# --- login and logout ----------------------------------------------------------------------------


def login_page(
    request: Request, lang: str, status: int = 200, message: Optional[str] = None, retry_after: int = 0
) -> HTTPResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    body = render(
        "login.html",
        lang=lang,
        csrf=token,
        next=safe_next(field(request, "next")),
        email=field(request, "email"),
        message=message,
        notice=t("console.login.expired", lang) if request.args.get("expired") else None,
    )
    resp = html(body, status, headers={"Retry-After": str(retry_after)} if retry_after else None)
    set_cookie(request, resp, LOGIN_CSRF_COOKIE, token, 2 * 3600)
    return resp


@bp.get("/login")
async def login_form(request: Request) -> HTTPResponse:
    if await in_thread(load_member, request.cookies.get(SESSION_COOKIE)):
        return response.redirect(safe_next(request.args.get("next")), status=303)
    return login_page(request, request_language(request))


def attempt(email: str, password: str, ip: str, user_agent: str) -> staff.LoginResult:
    with transaction() as session:  # the attempt is recorded whatever its outcome
        return staff.attempt_login(session, email, password, ip, user_agent)


@bp.post("/login")
async def login(request: Request) -> HTTPResponse:
    lang = request_language(request)
    if not login_csrf_matches(request):
        return login_page(request, lang, 403, t("console.error.csrf", lang))
    result = await in_thread(
        attempt,
        field(request, "email"),
        field(request, "password"),
        client_ip(request),
        request.headers.get("User-Agent", ""),
    )
    if result.outcome == LoginOutcome.SUCCEEDED and result.token:
        resp = response.redirect(safe_next(field(request, "next")), status=303)
        set_cookie(request, resp, SESSION_COOKIE, result.token, setting_int("COMANDA_CONSOLE_SESSION_HOURS") * 3600)
        clear_cookie(request, resp, LOGIN_CSRF_COOKIE)
        return resp
    if result.outcome == LoginOutcome.THROTTLED:
        minutes = max(1, ceil(result.retry_after_seconds / 60))
        message = t("console.login.throttled", lang, minutes=minutes)
        return login_page(request, lang, 429, message, retry_after=result.retry_after_seconds)
    if result.outcome == LoginOutcome.DISABLED:
        return login_page(request, lang, 403, t("console.login.disabled", lang))
    return login_page(request, lang, 401, t("console.login.wrong", lang))


def logout_session(token: str, visit: Visit) -> None:
    with transaction() as session:
        staff.end_session(session, token, visit.actor)


@bp.post("/logout")
@staff_only()
async def logout(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    await in_thread(logout_session, visit.token, visit)
    resp = response.redirect(f"/console/login?lang={visit.lang}", status=303)
    clear_cookie(request, resp, SESSION_COOKIE)
    return resp


@bp.get("/session")
@staff_only()
async def session_alive(request: Request) -> HTTPResponse:
    """204 while the session lasts (the live pages ask after losing their stream)."""
    return response.empty()


@bp.get("")
@staff_only()
async def home(request: Request) -> HTTPResponse:
    return response.redirect("/console/queue", status=303)


# --- the queue display ---------------------------------------------------------------------------


def store_names(member: StaffMember) -> List[Tuple[str, str]]:
    with new_session() as session:
        return [
            (s.id, s.name)
            for s in session.execute(
                select(m.Store).where(m.Store.id.in_(sorted(member.store_ids))).order_by(m.Store.id)
            ).scalars()
        ]


def columns_html(visit: Visit, store: Optional[str], flash: Optional[str] = None, status: str = "") -> str:
    """The three columns as the member sees them, in their language (the stream sends the same)."""
    stores = staff.store_filter(visit.member, store)
    with new_session() as session:
        columns = order_queue.queue_cards(session, visit.member, stores, visit.lang)
        names = dict(session.execute(select(m.Store.id, m.Store.name).where(m.Store.id.in_(stores))).all())
    return render(
        "_queue_columns.html",
        lang=visit.lang,
        columns=columns,
        stages=[s.value for s in order_queue.STAGES],
        store=store or "",
        store_names=names,
        several_stores=len(stores) > 1,
        csrf=visit.csrf,
        flash=flash,
        flash_status=status,
    )


def chosen_store(request: Request, visit: Visit) -> Optional[str]:
    """The ?store= (or form) filter: one of the member's stores, or None for all of them (NotFound otherwise)."""
    store = field(request, "store") or None
    staff.store_filter(visit.member, store)
    return store


@bp.get("/queue")
@staff_only()
async def queue(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        store = chosen_store(request, visit)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    columns = await in_thread(columns_html, visit, store)
    stores = await in_thread(store_names, visit.member)
    return page(request, "queue.html", columns=columns, stores=stores, store=store or "")


@bp.get("/queue/columns")
@staff_only()
async def queue_columns(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        store = chosen_store(request, visit)
    except NotFound:
        return response.text("not found", status=404)
    return html(await in_thread(columns_html, visit, store))


@bp.get("/queue/stream")
@staff_only()
async def queue_stream(request: Request) -> Optional[HTTPResponse]:
    visit: Visit = request.ctx.visit
    try:
        store = chosen_store(request, visit)
    except NotFound:
        return response.text("not found", status=404)

    async def still_allowed() -> bool:
        return await in_thread(load_member, visit.token) is not None

    return await live.stream(request, "queue", lambda: columns_html(visit, store), still_allowed)


def _queue_action(request: Request, visit: Visit, work: Any) -> Tuple[str, str]:
    """Run a queue move; the flash line it leaves (moved, or why not) and its status."""
    lang = visit.lang
    try:
        with transaction() as session:
            order, done = work(session)
            state = t(f"console.queue.state.{order.status}", lang)
            column = t(f"console.queue.column.{order.status}", lang) if order.status in order_queue.STAGES else state
            return t(done, lang, ticket=order.ticket_code, status=state, column=column), "ok"
    except StatusConflict:
        return t("console.queue.conflict", lang), "warn"
    except NotFound as exc:
        if exc.params.get("order_id"):
            raise
        return t("console.queue.nothing_to_recall", lang), "warn"
    except ComandaError as exc:
        return t("console.error.refused", lang, reason=exc.message), "warn"


async def queue_answer(request: Request, visit: Visit, store: Optional[str], work: Any) -> HTTPResponse:
    try:
        flash, status = await in_thread(_queue_action, request, visit, work)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    if not is_htmx(request):  # a plain form (no JavaScript): back to the page
        return response.redirect(f"/console/queue?store={store or ''}", status=303)
    return html(await in_thread(columns_html, visit, store, flash, status))


@bp.post("/queue/orders/<order_id:int>/bump")
@staff_only()
async def bump(request: Request, order_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        store = chosen_store(request, visit)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    expected = OrderStatus.parse(field(request, "expected"))

    def work(session: Any) -> Tuple[m.Order, str]:
        order = order_queue.bump(session, visit.member, visit.actor, order_id, expected.value if expected else None)
        return order, "console.queue.moved"

    return await queue_answer(request, visit, store, work)


@bp.post("/queue/recall")
@staff_only()
async def recall(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        store = chosen_store(request, visit)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))

    def work(session: Any) -> Tuple[m.Order, str]:
        stores = staff.store_filter(visit.member, store)
        return order_queue.recall(session, visit.member, visit.actor, stores), "console.queue.recalled"

    return await queue_answer(request, visit, store, work)


# --- preferences ---------------------------------------------------------------------------------


def save_preferences(visit: Visit, language: Optional[str], sound_on: Optional[bool]) -> StaffMember:
    with transaction() as session:
        staff.set_preferences(session, visit.member, visit.actor, language=language, sound_on=sound_on)
        return staff.member(session, session.get(m.StaffUser, visit.member.id))


@bp.post("/preferences")
@staff_only()
async def preferences(request: Request) -> HTTPResponse:
    """The console's language, and whether new orders chime (each person's own choice)."""
    visit: Visit = request.ctx.visit
    language = field(request, "language") or None
    sound = field(request, "sound") or None
    try:
        member = await in_thread(save_preferences, visit, language, {"on": True, "off": False}.get(sound or ""))
    except ComandaError as exc:
        return error_page(visit, visit.lang, status_of(exc), t("console.error.refused", visit.lang, reason=exc.message))
    if is_htmx(request) and sound is not None:
        return html(render("_sound.html", lang=member.language, me=member, csrf=visit.csrf))
    return response.redirect(safe_next(field(request, "next")), status=303)
