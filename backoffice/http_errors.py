"""ComandaError codes as HTTP statuses, for every JSON endpoint and console page of the back office."""

from __future__ import annotations

from sanic import response
from sanic.response import HTTPResponse

from comanda.errors import ComandaError

HTTP_STATUS = {
    "not_found": 404,
    "invalid_input": 400,
    "forbidden": 403,
    "account_exists": 409,
    "status_conflict": 409,
    "cannot_cancel": 409,
    "not_payable": 409,
    "out_of_stock": 409,
    "return_conflict": 409,
    "config": 503,
    "handoff_taken": 409,
    "handoff_resolved": 409,
    "window_closed": 409,
    "media_unavailable": 502,
    "rasa_unavailable": 503,
}


def status_of(exc: ComandaError) -> int:
    return HTTP_STATUS.get(exc.code, 400)


def json_error(exc: ComandaError) -> HTTPResponse:
    return response.json({"error": exc.message, "code": exc.code}, status=status_of(exc))
