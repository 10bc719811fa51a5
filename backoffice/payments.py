"""Payments in the back office: provider webhooks, the sandbox's hosted checkout, the return page.

- ``POST /webhooks/payments/{sandbox|stripe|mercadopago}``: the raw body's signature is checked by the
  provider's adapter; forged, tampered, stale or malformed (not JSON, nested too deep, NaN or Infinity,
  an amount that is not whole cents) → 400/401/403 and nothing changes, never a 500 a provider would
  retry forever; else the event is applied once (comanda.services.payments.apply_event) and answered
  200 with its outcome. Bodies over COMANDA_BACKOFFICE_MAX_BODY_BYTES are refused (413) unread.
  A provider that is not configured has no endpoint (404); the sandbox only exists while it is the
  configured provider, so a production install cannot be paid by a sandbox webhook.
- ``GET /pay/<token>``: the sandbox checkout (store, lines, total, expiry, Pay / Decline, in the order's
  language). Pay or Decline books the charge in the sandbox's ledger with its webhook in the sandbox's
  outbox, and posts that signed webhook to this back office's own webhook URL, as a real provider would
  (retried by the outbox loop if it fails: backoffice/dispatch.py), then shows the outcome.
- ``GET /pay/return``: where Stripe and Mercado Pago send the customer back after paying.

Database and provider work runs in the loop's thread pool, so a slow call never stalls other requests.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import List, Optional
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.openapi import json_body, obj, operation
from comanda import clock
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.crash_points import crash_point
from comanda.db import new_session, transaction
from comanda.enums import (
    CheckoutPageState,
    OrderStatus,
    PaymentEventKind,
    PaymentEventOutcome,
    PaymentStatus,
    SandboxWebhookStatus,
)
from comanda.errors import ConfigError, InvalidInput
from comanda.i18n import language_or_default, t
from comanda.money import format_money
from comanda.services import orders, payments
from comanda.services.payment_provider import PaymentProvider, ProviderError, ProviderEvent, WebhookRejected
from comanda.settings import setting
from integrations.payments import PROVIDERS, payment_provider, sandbox, sandbox_webhooks
from integrations.payments.sandbox import SandboxProvider

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape())
bp = Blueprint("payments")
SELF_POSTS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-webhook")


def webhook_provider(name: str) -> Optional[PaymentProvider]:
    """The adapter for a webhook path, or None: unknown, not configured, or the sandbox outside sandbox mode."""
    if name not in PROVIDERS or (name == sandbox.NAME and setting("COMANDA_PAYMENT_PROVIDER") != sandbox.NAME):
        return None
    try:
        return payment_provider(name)
    except ConfigError:
        return None


def apply(event: ProviderEvent) -> str:
    with transaction() as session:
        return payments.apply_event(session, event)


@bp.post("/webhooks/payments/<name>")
async def webhook(request: Request, name: str) -> HTTPResponse:
    provider = webhook_provider(name)
    if provider is None:
        return response.json({"error": f"no payment provider {name!r} here"}, status=404)
    query = {key: values[0] for key, values in request.args.items()}
    try:
        event = await in_thread(provider.parse_webhook, request.body, request.headers, query)
    except WebhookRejected as rejected:
        log.warning("%s webhook refused (%s): %s", name, rejected.status, rejected.message)
        return response.json({"error": rejected.message}, status=rejected.status)
    except ProviderError as failed:  # the payment could not be fetched: the provider retries later
        log.warning("%s webhook not applied yet: %s", name, failed.message)
        return response.json({"error": "try again later"}, status=502)
    if event is None:
        return response.json({"outcome": PaymentEventOutcome.IGNORED})
    try:
        outcome = await in_thread(apply, event)
    except InvalidInput as refused:  # an event no payment can take (the adapters read strictly already)
        log.warning("%s event %s refused: %s", name, event.event_id, refused.message)
        return response.json({"error": refused.message}, status=400)
    except payments.RetryLater as early:  # nothing was recorded: the provider sends it again
        log.info("%s event %s early: %s", name, event.event_id, early.message)
        return response.json({"error": "try again later"}, status=503)
    crash_point("payment_applied")  # committed, not answered: the provider will send it again
    log.info("%s event %s (%s): %s", name, event.event_id, event.event_type, outcome)
    return response.json({"outcome": outcome})


# --- the sandbox's hosted checkout ---------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    quantity: int
    description: str
    total: str


# What the page says about a payment that can no longer be paid there.
PAGE_STATES = {
    PaymentStatus.PAID: CheckoutPageState.PAID,
    PaymentStatus.DECLINED: CheckoutPageState.DECLINED,
    PaymentStatus.FLAGGED: CheckoutPageState.FLAGGED,
    PaymentStatus.REFUNDED: CheckoutPageState.FLAGGED,
    PaymentStatus.PARTIALLY_REFUNDED: CheckoutPageState.FLAGGED,
}


@dataclass(frozen=True)
class CheckoutView:
    """What the page shows (its state: a CheckoutPageState)."""

    order_id: int
    store: str
    language: str
    lines: List[Line]
    delivery_fee: Optional[str]
    total: str
    currency: str
    expires: str
    state: str
    ticket: Optional[str]
    amount: Decimal


def checkout_view(token: str) -> Optional[CheckoutView]:
    with new_session() as session:
        payment = session.execute(
            select(m.Payment).where(m.Payment.provider == sandbox.NAME, m.Payment.provider_link_id == token)
        ).scalar_one_or_none()
        if payment is None:
            return None
        order = session.get(m.Order, payment.order_id)
        store = session.get(m.Store, order.store_id)
        timezone_name = session.get(m.Business, order.business_id).timezone
        open_now = (
            payment.status == PaymentStatus.PENDING
            and order.status == OrderStatus.PENDING_PAYMENT
            and payment.expires_at > clock.now()
        )
        if open_now:
            state = CheckoutPageState.PROCESSING if _charged(session, token) else CheckoutPageState.OPEN
        elif order.status == OrderStatus.CANCELLED and payment.status not in PAGE_STATES:
            state = CheckoutPageState.CANCELLED  # not "the link expired": the order itself is gone
        else:
            state = PAGE_STATES.get(payment.status, CheckoutPageState.EXPIRED)
        language = language_or_default(order.language)
        return CheckoutView(
            order_id=order.id,
            store=store.name,
            language=language,
            lines=[
                Line(line.quantity, orders.line_name(session, line, language), format_money(line.line_total))
                for line in order.lines
            ],
            delivery_fee=format_money(order.delivery_fee) if order.delivery_fee else None,
            total=format_money(payment.amount),
            currency=payment.currency,
            expires=payment.expires_at.astimezone(ZoneInfo(timezone_name)).strftime("%H:%M"),
            state=state,
            ticket=order.ticket_code,
            amount=payment.amount,
        )


def _charged(session: Session, token: str) -> bool:
    """A press on this link booked a charge whose webhook is still on its way."""
    W, C = m.SandboxWebhook, m.SandboxCharge
    pending = (
        select(W.id)
        .join(C, C.id == W.charge_id)
        .where(C.link_id == token, W.status == SandboxWebhookStatus.PENDING)
        .limit(1)
    )
    return session.execute(pending).first() is not None


def page(token: str, view: Optional[CheckoutView], status: int = 200) -> HTTPResponse:
    lang = view.language if view else "es"
    html = templates.get_template("sandbox_checkout.html").render(
        view=view, token=token, lang=lang, t=lambda key, **params: t(key, lang, **params)
    )
    return response.html(html, status=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def deliver_sandbox_webhooks(charge_id: Optional[str] = None) -> int:
    """The sandbox's outbox: post what is due (only one charge's webhook, right after Pay or Decline)."""
    return sandbox_webhooks.deliver_due(SandboxProvider.from_settings(), charge_id=charge_id)


async def choose(view: CheckoutView, token: str, kind: str) -> None:
    """Pay or Decline on an open link: the sandbox books the charge with its webhook in its outbox (one
    transaction), then posts it at once; a post that fails is retried by the back office's outbox loop.
    The post waits for this very back office's answer, so it runs on threads of its own: taking the
    shared pool's (which the webhook handler needs) would let a few presses at once wait on themselves."""
    charge = await in_thread(sandbox.record_charge, token, str(view.order_id), kind, view.amount, view.currency)
    await in_thread(deliver_sandbox_webhooks, charge.id, executor=SELF_POSTS)


