"""Payments and the order queue in the real back-office process (as `comanda run` starts it), on SQLite
and PostgreSQL: the sandbox's hosted checkout (Pay → a signed webhook to itself → the order in the
queue with its ticket, told to the customer through Rasa's trigger_intent), forged webhooks refused,
the staff queue API with its token, SPEI confirmed by staff, and the expiry sweep."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from sqlalchemy import func, select, update

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import payments
from integrations.payments.sandbox import SIGNATURE_HEADER, SandboxProvider, sign
from tests.backoffice.conftest import Receiver, backoffice_env, start, stop
from tests.conftest import free_port
from tests.core.test_payments import place

SECRETS = {
    "COMANDA_SANDBOX_WEBHOOK_SECRET": "bo-sandbox-secret",
    "COMANDA_RASA_TOKEN": "bo-rasa-token",
}


@pytest.fixture
def office(demo, receiver: Receiver, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """A back office on the test's database, with the sandbox, fast background loops and Rasa = receiver."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **backoffice_env(demo, port, receiver.url),
        **SECRETS,
        "COMANDA_PAYMENT_PROVIDER": "sandbox",
        "COMANDA_PAYMENT_SWEEP_SECONDS": "1",
        "COMANDA_NOTIFY_POLL_SECONDS": "0.2",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with receiver.lock:
        receiver.posts.clear()
    proc = start(port, env, tmp_path / "backoffice.log")
    yield base
    stop(proc)


def link_for(order_id: int) -> payments.PaymentInstructions:
    with transaction() as session:
        return payments.start_payment(session, session.get(m.Order, order_id), SandboxProvider.from_settings())


