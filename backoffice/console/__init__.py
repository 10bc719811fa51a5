"""The staff console (``/console``: login, the handoff inbox, the queue display, staff accounts) and the
customers' board (``/board/<store>``), server-rendered with Jinja2 and a vendored htmx, live over server-sent
events."""

from __future__ import annotations

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse

from comanda.settings import setting_int


def mount(app: Sanic) -> None:
    from backoffice.console import (  # noqa: F401 - the *_pages modules and inbox add their routes to pages.bp
        board,
        customers_pages,
        inbox,
        live,
        pages,
        purchasing_pages,
        report_pages,
        returns_pages,
        review_pages,
        staff_pages,
    )
    from backoffice.console.web import security_headers

    # Behind a load balancer, the client's address and HTTPS come from the proxies' X-Forwarded-* headers.
    app.config.PROXIES_COUNT = setting_int("COMANDA_BACKOFFICE_PROXIES")
    app.blueprint(pages.bp)
    app.blueprint(board.bp)
    live.mount(app)

    @app.on_response
    async def console_headers(request: Request, resp: HTTPResponse) -> None:
        security_headers(request, resp)
