"""Crashes (issue 10 items 6 and 7, issue 17's chaos list; `make test-chaos`), with the three processes
started one by one so that one can die alone:

- the Rasa server is killed (kill -9, from COMANDA_CRASH_AT at each point of the WhatsApp channel's path)
  and started again at once: every message is answered, exactly once, at the simulator's Graph API;
- the action server is killed (kill -9) in the middle of a checkout and started again a few seconds
  later: the customer gets the payment link once and one order is placed; if it stays down, the
  customer is told once and the message is parked for staff, and the conversation goes on after;
- the back office is killed (kill -9) in the middle of a payment webhook: the provider's retry pays once.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Iterator

import pytest
import requests
from sqlalchemy import func, select, update

from comanda import clock
from comanda import models as m
from comanda.db import dispose_engines, new_session, transaction
from comanda.migrate import upgrade
from comanda.services import outbox
from comanda.services.catalog_loader import load_catalog, read_catalog
from comanda.services.reservations import ledger_mismatches
from tests.helpers.paths import ROOT
from tests.helpers.processes import Processes, settled
from tests.helpers.simulator import (
    bot_messages,
    customer_says,
    new_wa_id,
    say_and_wait,
    tap,
    tap_and_wait,
    texts,
)
from tests.helpers.waiting import wait_for

LEASE_SECONDS = 6
TURN_RETRY_SECONDS = 25


@pytest.fixture(scope="module")
def processes(tmp_path_factory) -> Iterator[Processes]:
    if not (ROOT / "models" / "comanda.tar.gz").exists():
        pytest.fail("no trained model: run `make train` first", pytrace=False)
    stack = Processes(
        tmp_path_factory.mktemp("crashes"),
        COMANDA_INBOX_LEASE_SECONDS=str(LEASE_SECONDS),
        COMANDA_TURN_RETRY_SECONDS=str(TURN_RETRY_SECONDS),
    )
    upgrade(stack.db_url)
    with transaction(stack.db_url) as session:
        load_catalog(session, read_catalog(ROOT / "data" / "demo" / "catalog.yml"))
    dispose_engines()
    for name in ("backoffice", "actions", "rasa"):
        stack.start(name)
    yield stack
    stack.stop_all()
    dispose_engines()


# Where the Rasa server dies: after the acknowledgement (nothing done), after the claim, after NLU, with
# the first reply of a two-reply turn queued (the turn not saved), after Rasa saved the turn, after the
# inbox row was closed (replies not sent yet), and after the Graph API accepted a reply (not yet recorded).
POINTS = ["acknowledged", "claimed", "understood", "replying", "turn_saved", "processed", "sent"]


@pytest.mark.parametrize("point", POINTS)
def test_the_rasa_server_killed_at_any_point_answers_every_message_exactly_once(processes, point):
    """A send in flight when the process dies may or may not have reached Meta: it is given up, never
    resent (at most once: the "sent" point). So that each other point is tested alone, the customer's
    replies wait behind an earlier one of theirs (backing off) until the server has died: none is in
    flight at the crash."""
    stack = processes
    wa_id = new_wa_id()
    stack.kill("rasa")
    stack.start("rasa", COMANDA_CRASH_AT=point)
    waiting = None if point == "sent" else reply_backing_off(stack, wa_id)
    # A long message: the bot answers it and says it read only the start, two replies from one turn.
    customer_says(stack, wa_id, "muchas gracias " * 100)
    stack.wait_dead("rasa")
    if waiting:
        given_up(stack, waiting)
    stack.start("rasa")
    replies = wait_for(lambda: len(bot_messages(stack, wa_id)) >= 2 and bot_messages(stack, wa_id), timeout=120)
    assert replies, f"no answer after a crash at {point}:\n{stack.log_tail('rasa')}"
    assert wait_for(lambda: settled(stack, [wa_id]), timeout=120), stack.log_tail("rasa")
    said = texts(bot_messages(stack, wa_id))
    assert len(said) == 2 and "1,000" in said[0], said
    with new_session(stack.db_url) as session:
        row = session.execute(select(m.InboundMessage).where(m.InboundMessage.sender == wa_id)).scalar_one()
        assert row.status == "processed"


def reply_backing_off(stack: Processes, wa_id: str) -> int:
    """An earlier reply to this customer, waiting a day for its next attempt: later ones queue behind it."""
    with transaction(stack.db_url) as session:
        row_id = outbox.enqueue(
            session,
            "whatsapp",
            wa_id,
            {"type": "text", "text": {"body": "(an earlier reply)"}},
            store_id="centro",
            conversation_id=f"centro:whatsapp:+52{wa_id[3:]}",
        )
        session.execute(
            update(m.OutboundMessage)
            .where(m.OutboundMessage.id == row_id)
            .values(next_attempt_at=clock.now() + timedelta(days=1))
        )
    return row_id


def given_up(stack: Processes, row_id: int) -> None:
    with transaction(stack.db_url) as session:
        session.execute(update(m.OutboundMessage).where(m.OutboundMessage.id == row_id).values(status="given_up"))


def checkout_until_confirm(stack: Processes, wa_id: str):
    say_and_wait(stack, wa_id, "me das 3 de pastor y una horchata porfa", new=3, name="Xenon", timeout=90)
    [question] = say_and_wait(stack, wa_id, "es todo", timeout=90)
    [payment] = tap_and_wait(stack, wa_id, question, "Paso a recoger", timeout=90)
    [summary] = tap_and_wait(stack, wa_id, payment, "Tarjeta", timeout=90)
    return summary


def orders_of(stack: Processes, wa_id: str) -> int:
    with new_session(stack.db_url) as session:
        return session.execute(
            select(func.count()).where(m.Order.conversation_id == f"centro:whatsapp:+52{wa_id[3:]}")
        ).scalar()


def test_the_action_server_killed_mid_checkout_and_restarted_places_one_order_and_answers_once(processes):
    stack = processes
    wa_id = new_wa_id()
    summary = checkout_until_confirm(stack, wa_id)
    before = len(bot_messages(stack, wa_id))
    retries = stack.log_tail("rasa", 10**7).count("again in")
    stack.kill("actions")
    tap(stack, wa_id, summary, "Confirmar")  # acknowledged; its turn fails while the action server is down
    assert wait_for(lambda: stack.log_tail("rasa", 10**7).count("again in") > retries, timeout=60)
    stack.start("actions")
    assert wait_for(lambda: settled(stack, [wa_id]), timeout=120), stack.log_tail("rasa")
    after = bot_messages(stack, wa_id)[before:]
    assert len(after) == 1 and after[0]["message"]["interactive"]["type"] == "cta_url", texts(after)
    assert orders_of(stack, wa_id) == 1


def test_an_action_server_that_stays_down_gets_the_customer_told_once_and_the_message_parked(processes):
    stack = processes
    wa_id = new_wa_id()
    say_and_wait(stack, wa_id, "hola", timeout=90)
    before = len(bot_messages(stack, wa_id))
    stack.kill("actions")
    try:
        customer_says(stack, wa_id, "me das 2 de pastor")
        assert wait_for(lambda: settled(stack, [wa_id]), timeout=TURN_RETRY_SECONDS + 90), stack.log_tail("rasa")
    finally:
        stack.start("actions")
    [told] = texts(bot_messages(stack, wa_id)[before:])
    assert told.startswith("Perdón, tuve un problema para responder tu mensaje")
    with new_session(stack.db_url) as session:
        row = (
            session.execute(
                select(m.InboundMessage).where(m.InboundMessage.sender == wa_id).order_by(m.InboundMessage.id.desc())
            )
            .scalars()
            .first()
        )
        assert row.status == "parked" and "ActionFailed" in row.error
    assert texts(say_and_wait(stack, wa_id, "¿a qué hora abren?", timeout=90))  # the conversation goes on


def test_the_back_office_killed_mid_payment_webhook_pays_the_order_once_on_the_providers_retry(processes):
    """The back office dies (kill -9) right after the webhook's payment was committed, before answering
    the provider; started again, the provider's retry (the sandbox's webhook outbox) is a duplicate: one
    payment, one event, one ticket, one sale in the stock ledger, the customer told once. The simulator
    lives in the back office, so its record of the chat starts again with the restart."""
    stack = processes
    wa_id = new_wa_id()
    summary = checkout_until_confirm(stack, wa_id)
    [link] = tap_and_wait(stack, wa_id, summary, "Confirmar", timeout=90)
    url = link["message"]["interactive"]["action"]["parameters"]["url"]
    stack.kill("backoffice")
    stack.start("backoffice", COMANDA_CRASH_AT="payment_applied")
    with pytest.raises(requests.RequestException):
        requests.post(f"{url}/pay", timeout=60)  # the press's own post kills it: no answer
    stack.wait_dead("backoffice")
    stack.start("backoffice")
    conversation = f"centro:whatsapp:+52{wa_id[3:]}"

    def webhook_delivered() -> bool:
        with new_session(stack.db_url) as session:
            return session.execute(select(m.SandboxWebhook.status)).scalars().all()[-1] == "delivered"

    assert wait_for(webhook_delivered, timeout=120), stack.log_tail("backoffice")
    paid = wait_for(lambda: [t for t in texts(bot_messages(stack, wa_id)) if "¡Pagado!" in t], timeout=90)
    assert paid and len(paid) == 1, texts(bot_messages(stack, wa_id))
    with new_session(stack.db_url) as session:
        [order] = session.execute(select(m.Order).where(m.Order.conversation_id == conversation)).scalars()
        [payment] = session.execute(select(m.Payment).where(m.Payment.order_id == order.id)).scalars()
        assert (order.payment_status, payment.status) == ("paid", "paid") and order.ticket_code in paid[0]
        events = session.execute(select(m.PaymentEvent).where(m.PaymentEvent.payment_id == payment.id)).scalars()
        assert [e.outcome for e in events] == ["paid"]
        said = session.execute(
            select(func.count()).where(m.Notification.order_id == order.id, m.Notification.event == "paid")
        ).scalar()
        assert said == 1
        sales = Counter(
            session.execute(
                select(m.StockMovement.stock_item_id).where(
                    m.StockMovement.reason == "sale", m.StockMovement.reference_id == str(order.id)
                )
            ).scalars()
        )
        assert sales and max(sales.values()) == 1, sales
        assert ledger_mismatches(session) == []
    assert "duplicate" in stack.log_tail("backoffice", 10**6)