def triggers(receiver: Receiver, count: int, timeout: float = 10) -> List[Dict[str, Any]]:
    """The trigger_intent calls Rasa received (path, query, body), waiting for ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        with receiver.lock:
            found = [p for p in receiver.posts if "/trigger_intent" in p.path]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"expected {count} trigger_intent calls, got {len(found)}"
            return [
                {
                    "conversation": unquote(urlsplit(p.path).path.split("/")[2]),
                    "query": parse_qs(urlsplit(p.path).query),
                    **json.loads(p.body),
                }
                for p in found
            ]
        time.sleep(0.1)


def order_row(order_id: int) -> m.Order:
    with new_session() as session:
        return session.get(m.Order, order_id)


def test_pay_on_the_sandbox_page_queues_the_order_and_tells_the_customer(office, receiver):
    order_id = place()
    link = link_for(order_id)
    assert link.link_url.startswith(f"{office}/pay/")
    page = requests.get(link.link_url, timeout=10)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    for text in (
        "Café Esquina Centro",
        "2 × Concha",
        "$36.00",
        "Pagar $36.00",
        "Rechazar el pago",
        "Este link vence a las",
        "Pago de prueba",
    ):
        assert text in page.text, text
    paid = requests.post(f"{link.link_url}/pay", timeout=30)
    assert paid.status_code == 200 and "¡Pagado! Tu número es C-001." in paid.text
    assert requests.post(f"{link.link_url}/pay", timeout=30).text.count("C-001") == 1  # pressed again: nothing
    row = order_row(order_id)
    assert (row.status, row.payment_status, row.ticket_code) == ("received", "paid", "C-001")
    [call] = triggers(receiver, 1)
    assert call == {
        "conversation": "centro:whatsapp:+525511112222",
        "query": {"output_channel": ["latest"], "token": ["bo-rasa-token"]},
        "name": "EXTERNAL_order_update",
        "entities": {"order_id": order_id, "event": "paid"},
    }
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.SandboxCharge)).scalar() == 1


def test_decline_in_english_releases_the_hold_and_an_expired_link_says_so(office, receiver):
    order_id = place("centro:whatsapp:+15551234567", language="en")
    with transaction() as session:
        session.get(m.Order, order_id).language = "en"
    link = link_for(order_id)
    page = requests.get(link.link_url, timeout=10)
    assert "Pay $36.00" in page.text and "Decline the payment" in page.text and 'lang="en"' in page.text
    declined = requests.post(f"{link.link_url}/decline", timeout=30)
    assert "The payment was declined. Ask for a new link on WhatsApp." in declined.text
    assert order_row(order_id).status == "pending_payment"
    assert triggers(receiver, 1)[0]["entities"] == {"order_id": order_id, "event": "declined"}
    expiring = place("centro:whatsapp:+525599990000")
    stale = link_for(expiring)
    with transaction() as session:  # the hold ran out a minute ago
        past = clock.now() - timedelta(minutes=1)
        session.execute(update(m.Reservation).where(m.Reservation.order_id == expiring).values(expires_at=past))
        session.execute(update(m.Payment).where(m.Payment.id == stale.payment_id).values(expires_at=past))
    assert "Este link ya venció" in requests.get(stale.link_url, timeout=10).text
    assert "Este link ya venció" in requests.post(f"{stale.link_url}/pay", timeout=30).text
    deadline = time.monotonic() + 10
    while order_row(expiring).status != "expired" and time.monotonic() < deadline:
        time.sleep(0.2)  # the sweep runs every second
    assert order_row(expiring).status == "expired"
    assert {t["entities"]["event"] for t in triggers(receiver, 2)} == {"declined", "expired"}
    assert requests.get(f"{office}/pay/not-a-token", timeout=10).status_code == 404


def test_forged_tampered_stale_and_unsigned_webhooks_are_refused(office):
    order_id = place()
    link = link_for(order_id)
    with new_session() as session:
        token = session.get(m.Payment, link.payment_id).provider_link_id
    body = json.dumps(
        {
            "id": "evt_sbx_forged",
            "type": "payment.succeeded",
            "created": int(time.time()),
            "data": {
                "link": token,
                "payment": "sbxpay_x",
                "reference": str(order_id),
                "amount": "36.00",
                "currency": "MXN",
            },
        }
    ).encode()
    url, now = f"{office}/webhooks/payments/sandbox", int(time.time())
    secret = SECRETS["COMANDA_SANDBOX_WEBHOOK_SECRET"]
    cases = [
        ({}, body, 401),
        ({SIGNATURE_HEADER: sign(body, "guessed", now)}, body, 403),
        ({SIGNATURE_HEADER: sign(body, secret, now)}, body.replace(b"36.00", b"3.60"), 403),
        ({SIGNATURE_HEADER: sign(body, secret, now - 600)}, body, 403),
        ({SIGNATURE_HEADER: sign(b"{}", secret, now)}, b"{}", 400),
    ]
    for headers, sent, status in cases:
        assert requests.post(url, data=sent, headers=headers, timeout=10).status_code == status
    assert requests.post(f"{office}/webhooks/payments/stripe", data=body, timeout=10).status_code == 404
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.PaymentEvent)).scalar() == 0
    assert order_row(order_id).status == "pending_payment"
    signed = requests.post(url, data=body, headers={SIGNATURE_HEADER: sign(body, secret, now)}, timeout=10)
    assert signed.json() == {"outcome": "paid"}


def test_the_queue_api_moves_orders_for_staff_only_and_tells_the_customer(office, receiver, staff_headers):
    order_id = place(method="cash")
    api = f"{office}/api/orders"
    assert requests.get(api, timeout=10).status_code == 401
    assert requests.get(api, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert requests.post(f"{api}/{order_id}/status", json={"status": "ready"}, timeout=10).status_code == 401
    listed = requests.get(
        api, params={"store": "centro", "status": "received"}, headers=staff_headers, timeout=10
    ).json()
    assert [(o["id"], o["ticket"], o["total"]) for o in listed["orders"]] == [(order_id, "C-001", "36.00")]
    for target in ("preparing", "ready", "picked_up"):
        moved = requests.post(f"{api}/{order_id}/status", json={"status": target}, headers=staff_headers, timeout=10)
        assert moved.status_code == 200 and moved.json()["status"] == target
    refused = [({"status": "preparing"}, 409), ({"status": "delivered"}, 400), ({"status": "received"}, 400), ({}, 400)]
    for body, status in refused:
        answer = requests.post(f"{api}/{order_id}/status", json=body, headers=staff_headers, timeout=10)
        assert answer.status_code == status, (body, answer.text)
    assert requests.get(f"{api}/999999", headers=staff_headers, timeout=10).status_code == 404
    shown = requests.get(f"{api}/{order_id}", headers=staff_headers, timeout=10).json()
    assert [h["to"] for h in shown["history"]] == ["pending_payment", "received", "preparing", "ready", "picked_up"]
    assert [t["entities"]["event"] for t in triggers(receiver, 3)] == ["preparing", "ready", "picked_up"]


def test_staff_confirm_a_spei_transfer_and_cancel_an_unpaid_order(office, receiver, staff_headers):
    spei, unpaid = place(method="spei"), place("centro:whatsapp:+525599990000")
    instructions = link_for(spei)
    assert instructions.spei.reference == f"{spei:07d}"
    api = f"{office}/api/orders"
    bad = requests.post(f"{api}/{spei}/spei-received", json={"amount": "lots"}, headers=staff_headers, timeout=10)
    assert bad.status_code == 400
    confirmed = requests.post(
        f"{api}/{spei}/spei-received",
        json={"amount": "36.00", "bank_reference": "BN123"},
        headers=staff_headers,
        timeout=30,
    ).json()
    assert confirmed["outcome"] == "paid" and confirmed["order"]["ticket"] == "C-001"
    again = requests.post(f"{api}/{spei}/spei-received", json={"amount": "36.00"}, headers=staff_headers, timeout=30)
    assert again.json()["outcome"] == "duplicate"
    link_for(unpaid)
    cancelled = requests.post(f"{api}/{unpaid}/status", json={"status": "cancelled"}, headers=staff_headers, timeout=10)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    paid_cancel = requests.post(f"{api}/{spei}/status", json={"status": "cancelled"}, headers=staff_headers, timeout=10)
    assert paid_cancel.status_code == 409 and paid_cancel.json()["code"] == "cannot_cancel"
    events = sorted(t["entities"]["event"] for t in triggers(receiver, 2))
    assert events == ["cancelled", "paid"]
    assert re.fullmatch(r"\d{7}", instructions.spei.reference) and instructions.amount == Decimal("36.00")