@bp.get("/pay/return")
async def provider_return(request: Request) -> HTTPResponse:
    lang = language_or_default(request.args.get("lang"))
    html = templates.get_template("payment_return.html").render(
        lang=lang, title=t("payments.page_title", lang), text=t("payments.returned", lang)
    )
    return response.html(html, headers={"Cache-Control": "no-store"})


@bp.get("/pay/<token>")
async def checkout_page(request: Request, token: str) -> HTTPResponse:
    if setting("COMANDA_PAYMENT_PROVIDER") != sandbox.NAME:
        return page(token, None, status=404)
    view = await in_thread(checkout_view, token)
    return page(token, view, status=200 if view else 404)


@bp.post("/pay/<token>/pay")
async def checkout_pay(request: Request, token: str) -> HTTPResponse:
    return await pressed(token, PaymentEventKind.PAID)


@bp.post("/pay/<token>/decline")
async def checkout_decline(request: Request, token: str) -> HTTPResponse:
    return await pressed(token, PaymentEventKind.DECLINED)


async def pressed(token: str, kind: str) -> HTTPResponse:
    """After the button: back to the page, which now shows what happened (Post/Redirect/Get)."""
    view = await in_thread(checkout_view, token) if setting("COMANDA_PAYMENT_PROVIDER") == sandbox.NAME else None
    if view is None:
        return page(token, None, status=404)
    if view.state == CheckoutPageState.OPEN:
        await choose(view, token, kind)
    return response.redirect(f"/pay/{token}", status=303)


# --- OpenAPI (backoffice/openapi.py) ---------------------------------------------------------------

OPENAPI = {
    "paths": {
        "/webhooks/payments/{name}": {
            "post": operation(
                "A payment provider's webhook: its signature is checked on the raw body, then the event is "
                "applied once (a redelivery is a duplicate).",
                obj({"outcome": {"type": "string", "enum": PaymentEventOutcome.values()}}),
                {
                    400: "Not the provider's JSON, or an event no payment can take.",
                    401: "Unsigned.",
                    403: "Forged, tampered or stale signature.",
                    404: "No such provider configured here.",
                    502: "The provider could not be asked about the payment: send it again later.",
                    503: "The event came before what it refers to: send it again later.",
                },
                parameters=[
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": [p.value for p in PROVIDERS]},
                    }
                ],
                body=json_body({"type": "object"}, "The provider's event, exactly as it signed it."),
                staff=False,
                tag="payments",
            )
        }
    },
}
