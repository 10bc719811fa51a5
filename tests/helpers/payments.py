"""Paying in tests: demo orders placed through the real services, sandbox links, and the sandbox's own
signed webhooks, verified and applied as the back office's endpoint does."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest
from sqlalchemy import select

from comanda import clock
from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.services import carts, orders, payments
from comanda.services.checkout import CheckoutDetails
from comanda.services.reservations import ledger_mismatches, stock_report
from integrations.payments.sandbox import SIGNATURE_HEADER, SandboxProvider, event_body, record_charge, sign

ANA = "centro:whatsapp:+525511112222"
SECRET = "test-sandbox-secret"
T0 = datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc)  # 11:00 in Mexico City


@pytest.fixture
def sandbox_settings(monkeypatch) -> Iterator[None]:
    """The sandbox provider with a known secret (a module takes it with
    ``pytestmark = pytest.mark.usefixtures("sandbox_settings")``; the top conftest registers it)."""
    monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", "sandbox")
    monkeypatch.setenv("COMANDA_SANDBOX_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("COMANDA_BACKOFFICE_URL", "http://bo.test")
    yield
    set_clock(None)


def provider() -> SandboxProvider:
    return SandboxProvider.from_settings()


def place(
    conversation: str = ANA, method: str = "card", sku: str = "CONCHA", quantity: int = 2, language: str = "es"
) -> int:
    with transaction() as session:
        carts.add_items(session, carts.open_cart(session, conversation), [carts.Wanted(sku, quantity)], language)
    with transaction() as session:
        return orders.place_order(session, conversation, CheckoutDetails("pickup", "Ana", method), actor="test").id


def start(order_id: int) -> payments.PaymentInstructions:
    with transaction() as session:
        return payments.start_payment(session, session.get(m.Order, order_id), provider())


def payment(payment_id: int) -> m.Payment:
    with new_session() as session:
        return session.get(m.Payment, payment_id)


def order(order_id: int) -> m.Order:
    with new_session() as session:
        return session.get(m.Order, order_id)


def signed(body: bytes, age_seconds: int = 0, secret: str = SECRET) -> Dict[str, str]:
    """The Sandbox-Signature headers for these exact bytes."""
    return {SIGNATURE_HEADER: sign(body, secret, int(clock.now().timestamp()) - age_seconds)}


def webhook(
    payment_id: int, kind: str = "paid", amount: Optional[str] = None, currency: str = "MXN", age_seconds: int = 0
) -> Tuple[bytes, Dict[str, str]]:
    """What the hosted checkout posts after Pay or Decline: (body, headers), signed with the secret."""
    row = payment(payment_id)
    charge = record_charge(row.provider_link_id, str(row.order_id), kind, Decimal(amount or row.amount), currency)
    body = event_body(kind, charge)
    return body, signed(body, age_seconds)


def again(body: bytes) -> Tuple[bytes, Dict[str, str]]:
    """Another event (a new event id) for the same charge as ``body``, signed: not a replay, not a new charge."""
    event = json.loads(body)
    event["id"] = f"{event['id']}_again_{secrets.token_hex(4)}"
    raw = json.dumps(event, separators=(",", ":")).encode()
    return raw, signed(raw)


def sandbox_event(payment_id: int, data: Dict[str, Any], literals: Optional[Dict[str, str]] = None) -> bytes:
    """A sandbox "paid" event for the payment's link, ``data`` over the usual fields; ``literals`` puts raw
    JSON text (``Infinity``, ``1e999999``, deep nesting) in place of fields json.dumps cannot write."""
    row = payment(payment_id)
    fields = {
        "link": row.provider_link_id,
        "payment": "sbxpay_crafted",
        "reference": str(row.order_id),
        "amount": str(row.amount),
        "currency": "MXN",
        **data,
        **{name: f"@{name}@" for name in literals or {}},
    }
    event = {"id": "evt_sbx_crafted", "type": "payment.succeeded", "created": int(clock.now().timestamp())}
    text = json.dumps({**event, "data": fields})
    for name, literal in (literals or {}).items():
        text = text.replace(f'"@{name}@"', literal)
    return text.encode()


def deliver(body: bytes, headers: Dict[str, str]) -> str:
    """Verify and apply, as the back office's webhook endpoint does."""
    event = provider().parse_webhook(body, headers, {})
    assert event is not None
    with transaction() as session:
        return payments.apply_event(session, event)


def pay(payment_id: int, **kwargs: Any) -> str:
    return deliver(*webhook(payment_id, **kwargs))


def notices(order_id: int) -> list:
    with new_session() as session:
        return list(
            session.execute(
                select(m.Notification.dedupe_key).where(m.Notification.order_id == order_id).order_by(m.Notification.id)
            ).scalars()
        )


def available(sku: str) -> Decimal:
    with new_session() as session:
        return stock_report(session, "centro", sku)["available"]


def assert_ledger_balanced() -> None:
    with new_session() as session:
        assert ledger_mismatches(session) == []
