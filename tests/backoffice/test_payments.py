"""Payments and the order queue in the real back-office process (as `comanda run` starts it), on SQLite
and PostgreSQL: the sandbox's hosted checkout (Pay → a signed webhook to itself → the order in the
queue with its ticket, told to the customer through Rasa's trigger_intent), forged webhooks refused,
the staff queue API with its token, SPEI confirmed by staff, and the expiry sweep."""

from __future__ import annotations

import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import unquote, urlsplit

import pytest
import requests
from sqlalchemy import func, select, update

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import orders, payments
from integrations.payments import payment_provider, sandbox
from integrations.payments.sandbox import SIGNATURE_HEADER, SandboxProvider, sign
from tests.helpers.backoffice import backoffice_env, start, stop
from tests.helpers.fake_http import Request
from tests.helpers.net import free_port
from tests.helpers.payment_fakes import (
    DEEP,
    MP_SECRET,
    MP_TOKEN,
    STRIPE_KEY,
    STRIPE_WHSEC,
    FakeMercadoPago,
    FakeStripe,
    mp_notification,
    stripe_event,
)
from tests.helpers.payments import place, sandbox_event, signed
from tests.helpers.receiver import Receiver
from tests.helpers.waiting import wait_for

SECRETS = {
    "COMANDA_SANDBOX_WEBHOOK_SECRET": "bo-sandbox-secret",
    "COMANDA_RASA_TOKEN": "bo-rasa-token",
}


