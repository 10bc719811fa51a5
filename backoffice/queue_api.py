"""The order-queue JSON API for staff and their integrations, on personal tokens
(``Authorization: Bearer cst_…``, made with ``comanda staff token EMAIL``). A token acts as its owner, with
the owner's stores: another store's order is 404, as if it did not exist.

- ``GET /api/orders?store=&status=``: the newest orders first (at most 200);
- ``GET /api/orders/<id>``: one order with its lines, payments and status history;
- ``POST /api/orders/<id>/status {"status": "preparing"}``: received → preparing → ready → delivered
  (delivery) or picked_up (pickup), or cancelled; the customer is told in their language;
- ``POST /api/orders/<id>/recall``: undo the order's last queue move (within COMANDA_QUEUE_RECALL_MINUTES);
- ``POST /api/orders/<id>/spei-received {"amount": "96.00", "bank_reference": "…"}``: staff saw the
  transfer in the bank; the amount is checked like a provider's.

Every order carries what a driver needs: the customer's phone, the delivery address and the location the
customer shared (with a map link). The rules live in ``comanda.services.order_queue``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Dict, Optional, TypeVar

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.console.web import client_ip
from backoffice.http_errors import json_error
from backoffice.openapi import Spec, json_body, nullable, obj, operation, path_id, query, ref
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session, transaction
from comanda.enums import Fulfilment, OrderStatus
from comanda.errors import ComandaError, InvalidInput, NotFound
from comanda.money import money
from comanda.services import order_queue, staff
from comanda.services.audit import Actor
from comanda.services.staff import StaffMember

bp = Blueprint("queue_api", url_prefix="/api/orders")
T = TypeVar("T")


def bearer(request: Request) -> Optional[str]:
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def token_member(token: Optional[str]) -> Optional[StaffMember]:
    with transaction() as session:
        return staff.token_member(session, token)


MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


@bp.middleware("request")
async def staff_only(request: Request) -> Optional[HTTPResponse]:
    member = await in_thread(token_member, bearer(request))
    if member is None:
        return response.json(
            {"error": "a staff member's personal token is required (comanda staff token EMAIL)"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="comanda"'},
        )
    request.ctx.member = member
    request.ctx.actor = member.actor(client_ip(request))
    if any(isinstance(value, int) and not 0 < value <= MAX_ID for value in request.match_info.values()):
        return json_error(NotFound("no such record"))  # beyond any row id the database can hold
    return None


def maps_url(latitude: Decimal, longitude: Decimal) -> str:
    return f"https://www.google.com/maps/search/?api=1&query={latitude},{longitude}"


def summary(session: Session, order: m.Order) -> Dict[str, Any]:
    customer = session.get(m.Customer, order.customer_id)
    location = (
        {
            "latitude": str(order.delivery_latitude),
            "longitude": str(order.delivery_longitude),
            "maps_url": maps_url(order.delivery_latitude, order.delivery_longitude),
        }
        if order.delivery_latitude is not None and order.delivery_longitude is not None
        else None
    )
    return {
        "id": order.id,
        "store": order.store_id,
        "status": order.status,
        "payment_status": order.payment_status,
        "payment_method": order.payment_method,
        "ticket": order.ticket_code,
        "fulfilment": order.fulfilment,
        "customer_name": order.customer_name,
        "customer": {"name": order.customer_name, "phone": customer.phone if customer else None},
        "delivery": {
            "address": order.delivery_address,
            "postal_code": order.delivery_postal_code,
            "location": location,
        }
        if order.fulfilment == Fulfilment.DELIVERY
        else None,
        "note": order.note,
        "total": str(order.total),
        "currency": order.currency,
        "language": order.language,
        "created_at": order.created_at.isoformat(),
        "lines": [
            {
                "sku": line.sku,
                "description": line.description,
                "note": line.note,  # the customer's words for the kitchen: "bien fría"
                "quantity": line.quantity,
                "modifiers": line.modifiers or {},
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
        **summary(session, order),
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


def read(work: Callable[[Session], T]) -> T:
    with new_session() as session:
        return work(session)


def write(work: Callable[[Session], T]) -> T:
    with transaction() as session:
        return work(session)


async def answer(
    request: Request, run: Callable[[Callable[[Session], T]], T], work: Callable[[Session], T]
) -> HTTPResponse:
    try:
        return response.json(await in_thread(run, work))
    except ComandaError as exc:
        return json_error(exc)


def body(request: Request) -> Dict[str, Any]:
    return request.json if isinstance(request.json, dict) else {}


@bp.get("")
async def index(request: Request) -> HTTPResponse:
    member: StaffMember = request.ctx.member
    store, status = request.args.get("store"), request.args.get("status")
    return await answer(
        request,
        read,
        lambda s: {"orders": [summary(s, o) for o in order_queue.list_orders(s, member, store, status)]},
    )


@bp.get("/<order_id:int>")
async def show(request: Request, order_id: int) -> HTTPResponse:
    member: StaffMember = request.ctx.member
    return await answer(request, read, lambda s: detail(s, staff.visible_order(s, member, order_id)))


@bp.post("/<order_id:int>/status")
async def set_status(request: Request, order_id: int) -> HTTPResponse:
    member: StaffMember = request.ctx.member
    actor: Actor = request.ctx.actor
    target = body(request).get("status")
    return await answer(request, write, lambda s: detail(s, order_queue.move(s, member, actor, order_id, target)))


@bp.post("/<order_id:int>/recall")
async def recall(request: Request, order_id: int) -> HTTPResponse:
    member: StaffMember = request.ctx.member
    actor: Actor = request.ctx.actor
    return await answer(request, write, lambda s: detail(s, order_queue.recall(s, member, actor, order_id=order_id)))


@bp.post("/<order_id:int>/spei-received")
async def spei(request: Request, order_id: int) -> HTTPResponse:
    member: StaffMember = request.ctx.member
    actor: Actor = request.ctx.actor
    data = body(request)
    try:
        amount = money(str(data.get("amount")))
    except InvalidInput as exc:
        return json_error(InvalidInput(f"'amount' must be the amount received, e.g. \"96.00\" ({exc.message})"))
    reference = data.get("bank_reference")
    if reference is not None and not isinstance(reference, str):
        return json_error(InvalidInput("'bank_reference' must be the transfer's reference as text"))

    def work(session: Session) -> Dict[str, Any]:
        outcome = order_queue.confirm_spei(session, member, actor, order_id, amount, reference or None)
        return {"outcome": outcome, "order": detail(session, staff.visible_order(session, member, order_id))}

    return await answer(request, write, work)


# --- OpenAPI (backoffice/openapi.py) ---------------------------------------------------------------

_text, _maybe = {"type": "string"}, nullable({"type": "string"})
_NOT_FOUND = {404: "No such order in the token owner's stores."}
_MOVE_ERRORS = {**_NOT_FOUND, 400: "The body is not what the operation takes.", 409: "The order cannot move so."}
_LINE = obj(
    {
        "sku": _text,
        "description": _text,
        "note": _maybe,
        "quantity": {"type": "integer"},
        "modifiers": {"type": "object"},
        "line_total": _text,
    }
)
_ORDER_FIELDS: Dict[str, Spec] = {
    "id": {"type": "integer"},
    "store": _text,
    "status": {"type": "string", "enum": OrderStatus.values()},
    "payment_status": _maybe,
    "payment_method": _maybe,
    "ticket": _maybe,
    "fulfilment": _text,
    "customer_name": _maybe,
    "customer": obj({"name": _maybe, "phone": _maybe}),
    "delivery": nullable(
        obj(
            {
                "address": _maybe,
                "postal_code": _maybe,
                "location": nullable(obj({"latitude": _text, "longitude": _text, "maps_url": _text})),
            }
        )
    ),
    "note": _maybe,
    "total": {"type": "string", "description": 'Decimal MXN, e.g. "101.00"'},
    "currency": _text,
    "language": _text,
    "created_at": {"type": "string", "format": "date-time"},
    "lines": {"type": "array", "items": ref("OrderLine")},
}
_PAYMENT = obj(
    {
        "id": {"type": "integer"},
        "provider": _text,
        "method": _text,
        "status": _text,
        "flag_reason": _maybe,
        "amount": _text,
        "reference": _maybe,
        "expires_at": nullable({"type": "string", "format": "date-time"}),
    }
)
_CHANGE = obj({"from": _maybe, "to": _text, "actor": _text, "at": {"type": "string", "format": "date-time"}})
_ORDER_ID = path_id("order_id", "The order's number.")
OPENAPI = {
    "paths": {
        "/api/orders": {
            "get": operation(
                "The newest orders of the token owner's stores first (at most 200).",
                obj({"orders": {"type": "array", "items": ref("Order")}}),
                {400: "An unknown store or status.", 404: "A store the token owner cannot see."},
                parameters=[
                    query("store", "Only this store (its id)."),
                    query("status", "Only orders in this status.", {"type": "string", "enum": OrderStatus.values()}),
                ],
                tag="orders",
                links={
                    f"{name}FirstOrder": {
                        "operationId": name,
                        "parameters": {"order_id": "$response.body#/orders/0/id"},
                    }
                    for name in ("showOrder", "moveOrder", "recallOrder", "speiReceived")
                },
            )
        },
        "/api/orders/{order_id}": {
            "get": operation(
                "One order with its lines, payments and status history.",
                ref("OrderDetail"),
                _NOT_FOUND,
                parameters=[_ORDER_ID],
                tag="orders",
                operation_id="showOrder",
            )
        },
        "/api/orders/{order_id}/status": {
            "post": operation(
                "Move the order along the queue; the customer is told in their language.",
                ref("OrderDetail"),
                _MOVE_ERRORS,
                parameters=[_ORDER_ID],
                body=json_body(
                    obj({"status": {"type": "string", "enum": OrderStatus.values()}}),
                    "preparing, ready, delivered (delivery) or picked_up (pickup), or cancelled.",
                ),
                tag="orders",
                operation_id="moveOrder",
            )
        },
        "/api/orders/{order_id}/recall": {
            "post": operation(
                "Undo the order's last queue move (within COMANDA_QUEUE_RECALL_MINUTES).",
                ref("OrderDetail"),
                _MOVE_ERRORS,
                parameters=[_ORDER_ID],
                tag="orders",
                operation_id="recallOrder",
            )
        },
        "/api/orders/{order_id}/spei-received": {
            "post": operation(
                "Staff saw the SPEI transfer in the bank; the amount is checked like a provider's.",
                obj({"outcome": _text, "order": ref("OrderDetail")}),
                _MOVE_ERRORS,
                parameters=[_ORDER_ID],
                body=json_body(
                    obj(
                        {"amount": {"type": "string", "example": "96.00"}, "bank_reference": _maybe},
                        required=["amount"],
                    )
                ),
                tag="orders",
                operation_id="speiReceived",
            )
        },
    },
    "schemas": {
        "OrderLine": _LINE,
        "Order": obj(_ORDER_FIELDS),
        "OrderDetail": obj(
            {
                **_ORDER_FIELDS,
                "delivery_address": _maybe,
                "payments": {"type": "array", "items": _PAYMENT},
                "history": {"type": "array", "items": _CHANGE},
            }
        ),
    },
}
