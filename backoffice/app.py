"""Build the back-office app: health, invoice downloads, and the simulator when COMANDA_SIMULATOR=1."""

from __future__ import annotations

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backoffice import console, dispatch, payments, queue_api
from backoffice.documents import bp as documents
from comanda.settings import setting


def create_app() -> Sanic:
    app = Sanic("comanda_backoffice", configure_logging=False)
    app.config.ACCESS_LOG = False

    @app.get("/health")
    async def health(_request: Request) -> HTTPResponse:
        """`comanda run` waits for this before it calls the stack ready."""
        return response.json({"status": "ok"})

    app.blueprint(documents)
    app.blueprint(payments.bp)  # payment webhooks, the sandbox checkout
    app.blueprint(queue_api.bp)  # the order-queue API for staff
    console.mount(app)  # the staff console and the customers' board
    dispatch.mount(app)  # background: the payment sweep, customer notifications

    if setting("COMANDA_SIMULATOR") == "1":
        from backoffice.simulator.blueprints import mount

        mount(app)
    return app
