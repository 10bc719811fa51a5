"""Mount the simulator's blueprints and its in-memory state on the back-office app: never beside a real
Meta app's credentials, and only for callers on this machine."""

from __future__ import annotations

import logging

from sanic import Blueprint, Sanic

from backoffice.simulator import api, graph, page
from backoffice.simulator.guard import only_local_callers
from backoffice.simulator.state import Simulator
from comanda.settings import real_whatsapp_credentials

logger = logging.getLogger(__name__)


def mount(app: Sanic) -> bool:
    """Serve /simulator, unless real WhatsApp credentials are set: then it stays off (and says so loudly),
    since a simulator there would let anyone post webhooks as that app's customers."""
    real = real_whatsapp_credentials()
    if real:
        logger.error(
            "WHATSAPP SIMULATOR OFF: %s %s a real Meta app's; /simulator is not served. "
            "Set COMANDA_SIMULATOR=0 to silence this, or unset %s to use the simulator.",
            " and ".join(real),
            "are" if len(real) > 1 else "is",
            " and ".join(real),
        )
        return False
    app.ctx.simulator = Simulator()
    group = Blueprint.group(page.bp, api.bp, graph.bp, graph.media_bp, url_prefix="/simulator")
    group.middleware(only_local_callers, "request")
    app.blueprint(group)
    return True
