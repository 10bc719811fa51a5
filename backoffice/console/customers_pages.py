"""`/console/customers`: search customers by name or phone, and a profile with what they bought, consent, masked
fiscal data, staff tags and notes, open handoffs and returns (owners and managers; their stores' customers)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from backoffice.console.pages import bp, page
from backoffice.console.purchasing_pages import BUYERS
from backoffice.console.web import Visit, error_page, field, staff_only
from backoffice.http_errors import status_of
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session, transaction
from comanda.enums import ConsentSource
from comanda.errors import ComandaError, NotFound
from comanda.i18n import t
from comanda.services import crm, staff


def search_page(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    text = field(request, "q")
    with new_session() as session:
        found = crm.search(session, visit.member, text)
    return page(request, "customers.html", customers=found, q=text)


@bp.get("/customers")
@staff_only(*BUYERS)
async def customers_search(request: Request) -> HTTPResponse:
    return await in_thread(search_page, request)


def profile_page(
    request: Request, customer_id: int, flash: Optional[str] = None, warn: bool = False, status: int = 200
) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    try:
        with new_session() as session:
            view = crm.profile(session, visit.member, customer_id)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    return page(request, "customer.html", status, flash=flash, warn=warn, **view)


@bp.get("/customers/<customer_id:int>")
@staff_only(*BUYERS)
async def customer_profile(request: Request, customer_id: int) -> HTTPResponse:
    return await in_thread(profile_page, request, customer_id)


async def customer_change(
    request: Request, customer_id: int, work: Callable[[Session, m.Customer], Any]
) -> HTTPResponse:
    visit: Visit = request.ctx.visit

    def run() -> None:
        with transaction() as session:
            work(session, staff.visible_customer(session, visit.member, customer_id))

    try:
        await in_thread(run)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    except ComandaError as exc:
        message = t("console.error.refused", visit.lang, reason=exc.message)
        return await in_thread(profile_page, request, customer_id, message, True, status_of(exc))
    return await in_thread(profile_page, request, customer_id, t("console.customers.saved_flash", visit.lang))


@bp.post("/customers/<customer_id:int>/tags")
@staff_only(*BUYERS)
async def customer_tag(request: Request, customer_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    return await customer_change(
        request, customer_id, lambda s, c: crm.add_tag(s, c, field(request, "tag"), visit.actor)
    )


@bp.post("/customers/<customer_id:int>/tags/<tag_id:int>/remove")
@staff_only(*BUYERS)
async def customer_untag(request: Request, customer_id: int, tag_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    return await customer_change(request, customer_id, lambda s, c: crm.remove_tag(s, c, tag_id, visit.actor))


@bp.post("/customers/<customer_id:int>/notes")
@staff_only(*BUYERS)
async def customer_note(request: Request, customer_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    return await customer_change(
        request, customer_id, lambda s, c: crm.add_note(s, c, field(request, "body"), visit.actor)
    )


@bp.post("/customers/<customer_id:int>/consent")
@staff_only(*BUYERS)
async def customer_consent(request: Request, customer_id: int) -> HTTPResponse:
    """Staff record a marketing yes or no the customer gave them (in person, on the phone): source console."""
    visit: Visit = request.ctx.visit
    granted = field(request, "granted") == "1"
    return await customer_change(
        request, customer_id, lambda s, c: crm.set_marketing_consent(s, c, granted, ConsentSource.CONSOLE, visit.actor)
    )
