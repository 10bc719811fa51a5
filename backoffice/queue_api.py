"""The order-queue JSON API for staff (a screen comes with the staff console), behind a bearer token
(COMANDA_STAFF_API_TOKEN) until the console brings logins.

- ``GET /api/orders?store=&status=``: the newest orders first (at most 200);
- ``GET /api/orders/<id>``: one order with its lines, payments and status history;
- ``POST /api/orders/<id>/status {"status": "preparing"}``: received → preparing → ready → delivered
  (delivery) or picked_up (pickup), or cancelled; the customer is told in their language;
- ``POST /api/orders/<id>/spei-received {"amount": "96.00", "bank_reference": "…"}``: staff saw the
  transfer in the bank; the amount is checked like a provider's.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Any, Dict, Optional

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session, transaction
from comanda.errors import ComandaError, InvalidInput
from comanda.money import money
from comanda.services import notifications, orders, payments
from comanda.settings import setting

bp = Blueprint("queue_api", url_prefix="/api/orders")
STAFF_TARGETS = ("preparing", "ready", "delivered", "picked_up", "cancelled")
LIST_LIMIT = 200
HTTP_STATUS = {
    "not_found": 404,
    "invalid_input": 400,
    "status_conflict": 409,
    "cannot_cancel": 409,
    "not_payable": 409,
    "out_of_stock": 409,
    "config": 503,
}
ACTOR = "staff:api"


def authorized(request: Request) -> bool:
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.encode(), setting("COMANDA_STAFF_API_TOKEN").encode()
    )


@bp.middleware("request")
async def staff_only(request: Request) -> Optional[HTTPResponse]:
    if not authorized(request):
        return response.json(
            {"error": "a staff bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="comanda"'},
        )
    return None


def summary(order: m.Order) -> Dict[str, Any]:
    return {
        "id": order.id,
        "store": order.store_id,
        "status": order.status,
        "payment_status": order.payment_status,
        "payment_method": order.payment_method,
        "ticket": order.ticket_code,
        "fulfilment": order.fulfilment,
        "customer_name": order.customer_name,
        "total": str(order.total),
        "currency": order.currency,
        "language": order.language,
        "created_at": order.created_at.isoformat(),
        "lines": [
            {
                "sku": line.sku,
                "description": line.description,
                "quantity": line.quantity,
                "line_total": str(line.line_total),
            }
            for line in order.lines
        ],
    }


def detail(session: Session, order: m.Order) -> Dict[str, Any]:
    found = session.execute(select(m.Payment).where(m.Payment.order_id == order.id).order_by(m.Payment.id)).scalars()
    changes = session.execute(
        select(m.OrderStatusChange).where(m.OrderStatusChange.order_id == order.id).order_by(m.OrderStatusChange.id)
    ).scalars()
    return {
        **summary(order),
        "delivery_address": order.delivery_address,
        "payments": [
            {
                "id": p.id,
                "provider": p.provider,
                "method": p.method,
                "status": p.status,
                "flag_reason": p.flag_reason,
                "amount": str(p.amount),
                "reference": p.reference,
                "expires_at": p.expires_at.isoformat() if p.expires_at else None,
            }
            for p in found
        ],
        "history": [
            {"from": c.from_status, "to": c.to_status, "actor": c.actor, "at": c.created_at.isoformat()}
            for c in changes
        ],
    }


def list_orders(store: Optional[str], status: Optional[str]) -> Dict[str, Any]:
    query = select(m.Order).options(selectinload(m.Order.lines)).order_by(m.Order.id.desc()).limit(LIST_LIMIT)
    if store:
        query = query.where(m.Order.store_id == store)
    if status:
        query = query.where(m.Order.status == status)
    with new_session() as session:
        return {"orders": [summary(order) for order in session.execute(query).scalars()]}


def show_order(order_id: int) -> Dict[str, Any]:
    with new_session() as session:
        return detail(session, orders.get_order(session, order_id))


def move_order(order_id: int, target: str) -> Dict[str, Any]:
    """One staff move and its announcement, in one transaction."""
    if target not in STAFF_TARGETS:
        raise InvalidInput(f"'status' must be one of {', '.join(STAFF_TARGETS)}")
    with transaction() as session:
        order = orders.get_order(session, order_id)
        ending = {"delivered": "delivery", "picked_up": "pickup"}.get(target)
        if ending and order.fulfilment != ending:
            raise InvalidInput(f"order {order_id} is for {order.fulfilment}: it cannot be {target}")
        if target == "cancelled":
            orders.cancel_order(session, order, ACTOR)
        else:
            orders.set_status(session, order, target, ACTOR)
        if target == "picked_up":
            payments.collect_cash(session, order, ACTOR)
        notifications.notify(session, order, target)
        return detail(session, order)


def spei_received(order_id: int, amount: Decimal, bank_reference: Optional[str]) -> Dict[str, Any]:
    with transaction() as session:
        outcome = payments.mark_spei_received(session, order_id, amount, ACTOR, bank_reference)
        return {"outcome": outcome, "order": detail(session, orders.get_order(session, order_id))}


def error(exc: ComandaError) -> HTTPResponse:
    return response.json({"error": exc.message, "code": exc.code}, status=HTTP_STATUS.get(exc.code, 400))


def body(request: Request) -> Dict[str, Any]:
    return request.json if isinstance(request.json, dict) else {}


@bp.get("")
async def index(request: Request) -> HTTPResponse:
    return response.json(await in_thread(list_orders, request.args.get("store"), request.args.get("status")))


@bp.get("/<order_id:int>")
async def show(request: Request, order_id: int) -> HTTPResponse:
    try:
        return response.json(await in_thread(show_order, order_id))
    except ComandaError as exc:
        return error(exc)


@bp.post("/<order_id:int>/status")
async def set_status(request: Request, order_id: int) -> HTTPResponse:
    try:
        return response.json(await in_thread(move_order, order_id, str(body(request).get("status"))))
    except ComandaError as exc:
        return error(exc)


@bp.post("/<order_id:int>/spei-received")
async def spei(request: Request, order_id: int) -> HTTPResponse:
    data = body(request)
    try:
        amount = money(str(data.get("amount")))
    except ValueError:
        return error(InvalidInput("'amount' must be the amount received, e.g. \"96.00\""))
    reference = data.get("bank_reference")
    if reference is not None and not isinstance(reference, str):
        return error(InvalidInput("'bank_reference' must be the transfer's reference as text"))
    try:
        return response.json(await in_thread(spei_received, order_id, amount, reference or None))
    except ComandaError as exc:
        return error(exc)