def run_office(database: str, receiver: Receiver, log: Path, monkeypatch, **extra: str) -> Iterator[str]:
    """A back office on the test's database, with the sandbox, fast background loops and Rasa = receiver."""
    port = free_port()
    env = {
        **backoffice_env(database, port, receiver.url),
        **SECRETS,
        "COMANDA_PAYMENT_PROVIDER": "sandbox",
        "COMANDA_PAYMENT_SWEEP_SECONDS": "1",
        "COMANDA_NOTIFY_POLL_SECONDS": "0.2",
        "COMANDA_SANDBOX_WEBHOOK_POLL_SECONDS": "0.2",
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with receiver.lock:
        receiver.posts.clear()
    proc = start(port, env, log)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture
def office(demo, receiver: Receiver, tmp_path: Path, monkeypatch) -> Iterator[str]:
    yield from run_office(demo, receiver, tmp_path / "backoffice.log", monkeypatch)


@pytest.fixture
def fakes() -> Iterator[Tuple[FakeStripe, FakeMercadoPago]]:
    stripe_fake, mercadopago_fake = FakeStripe(), FakeMercadoPago()
    yield stripe_fake, mercadopago_fake
    stripe_fake.close()
    mercadopago_fake.close()


@pytest.fixture
def office_with_providers(demo, receiver: Receiver, fakes, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """The office, with Stripe's and Mercado Pago's webhooks configured too (their APIs: the fakes)."""
    stripe_fake, mercadopago_fake = fakes
    yield from run_office(
        demo,
        receiver,
        tmp_path / "backoffice.log",
        monkeypatch,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=STRIPE_WHSEC,
        STRIPE_API_URL=stripe_fake.url,
        MERCADOPAGO_ACCESS_TOKEN=MP_TOKEN,
        MERCADOPAGO_WEBHOOK_SECRET=MP_SECRET,
        MERCADOPAGO_API_URL=mercadopago_fake.url,
    )


def link_for(order_id: int) -> payments.PaymentInstructions:
    with transaction() as session:
        return payments.start_payment(session, session.get(m.Order, order_id), SandboxProvider.from_settings())


def triggers(receiver: Receiver, count: int, timeout: float = 10) -> List[Dict[str, Any]]:
    """The trigger_intent calls Rasa received (path, query, body), waiting for ``count`` of them."""

    def found() -> List[Request]:
        with receiver.lock:
            return [p for p in receiver.posts if "/trigger_intent" in p.path]

    assert wait_for(lambda: len(found()) >= count, timeout=timeout), (
        f"expected {count} trigger_intent calls, got {len(found())}"
    )
    return [{"conversation": unquote(p.path.split("/")[2]), "query": p.query, **p.json()} for p in found()]


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
    assert wait_for(lambda: order_row(expiring).status == "expired", timeout=10)  # the sweep runs every second
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


def test_a_charge_whose_webhook_never_left_is_delivered_by_the_outbox_loop_and_pays_once(office, receiver):
    """A back office died after Pay booked the charge and before its webhook was posted: the charge and
    its queued webhook are in the database (as Pay commits them), nothing was posted, and the time Pay's
    own attempt had ran out. The running back office's outbox loop delivers it; the order is paid once
    and the customer told once."""
    order_id = place()
    link = link_for(order_id)
    with new_session() as session:
        token = session.get(m.Payment, link.payment_id).provider_link_id
    sandbox.record_charge(token, str(order_id), "paid", Decimal("36.00"), "MXN")
    assert "Estamos confirmando tu pago" in requests.get(link.link_url, timeout=10).text  # no second charge
    with transaction() as session:  # the dead press's attempt is over
        session.execute(update(m.SandboxWebhook).values(next_attempt_at=clock.now() - timedelta(seconds=1)))
    assert wait_for(lambda: order_row(order_id).status == "received" and _webhooks_left() == 0, timeout=15)
    with new_session() as session:
        webhooks = session.execute(select(m.SandboxWebhook.status)).scalars().all()
        events = session.execute(select(m.PaymentEvent.outcome)).scalars().all()
    assert webhooks == ["delivered"] and events == ["paid"] and order_row(order_id).ticket_code == "C-001"
    assert [t["entities"]["event"] for t in triggers(receiver, 1)] == ["paid"]


def test_pay_pressed_many_times_at_once_sells_once_and_flags_any_second_charge(office, receiver):
    order_id = place()
    link = link_for(order_id)
    with ThreadPoolExecutor(max_workers=4) as presses:
        answers = list(presses.map(lambda _: requests.post(f"{link.link_url}/pay", timeout=60), range(4)))
    assert all(answer.status_code == 200 for answer in answers)
    assert wait_for(lambda: order_row(order_id).status == "received" and _webhooks_left() == 0, timeout=15)
    with new_session() as session:
        charges = session.execute(select(func.count()).select_from(m.SandboxCharge)).scalar()
        rows = session.execute(
            select(m.Payment.status, m.Payment.flag_reason).where(m.Payment.order_id == order_id).order_by(m.Payment.id)
        ).all()
    # however many presses booked a charge before the page showed "paid", each one is accounted for
    assert rows == [("paid", None)] + [("flagged", "already_paid")] * (charges - 1)
    assert (order_row(order_id).payment_status, order_row(order_id).ticket_code) == ("paid", "C-001")
    told = [t["entities"]["event"] for t in triggers(receiver, charges)]
    assert sorted(told) == ["paid"] + ["paid_twice"] * (charges - 1)


def _webhooks_left() -> int:
    with new_session() as session:
        return session.execute(
            select(func.count()).select_from(m.SandboxWebhook).where(m.SandboxWebhook.status == "pending")
        ).scalar()


def test_a_cancelled_orders_payment_page_says_it_was_cancelled_in_its_language(office):
    cases = [
        ("centro:whatsapp:+525511112222", "es", "Este pedido se canceló", "venció"),
        ("centro:whatsapp:+15551234567", "en", "This order was cancelled", "expired"),
    ]
    for conversation, language, said, not_said in cases:
        order_id = place(conversation, language=language)
        with transaction() as session:
            session.get(m.Order, order_id).language = language
        link = link_for(order_id)
        with transaction() as session:
            orders.cancel_order(session, session.get(m.Order, order_id), "customer")
        for page in (requests.get(link.link_url, timeout=10), requests.post(f"{link.link_url}/pay", timeout=30)):
            assert page.status_code == 200 and said in page.text and not_said not in page.text, page.text
            assert 'data-state="cancelled"' in page.text
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.SandboxCharge)).scalar() == 0  # Pay did nothing


# --- what no webhook may do: crash the handler or make the back office read a huge body -----------


