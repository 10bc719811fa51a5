"""Mount the simulator's blueprints and its in-memory state on the back-office app."""

from __future__ import annotations

from sanic import Blueprint, Sanic

from backoffice.simulator import api, graph, page
from backoffice.simulator.state import Simulator


def mount(app: Sanic) -> None:
    app.ctx.simulator = Simulator()
    app.blueprint(Blueprint.group(page.bp, api.bp, graph.bp, graph.media_bp, url_prefix="/simulator"))
