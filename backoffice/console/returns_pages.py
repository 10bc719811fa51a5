"""`/console/returns`: returns waiting for approval, approved and waiting for the goods, received, and finished;
approve, reject with a reason, receive with the condition, record cash or SPEI given back by hand, and refund
part of an order without goods coming back (a food complaint). Plain forms with the session's CSRF token (they
work without JavaScript); every query is limited to the member's stores, another store's return is 404."""

from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, List, Optional

from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from backoffice.console.pages import bp, page
from backoffice.console.web import Visit, error_page, field, staff_only
from backoffice.http_errors import status_of
from comanda import clock
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session
from comanda.enums import ReturnOutcome, ReturnStatus
from comanda.errors import ComandaError, NotFound
from comanda.i18n import t
from comanda.services import returns, staff
from comanda.services.payments.common import MANUAL_PROVIDERS
from integrations.cfdi import issuer
from integrations.payments import payment_provider

# The page's sections, in the order work flows through them.
SECTIONS = (
    ("waiting", (ReturnStatus.REQUESTED,)),
    ("approved", (ReturnStatus.APPROVED,)),
    ("received", (ReturnStatus.RECEIVED,)),
    ("done", (ReturnStatus.REFUNDED, ReturnStatus.CREDITED, ReturnStatus.EXCHANGED, ReturnStatus.REJECTED)),
)


def card(session: Session, returned: m.Return) -> Dict[str, Any]:
    data = returns.as_json(session, returned)
    customer = session.get(m.Customer, returned.customer_id)
    order = session.get(m.Order, returned.order_id)
    minutes = int((clock.now() - returned.created_at).total_seconds() // 60)
    return {
        **data,
        "customer": (order.customer_name or customer.name or customer.phone or "").split(" ")[0],
        "age": f"{minutes // 1440} d"
        if minutes >= 1440
        else f"{minutes // 60} h"
        if minutes >= 60
        else f"{minutes} min",
        "lines_text": ", ".join(f"{item.quantity} × {item.order_line.description}" for item in returned.lines),
        "manual": _manual(session, returned),
    }


def _manual(session: Session, returned: m.Return) -> bool:
    """A cash or SPEI sale whose refund a person gives by hand, now due."""
    payment = returns.money_payment(session, returned.order_id)
    return (
        returned.outcome == ReturnOutcome.REFUND
        and returned.status == ReturnStatus.RECEIVED
        and payment is not None
        and payment.provider in MANUAL_PROVIDERS
    )


def listing(visit: Visit, store: Optional[str]) -> Dict[str, Any]:
    with new_session() as session:
        stores = staff.store_filter(visit.member, store or None)
        found = returns.list_returns(session, stores)
        cards = [card(session, r) for r in found]
    sections: List[Dict[str, Any]] = [
        {"key": key, "cards": [c for c in cards if c["status"] in statuses]} for key, statuses in SECTIONS
    ]
    return {
        "sections": sections,
        "stores": sorted(visit.member.store_ids),
        "store": store or "",
        "refund_key": secrets.token_urlsafe(12),
    }


def returns_page(request: Request, flash: Optional[str] = None, status: int = 200, warn: bool = False) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    return page(request, "returns.html", status, flash=flash, warn=warn, **listing(visit, request.args.get("store")))


async def act(request: Request, work: Callable[[Visit], str]) -> HTTPResponse:
    """Run a step; the page again, saying what happened (or why not)."""
    visit: Visit = request.ctx.visit
    try:
        done = await in_thread(work, visit)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    except ComandaError as exc:
        return await in_thread(
            returns_page, request, t("console.error.refused", visit.lang, reason=exc.message), status_of(exc), True
        )
    return await in_thread(returns_page, request, done)


def step(return_id: int, name: str, *args: Any) -> Callable[[Visit], str]:
    def work(visit: Visit) -> str:
        settled = returns.take_step(
            return_id, name, visit.actor, payment_provider, issuer(), *args, store_ids=sorted(visit.member.store_ids)
        )
        done = t(f"console.returns.done.{settled.status}", visit.lang, id=return_id)
        if settled.needs_staff:
            done += " " + t(f"console.returns.needs.{settled.needs_staff}", visit.lang)
        return done

    return work


@bp.get("/returns")
@staff_only()
async def returns_list(request: Request) -> HTTPResponse:
    return await in_thread(returns_page, request)


@bp.post("/returns/<return_id:int>/approve")
@staff_only()
async def returns_approve(request: Request, return_id: int) -> HTTPResponse:
    return await act(request, step(return_id, "approve"))


@bp.post("/returns/<return_id:int>/reject")
@staff_only()
async def returns_reject(request: Request, return_id: int) -> HTTPResponse:
    return await act(request, step(return_id, "reject", field(request, "reason")))


@bp.post("/returns/<return_id:int>/receive")
@staff_only()
async def returns_receive(request: Request, return_id: int) -> HTTPResponse:
    return await act(request, step(return_id, "receive", field(request, "condition")))


@bp.post("/returns/<return_id:int>/refund")
@staff_only()
async def returns_manual_refund(request: Request, return_id: int) -> HTTPResponse:
    reference = field(request, "reference")

    def work(visit: Visit) -> str:
        with new_session() as session:
            returns.get_return(session, return_id, sorted(visit.member.store_ids))
        settled = returns.record_manual_refund(return_id, reference, payment_provider, issuer(), visit.actor.name)
        return t(f"console.returns.done.{settled.status}", visit.lang, id=return_id)

    return await act(request, work)


@bp.post("/returns/order-refund")
@staff_only()
async def returns_order_refund(request: Request) -> HTTPResponse:
    order_id, amount, reason, key = (field(request, name) for name in ("order", "amount", "reason", "key"))

    def work(visit: Visit) -> str:
        if not order_id.isdigit():
            raise NotFound(f"no order {order_id!r}")
        refund = returns.refund_order(
            int(order_id),
            amount,
            reason,
            visit.actor,
            payment_provider,
            key or secrets.token_urlsafe(12),
            store_ids=sorted(visit.member.store_ids),
        )
        return t(
            "console.returns.order_refunded",
            visit.lang,
            order=order_id,
            amount=str(refund.amount),
            status=refund.status,
        )

    return await act(request, work)
