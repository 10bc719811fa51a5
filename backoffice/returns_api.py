"""The returns JSON API for staff and their integrations, on the same personal tokens as the order queue
(``Authorization: Bearer cst_…``); another store's return is 404, as if it did not exist.

- ``GET /api/returns?store=&status=``: the newest first (at most 200), each as ``returns.as_json`` shapes it;
- ``GET /api/returns/<id>``: one return;
- ``POST /api/returns/<id>/approve``, ``/reject {"reason"}``, ``/receive {"condition": "good|damaged"}``:
  staff's steps; whatever money a step makes due (the refund, the store credit, the exchange) goes out
  before the answer, which is the return as it then stands plus ``needs_staff`` when a person must still
  act (``manual_refund``: give cash or SPEI back by hand; ``refund_failed``: the provider refused).

The rules live in ``comanda.services.returns``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backoffice.http_errors import json_error
from backoffice.openapi import Spec, json_body, obj, operation, path_id, query
from backoffice.queue_api import body, staff_only
from comanda.concurrency import in_thread
from comanda.db import new_session
from comanda.enums import ReceivedCondition, ReturnStatus
from comanda.errors import ComandaError, InvalidInput
from comanda.services import returns, staff
from comanda.services.staff import StaffMember
from integrations.cfdi import issuer
from integrations.payments import payment_provider

bp = Blueprint("returns_api", url_prefix="/api/returns")
bp.middleware("request")(staff_only)


def listed(member: StaffMember, store: Optional[str], status: Optional[str]) -> Dict[str, Any]:
    with new_session() as session:
        found = returns.list_returns(session, staff.store_filter(member, store), status)
        return {"returns": [returns.as_json(session, r) for r in found]}


def shown(member: StaffMember, return_id: int, needs_staff: Optional[str] = None) -> Dict[str, Any]:
    with new_session() as session:
        found = returns.as_json(session, returns.get_return(session, return_id, sorted(member.store_ids)))
    return {**found, "needs_staff": needs_staff}


def stepped(member: StaffMember, request: Request, return_id: int, step: str, *args: Any) -> Dict[str, Any]:
    actor = request.ctx.actor
    settled = returns.take_step(
        return_id, step, actor, payment_provider, issuer(), *args, store_ids=sorted(member.store_ids)
    )
    return shown(member, return_id, settled.needs_staff)


async def answer(work: Any, *args: Any) -> HTTPResponse:
    try:
        return response.json(await in_thread(work, *args))
    except ComandaError as exc:
        return json_error(exc)


@bp.get("")
async def index(request: Request) -> HTTPResponse:
    return await answer(listed, request.ctx.member, request.args.get("store"), request.args.get("status"))


@bp.get("/<return_id:int>")
async def show(request: Request, return_id: int) -> HTTPResponse:
    return await answer(shown, request.ctx.member, return_id)


@bp.post("/<return_id:int>/approve")
async def approve(request: Request, return_id: int) -> HTTPResponse:
    return await answer(stepped, request.ctx.member, request, return_id, "approve")


@bp.post("/<return_id:int>/reject")
async def reject(request: Request, return_id: int) -> HTTPResponse:
    reason = body(request).get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return json_error(InvalidInput("'reason' must say why, for the customer"))
    return await answer(stepped, request.ctx.member, request, return_id, "reject", reason)


@bp.post("/<return_id:int>/receive")
async def receive(request: Request, return_id: int) -> HTTPResponse:
    condition = body(request).get("condition")
    if ReceivedCondition.parse(condition) is None:
        return json_error(InvalidInput(f"'condition' must be one of {', '.join(ReceivedCondition.values())}"))
    return await answer(stepped, request.ctx.member, request, return_id, "receive", condition)


_RETURN = {"type": "object", "description": "id, order_id, status, reason, lines, outcome, refund, credit_note_uuid."}
_RETURN_ID = path_id("return_id", "The return's number.")
_STEP_ERRORS = {
    400: "Bad input.",
    404: "No such return at the token owner's stores.",
    409: "The return is past this step (someone else took it).",
    502: "The payment provider refused or did not answer.",
    503: "The payment provider or invoicing is not configured.",
}
OPENAPI: Spec = {
    "paths": {
        "/api/returns": {
            "get": operation(
                "Returns of the token owner's stores, newest first.",
                obj({"returns": {"type": "array", "items": _RETURN}}),
                {400: "An unknown store or status.", 404: "A store the token owner cannot see."},
                parameters=[
                    query("store", "Only this store (its id)."),
                    query("status", "Only returns in this status.", {"type": "string", "enum": ReturnStatus.values()}),
                ],
                tag="returns",
            )
        },
        "/api/returns/{return_id}": {
            "get": operation(
                "One return.",
                _RETURN,
                {404: "No such return at the token owner's stores."},
                parameters=[_RETURN_ID],
                tag="returns",
            )
        },
        "/api/returns/{return_id}/approve": {
            "post": operation("Approve the return.", _RETURN, _STEP_ERRORS, parameters=[_RETURN_ID], tag="returns")
        },
        "/api/returns/{return_id}/reject": {
            "post": operation(
                "Reject the return; the customer is told why.",
                _RETURN,
                _STEP_ERRORS,
                parameters=[_RETURN_ID],
                body=json_body(obj({"reason": {"type": "string"}}), "Why, for the customer."),
                tag="returns",
            )
        },
        "/api/returns/{return_id}/receive": {
            "post": operation(
                "The goods came back: good ones go back on the shelf, damaged ones are written off.",
                _RETURN,
                _STEP_ERRORS,
                parameters=[_RETURN_ID],
                body=json_body(obj({"condition": {"type": "string", "enum": list(ReceivedCondition.values())}})),
                tag="returns",
            )
        },
    },
    "schemas": {},
}
