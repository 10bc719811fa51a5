"""Rasa's REST channel for trusted callers only: it answers requests that carry the Rasa API token
(`?token=` or `Authorization: Bearer`), the same COMANDA_RASA_TOKEN that guards Rasa's HTTP API.

Rasa's own REST channel asks nobody for anything, and whoever posts names the conversation they
speak as, a customer's WhatsApp conversation included (its cart, orders and invoices). So the REST
channel is for staff tools, tests and integrations that hold the token, never for the public.
"""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse


def presented_token(request: Request) -> str:
    scheme, _, bearer = (request.headers.get("Authorization") or "").partition(" ")
    return bearer if scheme.lower() == "bearer" else (request.args.get("token") or "")


class TokenRestInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> TokenRestInput:
        return cls(str((credentials or {}).get("token") or ""))

    def __init__(self, token: str) -> None:
        self.token = token

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = super().blueprint(on_new_message)

        @bp.middleware("request")
        async def token_only(request: Request) -> Optional[HTTPResponse]:
            if request.method == "POST" and not (
                self.token and hmac.compare_digest(presented_token(request).encode(), self.token.encode())
            ):
                return response.json({"error": "the REST channel needs the Rasa API token"}, status=401)
            return None

        return bp
