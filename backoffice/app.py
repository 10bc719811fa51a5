"""Build the back-office app: health, invoice downloads, payments, and the simulator when COMANDA_SIMULATOR=1.

Request bodies are capped (COMANDA_BACKOFFICE_MAX_BODY_BYTES): Sanic compares the Content-Length with
REQUEST_MAX_SIZE before reading a byte of the body (a chunked body is cut off at the cap), and the
refusal is a JSON 413.
"""

from __future__ import annotations

from sanic import Sanic, response
from sanic.exceptions import InvalidUsage, MethodNotSupported, NotFound, PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from backoffice import console, dispatch, handoff_api, openapi, payments, queue_api, returns_api
from backoffice.documents import bp as documents
from comanda.settings import setting, setting_int

# Each JSON API's OpenAPI part, served together at /api/openapi.json (backoffice.openapi).
API_PARTS = (queue_api.OPENAPI, payments.OPENAPI, handoff_api.OPENAPI, returns_api.OPENAPI)


def create_app() -> Sanic:
    app = Sanic("comanda_backoffice", configure_logging=False)
    app.config.ACCESS_LOG = False
    max_body = setting_int("COMANDA_BACKOFFICE_MAX_BODY_BYTES")
    app.config.REQUEST_MAX_SIZE = max_body

    @app.exception(PayloadTooLarge)
    async def too_large(_request: Request, _exc: Exception) -> HTTPResponse:
        return response.json({"error": f"the request body is larger than {max_body} bytes"}, status=413)

    @app.exception(NotFound, MethodNotSupported, InvalidUsage)
    async def refused(request: Request, exc: Exception) -> HTTPResponse:
        """The JSON API answers what Sanic refuses (no such route or method, a body that is not JSON) in
        its own shape, {"error": …}, as /api/openapi.json describes; pages keep Sanic's page."""
        if request.path.startswith(openapi.JSON_PREFIXES):
            status = getattr(exc, "status_code", 400)
            why = f"no {request.method} {request.path} here" if status in (404, 405) else str(exc)
            return response.json({"error": why}, status=status)
        return app.error_handler.default(request, exc)

    @app.get("/health")
    async def health(_request: Request) -> HTTPResponse:
        """`comanda run` waits for this before it calls the stack ready."""
        return response.json({"status": "ok"})

    app.blueprint(documents)
    app.blueprint(payments.bp)  # payment webhooks, the sandbox checkout
    app.blueprint(queue_api.bp)  # the order-queue API for staff
    app.blueprint(handoff_api.bp)  # the handed-over chats API for staff
    app.blueprint(returns_api.bp)  # the returns API for staff
    openapi.mount(app, *API_PARTS)  # /api/openapi.json: one part per JSON API
    console.mount(app)  # the staff console and the customers' board
    dispatch.mount(app)  # background: the payment sweep, the sandbox's webhooks, customer notifications

    if setting("COMANDA_SIMULATOR") == "1":
        from backoffice.simulator.blueprints import mount

        mount(app)
    return app
