"""`/console/inbox`: the chats handed to a person. A live list of tickets (waiting, open, resolved) of the
member's stores, newest first, highlighted past the store's threshold, with a chime and a browser
notification when one arrives; and each conversation: its whole history from Rasa's tracker, live, the
customer's cart and orders, private notes, claim / assign / resolve, and replies (free text inside
WhatsApp's 24-hour window, an approved template outside it, canned replies).

Actions are plain forms (they work without JavaScript) answered with a redirect back to the conversation;
the rules and the Rasa side live in comanda.services.handoff(_messages) and backoffice.handoffs, shared
with the staff API.
"""

from __future__ import annotations

import secrets
from typing import Any, Dict, List, Optional, Tuple

from jinja2 import pass_context
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select

from backoffice import handoffs
from backoffice.console import live
from backoffice.console.pages import bp, page, store_names
from backoffice.console.web import Visit, error_page, field, load_member, render, staff_only, templates
from backoffice.handoff_api import media_response
from backoffice.handoff_view import conversation, ticket_summary
from backoffice.http_errors import status_of
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session, transaction
from comanda.enums import HandoffStatus
from comanda.errors import ComandaError, InvalidInput, NotFound
from comanda.i18n import catalogue, t
from comanda.services import handoff, handoff_messages, staff
from integrations.rasa_api import RasaApi

MEDIA_URL = "/console/inbox/media/{}"
TABS = ("waiting", "open", "mine", "resolved")


@pass_context
def reason_label(context: Any, reason: str) -> str:
    """A ticket's reason in the member's language; a reason added later without a label shows as it is."""
    key = f"console.inbox.reason.{reason}"
    return t(key, context["lang"]) if key in catalogue() else reason


templates.globals.update(reason_label=reason_label)


def _filters(request: Request, visit: Visit) -> Tuple[Optional[str], str]:
    """The ?store= (one of the member's, NotFound otherwise) and ?status= tab."""
    store = field(request, "store") or None
    staff.store_filter(visit.member, store)
    tab = field(request, "status") or "waiting"
    return store, tab if tab in TABS else "waiting"


def list_html(visit: Visit, store: Optional[str], tab: str) -> str:
    """The ticket list as the member sees it (the stream sends the same)."""
    status = HandoffStatus.OPEN.value if tab == "mine" else tab
    with new_session() as session:
        tickets = [
            ticket_summary(session, ticket)
            for ticket in handoff.list_tickets(session, visit.member, store, status)
            if tab != "mine" or ticket.assigned_to == visit.member.id
        ]
        stores = {s.id: s.handoff_warn_minutes for s in session.execute(select(m.Store)).scalars()}
    return render("_inbox_list.html", lang=visit.lang, tickets=tickets, warn=stores, me=visit.member, tab=tab)


@bp.get("/inbox")
@staff_only()
async def inbox(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        store, tab = _filters(request, visit)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    listing = await in_thread(list_html, visit, store, tab)
    stores = await in_thread(store_names, visit.member)
    return page(request, "inbox.html", listing=listing, stores=stores, store=store or "", tab=tab, tabs=TABS)


@bp.get("/inbox/stream")
@staff_only()
async def inbox_stream(request: Request) -> Optional[HTTPResponse]:
    visit: Visit = request.ctx.visit
    try:
        store, tab = _filters(request, visit)
    except NotFound:
        return response.text("not found", status=404)
    return await live.stream(request, "inbox", lambda: list_html(visit, store, tab), _still(visit), topic="inbox")


def _still(visit: Visit) -> Any:
    async def still_allowed() -> bool:
        return await in_thread(load_member, visit.token) is not None

    return still_allowed


# --- one conversation ----------------------------------------------------------------------------


def _colleagues(session: Any, visit: Visit, store_id: str) -> List[Tuple[int, str]]:
    """Active colleagues who work at the store (the assign menu)."""
    users = session.execute(
        select(m.StaffUser).where(m.StaffUser.business_id == visit.member.business_id, m.StaffUser.active.is_(True))
    ).scalars()
    return [(u.id, u.name) for u in users if staff.member(session, u).sees(store_id) and u.id != visit.member.id]


def thread_html(visit: Visit, ticket_id: int) -> str:
    """The live part of a conversation: the ticket's state, the messages and the notes."""
    with new_session() as session:
        ticket = handoff.visible_ticket(session, visit.member, ticket_id)
        found = conversation(session, RasaApi.from_settings(), ticket, MEDIA_URL)
    return render("_thread.html", lang=visit.lang, c=found, me=visit.member)


def conversation_page(request: Request, ticket_id: int, flash: Optional[str] = None, status: int = 200) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    with new_session() as session:
        ticket = handoff.visible_ticket(session, visit.member, ticket_id)
        found = conversation(session, RasaApi.from_settings(), ticket, MEDIA_URL)
        colleagues = _colleagues(session, visit, ticket.store_id)
    thread = render("_thread.html", lang=visit.lang, c=found, me=visit.member)
    return page(
        request,
        "conversation.html",
        status,
        c=found,
        thread=thread,
        colleagues=colleagues,
        flash=flash or _done_flash(request, visit),
        client_key=secrets.token_urlsafe(12),
    )


def _done_flash(request: Request, visit: Visit) -> Optional[str]:
    """What the last action did (after its redirect), and whether Rasa could not be told."""
    done = request.args.get("done")
    said = [t(f"console.inbox.done.{done}", visit.lang)] if done in DONE else []
    if request.args.get("rasa") == "away":
        said.append(t("console.inbox.rasa_away", visit.lang))
    return " ".join(said) or None


DONE = ("claimed", "assigned", "sent", "noted", "resolved")


@bp.get("/inbox/<ticket_id:int>")
@staff_only()
async def show(request: Request, ticket_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        return await in_thread(conversation_page, request, ticket_id)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))


