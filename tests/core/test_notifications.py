"""Proactive order updates delivered to a fake Rasa HTTP server that checks what the real one needs:
the path (the conversation id as Rasa reads it, undecoded), ``output_channel=latest``, the token, the intent and
entities; once each, in order per conversation, retried with backoff while Rasa is down."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Dict, Iterator, List
from urllib.parse import unquote

import pytest
import requests
from sqlalchemy import select

from backoffice.dispatch import deliver_due
from comanda import clock
from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.errors import InvalidInput
from comanda.services import notifications, orders
from tests.helpers.fake_http import Answer, FakeHTTP, Request
from tests.helpers.net import free_port
from tests.helpers.payments import ANA, pay, place, start
from tests.helpers.threads import run_together

pytestmark = pytest.mark.usefixtures("sandbox_settings")

TOKEN = "rasa-test-token"


class StrictRasa(FakeHTTP):
    """Answers trigger_intent like Rasa: 200 with the tracker when path, token and body are right."""

    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []
        self.answers: List[int] = []  # statuses to answer next, then 200
        super().__init__()

    def respond(self, request: Request) -> Answer:
        body = request.json()
        status = self.answers.pop(0) if self.answers else 200
        if request.query.get("token") != [TOKEN]:
            status = 401
        elif not request.path.endswith("/trigger_intent") or request.query.get("output_channel") != ["latest"]:
            status = 404
        elif body.get("name") != "EXTERNAL_order_update" or set(body.get("entities", {})) != {"order_id", "event"}:
            status = 400
        if status == 200:
            self.received.append(
                {"conversation": unquote(request.path.split("/")[2]), "raw_path": request.path, **body}
            )
        return status, {"tracker": {}} if status == 200 else {"message": "refused"}


@pytest.fixture
def rasa() -> Iterator[StrictRasa]:
    with StrictRasa() as fake:
        yield fake


def rows() -> List[tuple]:
    with new_session() as session:
        return session.execute(
            select(m.Notification.event, m.Notification.status, m.Notification.attempts).order_by(m.Notification.id)
        ).all()


def paid_order(conversation: str = ANA) -> int:
    order_id = place(conversation)
    pay(start(order_id).payment_id)
    return order_id


def test_an_update_reaches_rasa_once_with_the_token_intent_and_entities(demo, rasa):
    order_id = paid_order()
    assert deliver_due(rasa.url, TOKEN) == 1
    assert deliver_due(rasa.url, TOKEN) == 0
    assert rasa.received == [
        {
            "conversation": ANA,
            "raw_path": "/conversations/centro:whatsapp:+525511112222/trigger_intent",
            "name": "EXTERNAL_order_update",
            "entities": {"order_id": order_id, "event": "paid"},
        }
    ]
    assert rows() == [("paid", "sent", 1)]
    with transaction() as session:  # announcing the same thing again is a no-op
        assert notifications.notify(session, session.get(m.Order, order_id), "paid") is None


def test_rasa_down_is_retried_with_backoff_and_refusals_are_final(demo, rasa, caplog):
    now = clock.now()
    set_clock(lambda: now)
    try:
        paid_order()
        rasa.answers = [503]
        assert deliver_due(rasa.url, TOKEN) == 0
        assert rows() == [("paid", "queued", 1)]
        assert deliver_due(rasa.url, TOKEN) == 0  # not due yet: 2 s later
        unreachable = f"http://127.0.0.1:{free_port()}"
        set_clock(lambda: now + timedelta(seconds=3))
        assert deliver_due(unreachable, TOKEN) == 0
        assert rows() == [("paid", "queued", 2)]
        set_clock(lambda: now + timedelta(seconds=10))
        assert deliver_due(rasa.url, TOKEN) == 1 and rows() == [("paid", "sent", 3)]
        paid_order("centro:whatsapp:+525599990000")
        rasa.answers = [400]
        assert deliver_due(rasa.url, TOKEN) == 0 and rows()[-1] == ("paid", "failed", 1)
        paid_order("centro:whatsapp:+525599990001")
        with caplog.at_level(logging.ERROR):
            for attempt in range(notifications.MAX_ATTEMPTS):
                set_clock(lambda attempt=attempt: now + timedelta(hours=attempt + 1))
                deliver_due(unreachable, TOKEN)
        assert rows()[-1] == ("paid", "given_up", notifications.MAX_ATTEMPTS)
        assert "giving up" in caplog.text and TOKEN not in caplog.text
    finally:
        set_clock(None)


def test_concurrent_dispatchers_never_deliver_one_row_twice(demo, rasa):
    for n in range(8):
        paid_order(f"centro:whatsapp:+5255100000{n:02d}")
    delivered = run_together(4, lambda _n: deliver_due(rasa.url, TOKEN, limit=8))
    assert sum(delivered) == 8 and len(rasa.received) == 8
    assert len({r["conversation"] for r in rasa.received}) == 8
    assert {status for _, status, _ in rows()} == {"sent"}


def test_a_conversation_hears_its_updates_in_order(demo, rasa):
    order_id = paid_order()
    with transaction() as session:
        order = session.get(m.Order, order_id)
        orders.set_status(session, order, "preparing", "staff:1")
        notifications.notify(session, order, "preparing")
    rasa.answers = [500]
    assert deliver_due(rasa.url, TOKEN) == 0  # "paid" failed: "preparing" must wait for it
    assert rows() == [("paid", "queued", 1), ("preparing", "queued", 0)]
    later = clock.now() + timedelta(seconds=5)
    set_clock(lambda: later)
    try:
        assert deliver_due(rasa.url, TOKEN) == 2  # paid, then preparing, which waited for it to leave
    finally:
        set_clock(None)
    assert [r["entities"]["event"] for r in rasa.received] == ["paid", "preparing"]


def test_a_dispatcher_holds_only_the_row_it_is_posting(demo, rasa, monkeypatch):
    """Killed mid-post, a dispatcher loses at most that row (of unknown fate, given up): the rest are still
    queued for the other replicas' dispatchers, not claimed in a batch it never reached."""
    for n in range(3):
        paid_order(f"centro:whatsapp:+5255200000{n:02d}")
    claimed_at_post = []
    post = requests.post

    def counting(*args, **kwargs):
        claimed_at_post.append([status for _, status, _ in rows()].count("sending"))
        return post(*args, **kwargs)

    monkeypatch.setattr(requests, "post", counting)
    assert deliver_due(rasa.url, TOKEN) == 3 and claimed_at_post == [1, 1, 1]


def test_a_row_interrupted_while_sending_is_not_sent_again(demo, rasa):
    paid_order()
    with transaction() as session:
        assert len(notifications.claim_due(session)) == 1
    with transaction() as session:
        assert notifications.abandon_interrupted(session) == 0  # its dispatcher may still be at it
    lease_ended = clock.now() + timedelta(seconds=notifications.LEASE_SECONDS + 1)
    set_clock(lambda: lease_ended)
    try:
        with transaction() as session:
            assert notifications.abandon_interrupted(session) == 1  # the lease ran out: that dispatcher died
    finally:
        set_clock(None)
    assert deliver_due(rasa.url, TOKEN) == 0 and rows() == [("paid", "given_up", 1)]
    with transaction() as session:
        with pytest.raises(InvalidInput):
            notifications.notify(session, session.get(m.Order, 1), "teleported")
