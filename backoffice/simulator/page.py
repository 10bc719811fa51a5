"""The chat page: a developer plays the customer, on any store's WhatsApp number, in the browser."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backoffice.simulator import meta

HERE = Path(__file__).resolve().parent
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape())

bp = Blueprint("simulator_page")
bp.static("/static", str(HERE / "static"), name="static")


@bp.get("")
async def page(request: Request) -> HTTPResponse:
    html = templates.get_template("simulator.html").render(numbers=meta.numbers())
    return response.html(html)