@bp.get("/inbox/<ticket_id:int>/stream")
@staff_only()
async def thread_stream(request: Request, ticket_id: int) -> Optional[HTTPResponse]:
    visit: Visit = request.ctx.visit
    try:
        await in_thread(thread_html, visit, ticket_id)
    except NotFound:
        return response.text("not found", status=404)
    return await live.stream(
        request, "conversation", lambda: thread_html(visit, ticket_id), _still(visit), topic="inbox"
    )


@bp.get("/inbox/media/<inbound_id:int>")
@staff_only()
async def customer_file(request: Request, inbound_id: int) -> HTTPResponse:
    return await media_response(request.ctx.visit.member, inbound_id)


async def act(request: Request, ticket_id: int, work: Any, done: str) -> HTTPResponse:
    """Run a staff action; back to the conversation (303), or the page with why not (409, 400…)."""
    visit: Visit = request.ctx.visit
    try:
        result = await in_thread(work)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    except ComandaError as exc:
        message = t(f"console.inbox.error.{exc.code}", visit.lang) if exc.code in REFUSALS else exc.message
        flash = t("console.error.refused", visit.lang, reason=message)
        return await in_thread(conversation_page, request, ticket_id, flash, status_of(exc))
    away = "&rasa=away" if getattr(result, "warning", None) else ""
    return response.redirect(f"/console/inbox/{ticket_id}?done={done}{away}", status=303)


REFUSALS = ("handoff_taken", "handoff_resolved", "window_closed")


@bp.post("/inbox/<ticket_id:int>/claim")
@staff_only()
async def claim(request: Request, ticket_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    return await act(
        request,
        ticket_id,
        lambda: handoffs.claim_chat(visit.member, visit.actor, ticket_id, RasaApi.from_settings()),
        "claimed",
    )


@bp.post("/inbox/<ticket_id:int>/assign")
@staff_only()
async def assign(request: Request, ticket_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    chosen = field(request, "staff_id")

    def work() -> handoffs.Done:
        if not chosen.isdigit():
            raise InvalidInput(t("console.inbox.pick_colleague", visit.lang))
        return handoffs.assign_chat(visit.member, visit.actor, ticket_id, int(chosen), RasaApi.from_settings())

    return await act(request, ticket_id, work, "assigned")


@bp.post("/inbox/<ticket_id:int>/resolve")
@staff_only()
async def resolve(request: Request, ticket_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    return await act(
        request,
        ticket_id,
        lambda: handoffs.resolve_chat(visit.member, visit.actor, ticket_id, RasaApi.from_settings()),
        "resolved",
    )


@bp.post("/inbox/<ticket_id:int>/reply")
@staff_only()
async def reply(request: Request, ticket_id: int) -> HTTPResponse:
    """Free text (``text``), or a template (``template`` with ``param`` fields in order)."""
    visit: Visit = request.ctx.visit
    template = field(request, "template") or None
    params = [str(p) for p in (request.form.getlist("param") or [])] if template else []
    text = None if template else field(request, "text")

    def work() -> Dict[str, Any]:
        return handoffs.reply_chat(
            visit.member,
            visit.actor,
            ticket_id,
            RasaApi.from_settings(),
            text,
            template,
            params,
            field(request, "client_key") or None,
        )

    return await act(request, ticket_id, work, "sent")


@bp.post("/inbox/<ticket_id:int>/note")
@staff_only()
async def note(request: Request, ticket_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit

    def work() -> None:
        with transaction() as session:
            handoff_messages.add_note(session, visit.member, visit.actor, ticket_id, field(request, "text"))

    return await act(request, ticket_id, work, "noted")
