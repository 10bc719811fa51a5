"""`python -m cli.action_server --port N`: the action server `comanda run` starts (in COMANDA_ACTIONS_VENV).

It is rasa-sdk's own app (``create_app``), bound to COMANDA_ACTIONS_HOST (127.0.0.1 by default), with the
one thing rasa-sdk 3.6 lacks: it answers only the Rasa server. Every request but ``GET /health`` must
carry ``Authorization: Bearer <COMANDA_ACTIONS_TOKEN>`` (endpoints.yml sends it); without it 401, with
a wrong one 403. Otherwise anyone reaching the port could run any action as any conversation.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import sys
from typing import List, Optional

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app as create_sdk_app
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from comanda.settings import setting, setting_int

OPEN_PATHS = frozenset({"/health"})  # `comanda run` polls it before the stack is ready; it tells nothing


def create_app(token: str, max_body_bytes: int) -> Sanic:
    """rasa-sdk's app for the ``actions`` package, closed to callers without the shared secret."""
    if not token:
        raise ValueError("the action server needs a shared secret")
    app = create_sdk_app("actions", cors_origins=[])  # no browser origin may call it
    app.config.REQUEST_MAX_SIZE = max_body_bytes  # a larger body is refused (413) before it is read
    expected = f"Bearer {token}".encode()

    async def only_the_rasa_server(request: Request) -> Optional[HTTPResponse]:
        if request.path in OPEN_PATHS:
            return None
        supplied = request.headers.get("authorization")
        if not supplied:
            return response.json({"error": "the action server needs its token (COMANDA_ACTIONS_TOKEN)"}, status=401)
        if not hmac.compare_digest(supplied.encode(), expected):
            return response.json({"error": "wrong action server token"}, status=403)
        return None

    async def http_error(request: Request, exception: SanicException) -> HTTPResponse:
        """Sanic's own errors (413, 404, 405…) keep their status: rasa-sdk turns every exception into a 500."""
        return response.json({"error": str(exception)}, status=exception.status_code)

    app.register_middleware(only_the_rasa_server, "request")
    app.error_handler.add(SanicException, http_error)
    return app


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.action_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="default: COMANDA_ACTIONS_PORT")
    args = parser.parse_args(argv)
    utils.configure_colored_logging(setting("COMANDA_LOG_LEVEL").upper())
    utils.update_sanic_log_level()
    app = create_app(setting("COMANDA_ACTIONS_TOKEN"), setting_int("COMANDA_ACTIONS_MAX_BODY_BYTES"))
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    host, port = setting("COMANDA_ACTIONS_HOST"), args.port or setting_int("COMANDA_ACTIONS_PORT")
    logging.getLogger(__name__).info("action server on http://%s:%s, callers need COMANDA_ACTIONS_TOKEN", host, port)
    app.run(host, port, workers=utils.number_of_sanic_workers(), access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
