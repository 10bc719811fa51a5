"""A small async client for the WhatsApp Cloud API (Meta Graph API).

Errors carry Meta's error code and whether sending again may succeed (throttling, server errors,
network trouble) so the outbox can decide between a retry and giving up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional

import aiohttp

log = logging.getLogger(__name__)

# Meta's error codes worth naming in a log line (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
ERROR_MEANINGS = {
    0: "authentication exception",
    3: "the app lacks the capability or permission for this call",
    10: "permission denied or removed",
    100: "invalid parameter",
    190: "access token expired or invalid",
    368: "temporarily blocked for policy violations",
    130429: "rate limit hit (throughput)",
    130472: "number is part of an experiment and the message was not sent",
    131000: "something went wrong on Meta's side",
    131005: "access denied",
    131008: "required parameter missing",
    131009: "parameter value invalid",
    131016: "service temporarily unavailable",
    131021: "recipient cannot be the sender",
    131026: "message undeliverable (not on WhatsApp, old app, or terms not accepted)",
    131031: "business account locked",
    131042: "business eligibility / payment issue",
    131045: "phone number not registered correctly",
    131047: "more than 24 hours since the customer last wrote: only a template may be sent",
    131049: "Meta chose not to deliver this marketing message",
    131051: "unsupported message type",
    131052: "media download error",
    131053: "media upload error",
    131056: "too many messages to this customer in a short time (pair rate limit)",
    132000: "template parameter count mismatch",
    132001: "template does not exist in that language or is not approved",
    132005: "template text too long after filling parameters",
    132007: "template violates formatting policy",
    132012: "template parameter format mismatch",
    133010: "phone number not registered on the Cloud API",
}
RETRYABLE_CODES = {1, 2, 4, 80007, 130429, 131000, 131016, 131056}
REENGAGEMENT_CODE = 131047
PAIR_RATE_CODE = 131056


def describe_error(code: Optional[int]) -> str:
    return ERROR_MEANINGS.get(code or -1, "unknown error code")


class GraphError(Exception):
    def __init__(self, message: str, status: Optional[int] = None, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        """Throttling, server errors and network trouble may pass; a bad request will not."""
        return self.status is None or self.status == 429 or self.status >= 500 or self.code in RETRYABLE_CODES

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "network"
        code = f", code {self.code} ({describe_error(self.code)})" if self.code else ""
        return f"{where}{code}: {self.args[0]}"


class GraphClient:
    def __init__(self, base_url: str, access_token: str, timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Optional[aiohttp.ClientSession] = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, headers={"Authorization": f"Bearer {self.access_token}"}
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, path: str, **kwargs: Any) -> Dict[str, Any]:
        try:
            async with self._http().post(f"{self.base_url}/{path}", **kwargs) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = {}
                if response.status >= 400 or "error" in (body or {}):
                    error = (body or {}).get("error") or {}
                    raise GraphError(
                        error.get("message") or response.reason or "error",
                        status=response.status,
                        code=error.get("code"),
                    )
                return body or {}
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GraphError(f"{type(exc).__name__}: {exc}") from exc

    async def send_message(self, phone_number_id: str, message: Dict[str, Any]) -> str:
        """Send one message; returns its WhatsApp message id (wamid)."""
        body = await self._post(f"{phone_number_id}/messages", json=message)
        try:
            return body["messages"][0]["id"]
        except (KeyError, IndexError, TypeError):
            raise GraphError(f"unexpected answer: {body!r}", status=200) from None

    async def mark_read(self, phone_number_id: str, message_id: str, typing: bool = True) -> None:
        """Blue ticks for the customer, and the typing indicator while the bot works."""
        payload: Dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        await self._post(f"{phone_number_id}/messages", json=payload)

    async def upload_media(self, phone_number_id: str, data: bytes, mime_type: str, filename: str) -> str:
        """Upload a file (an invoice PDF, say) and return its media id for a later message."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime_type)
        form.add_field("file", data, filename=filename, content_type=mime_type)
        body = await self._post(f"{phone_number_id}/media", data=form)
        if "id" not in body:
            raise GraphError(f"unexpected answer: {body!r}", status=200)
        return body["id"]