def test_every_payment_webhook_answers_400_to_deep_json_and_numbers_no_float_holds(office_with_providers):
    base = office_with_providers
    sandbox_secret = SECRETS["COMANDA_SANDBOX_WEBHOOK_SECRET"]
    link = link_for(place())
    session = {"id": "cs_test_1", "object": "checkout.session", "payment_status": "paid", "currency": "mxn"}
    mp_body = b'{"type": "payment", "data": {"id": "1000001"}, "extra": @}'
    _, mp_headers, mp_query = mp_notification("1000001", secret=MP_SECRET)
    for literal in (DEEP, "Infinity", "-Infinity", "NaN", "1e999999"):
        body = sandbox_event(link.payment_id, {}, {"amount": literal})
        sent = [
            ("sandbox", body, signed(body, secret=sandbox_secret), {}),
            ("stripe", *stripe_event("checkout.session.completed", session, literals={"amount_total": literal}), {}),
            ("mercadopago", mp_body.replace(b"@", literal.encode()), mp_headers, mp_query),
        ]
        for name, raw, headers, query in sent:
            answer = requests.post(
                f"{base}/webhooks/payments/{name}", data=raw, headers=headers, params=query, timeout=30
            )
            assert answer.status_code == 400, (name, literal[:10], answer.status_code, answer.text[:200])
            assert "error" in answer.json()
    with new_session() as db:
        assert db.execute(select(func.count()).select_from(m.PaymentEvent)).scalar() == 0
    assert order_row(link.order_id).status == "pending_payment"


def test_a_refund_notification_that_overtakes_comandas_record_is_answered_503_then_applied(
    office_with_providers, fakes
):
    """Mercado Pago's refund notification arrives before Comanda recorded the refund's id: 503 (nothing
    recorded), Mercado Pago sends it again, and then it settles the refund once."""
    base, (_, mercadopago_fake) = office_with_providers, fakes
    order_id = place()
    with transaction() as session:
        link = payments.start_payment(session, session.get(m.Order, order_id), payment_provider("mercadopago"))
    paid_id = mercadopago_fake.pay(link_id_of(link.payment_id))

    def notify() -> requests.Response:
        body, headers, query = mp_notification(paid_id, secret=MP_SECRET)
        return requests.post(
            f"{base}/webhooks/payments/mercadopago", data=body, headers=headers, params=query, timeout=30
        )

    assert notify().json() == {"outcome": "paid"}
    mercadopago_fake.refund_status = "in_process"
    asked = payments.refund(payment_provider, link.payment_id, Decimal("36.00"), "cancelled", "staff:1", "ret:1")
    with transaction() as session:  # Comanda has not recorded Mercado Pago's answer yet
        session.get(m.Refund, asked.id).provider_refund_id = None
    mercadopago_fake.settle_refund(int(asked.provider_refund_id), "approved")
    early = notify()
    assert (early.status_code, early.json()) == (503, {"error": "try again later"})
    with transaction() as session:  # now it has
        session.get(m.Refund, asked.id).provider_refund_id = asked.provider_refund_id
    assert notify().json() == {"outcome": "refund_succeeded"}
    assert notify().json() == {"outcome": "duplicate"}
    with new_session() as session:
        assert session.get(m.Refund, asked.id).status == "succeeded"
    assert order_row(order_id).payment_status == "refunded"


def link_id_of(payment_id: int) -> str:
    with new_session() as session:
        return session.get(m.Payment, payment_id).provider_link_id


def test_a_body_over_the_cap_is_refused_with_413_before_it_is_read(office):
    """Only the headers are sent: the answer comes without waiting for 2 MiB that never arrive."""
    host, port = urlsplit(office).hostname, urlsplit(office).port
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(
            b"POST /webhooks/payments/sandbox HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2097152\r\n\r\n"
        )
        answer = connection.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body) == {"error": "the request body is larger than 1048576 bytes"}
    sent = requests.post(f"{office}/webhooks/payments/sandbox", data=b"x" * 1_048_577, timeout=30)
    assert sent.status_code == 413
    assert requests.get(f"{office}/health", timeout=10).status_code == 200
