"""`/board/<store>`: the customers' screen by the counter. No login, read-only: ticket numbers being prepared
and ready, in large type, live. It shows no names, nothing that needs a login, and takes no input but the
store and the language (``?lang=en``; default: the business's)."""

from __future__ import annotations

from typing import Optional

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backoffice.console import live
from backoffice.console.web import html, render
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session
from comanda.errors import NotFound
from comanda.i18n import LANGUAGES
from comanda.services import order_queue

bp = Blueprint("board", url_prefix="/board")


def board_language(request: Request, store_id: str) -> str:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return str(asked)
    with new_session() as session:
        store = session.get(m.Store, store_id)
        if store is None:
            raise NotFound(f"no store {store_id!r}")
        return store.business.default_language


def tickets_html(store_id: str, lang: str) -> str:
    with new_session() as session:
        shown = order_queue.board(session, store_id)
    return render("_board_tickets.html", lang=lang, board=shown)


def board_page(store_id: str, lang: str) -> str:
    with new_session() as session:
        shown = order_queue.board(session, store_id)
    return render("board.html", lang=lang, board=shown, store_id=store_id, tickets=tickets_html(store_id, lang))


@bp.get("/<store_id:str>")
async def board(request: Request, store_id: str) -> HTTPResponse:
    try:
        lang = await in_thread(board_language, request, store_id)
        return html(await in_thread(board_page, store_id, lang))
    except NotFound:
        return response.text("no such store", status=404)


@bp.get("/<store_id:str>/stream")
async def board_stream(request: Request, store_id: str) -> Optional[HTTPResponse]:
    try:
        lang = await in_thread(board_language, request, store_id)
        await in_thread(tickets_html, store_id, lang)
    except NotFound:
        return response.text("no such store", status=404)
    return await live.stream(request, "board", lambda: tickets_html(store_id, lang))
