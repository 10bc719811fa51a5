"""One replica of `make run-cluster` killed (kill -9) behind HAProxy in the middle of a burst (issue 17's chaos
list): two Rasa servers, two action servers and two back offices on PostgreSQL and Redis, customers writing
at once through the balancer as Meta delivers (signed webhooks, posted again until acknowledged), some
ordering and paying, others sending several messages without waiting for the answers.

Each replica is killed at a moment that matters: a Rasa server while it holds a message it claimed, an
action server and a back office while HAProxy has a request of theirs in flight; never while a reply is on
its way to the Graph API or a notification to Rasa (a send cut by the kill may or may not have arrived and
is never resent: at most once, README "Faults survived"). Nothing is lost and nothing is done twice,
counted at the fake Graph API (every reply once, a customer's replies in the order of their messages), in
the inbox, the outbox, Rasa's tracker, orders, payments, tickets and the stock ledger; the surviving replica
carries the load meanwhile, and the killed one, started again by the cluster, is given work again. The back
office the simulator lives in (it plays Meta) is never the one killed.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
from sqlalchemy import func, select

from comanda import models as m
from comanda.db import new_session
from comanda.services.reservations import ledger_mismatches
from tests.helpers.cluster import Cluster, Customer, body, orders_and_pays, running_cluster, tracker_messages
from tests.helpers.databases import PG_URL
from tests.helpers.simulator import text_message
from tests.helpers.waiting import wait_for

LEASE_SECONDS = 10  # a dead Rasa server's messages are taken over within this (its locks: within 10 s too)
REACHED_META = ("sent", "delivered", "read")
RESTART_SECONDS = 600  # a Rasa server loads its model again: minutes on a busy machine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    if not PG_URL:
        pytest.fail("the chaos tests need PostgreSQL: set COMANDA_TEST_DATABASE_URL", pytrace=False)
    with running_cluster(tmp_path_factory.mktemp("replicas"), COMANDA_INBOX_LEASE_SECONDS=str(LEASE_SECONDS)) as found:
        yield found


def chats(customer: Customer) -> None:
    """Three messages at once, without waiting for the answers; then until each is answered."""
    for said in ("hola", "¿a qué hora abren?", "¿dónde están?"):
        customer.posts(text_message(customer.wa_id, said))
    assert wait_for(lambda: all(customer.answered(i) for i in customer.sent), timeout=240), customer.sent


def burst(
    cluster: Cluster, orderers: int, chatters: int, kill: Callable[[List[Customer]], None]
) -> Tuple[List[Customer], List[Customer]]:
    """Customers ordering and paying, and customers chatting, all at once, with ``kill`` running meanwhile
    (given them all); returns them once each was answered and the paying ones were told "¡Pagado!"."""
    paying = [Customer(cluster) for _ in range(orderers)]
    chatting = [Customer(cluster) for _ in range(chatters)]
    with ThreadPoolExecutor(orderers + chatters + 1) as pool:
        killer = pool.submit(kill, paying + chatting)
        work = [pool.submit(orders_and_pays, c) for c in paying] + [pool.submit(chats, c) for c in chatting]
        for done in [killer, *work]:
            done.result()
    return paying, chatting


def processed(customers: List[Customer]) -> int:
    with new_session() as session:
        return session.execute(
            select(func.count()).where(
                m.InboundMessage.conversation_id.in_([c.conversation for c in customers]),
                m.InboundMessage.status == "processed",
            )
        ).scalar()


def holding(pid: int) -> int:
    """Messages a Rasa server (by its pid, part of its lease owner) has claimed and not answered yet."""
    with new_session() as session:
        return session.execute(
            select(func.count()).where(
                m.InboundMessage.status == "processing", m.InboundMessage.lease_owner.like(f"%:{pid}:%")
            )
        ).scalar()


def mid_send(queue: type = m.OutboundMessage) -> bool:
    """A reply is on its way to the Graph API (``queue``: or a notification to Rasa, m.Notification): the kill
    waits for a moment without one, so that every count below is exact (see the module)."""
    with new_session() as session:
        return session.execute(select(queue.id).where(queue.status == "sending")).first() is not None


def in_flight(cluster: Cluster, replica: str) -> bool:
    """HAProxy has a request of this replica's open right now (its column scur)."""
    return int(cluster.stats()[replica]["scur"]) > 0


def kill_when(cluster: Cluster, replica: str, moment: Callable[[], bool], pid: Optional[int] = None) -> Dict[str, int]:
    """kill -9 of the replica (``pid``: the process ``moment`` watches) as soon as ``moment`` comes; HAProxy's
    request counts then."""
    pid = pid or cluster.pid(replica)
    assert wait_for(moment, timeout=240, interval=0.05), f"the moment to kill {replica} never came"
    cluster.kill(replica, pid)
    return cluster.sessions()


def served_once_and_in_order(customers: List[Customer]) -> None:
    """Every message processed once and in Rasa's tracker once, in the order sent; every reply at the Graph API
    once, a customer's replies in the order of their messages."""
    with new_session() as session:
        for customer in customers:
            inbound = session.execute(
                select(m.InboundMessage.external_id, m.InboundMessage.status).where(
                    m.InboundMessage.conversation_id == customer.conversation
                )
            ).all()
            assert sorted(inbound) == sorted((sent, "processed") for sent in customer.sent), inbound
            assert tracker_messages(session, customer.conversation) == customer.sent
            outbox = session.execute(
                select(m.OutboundMessage)
                .where(m.OutboundMessage.conversation_id == customer.conversation)
                .order_by(m.OutboundMessage.id)
            ).scalars()
            reached = [row for row in outbox if row.status in REACHED_META]
            at_meta = customer.replies()
            assert [r["id"] for r in at_meta] == [row.external_id for row in reached], [body(r) for r in at_meta]
            # each reply's dedupe key is "<the message it answers>:<n>": answers follow the messages' order
            answering = [customer.sent.index(row.dedupe_key.rsplit(":", 1)[0]) for row in reached if row.dedupe_key]
            assert answering == sorted(answering) and set(answering) == set(range(len(customer.sent))), answering


def paid_once(customers: List[Customer]) -> None:
    """One order each, paid once (one payment, one event, one "paid" notification, one "¡Pagado!" with its
    ticket), one hold and one sale per item in the stock ledger, and the ledger agreeing with the levels."""
    tickets = []
    with new_session() as session:
        for customer in customers:
            [order] = session.execute(select(m.Order).where(m.Order.conversation_id == customer.conversation)).scalars()
            assert (order.status, order.payment_status) == ("received", "paid")
            [payment] = session.execute(select(m.Payment).where(m.Payment.order_id == order.id)).scalars()
            events = session.execute(select(m.PaymentEvent.outcome).where(m.PaymentEvent.payment_id == payment.id))
            assert (payment.status, events.scalars().all()) == ("paid", ["paid"])
            told = session.execute(
                select(func.count()).where(m.Notification.order_id == order.id, m.Notification.event == "paid")
            ).scalar()
            assert told == 1
            paid = [body(r) for r in customer.replies() if "¡Pagado!" in body(r)]
            assert len(paid) == 1 and order.ticket_code in paid[0], paid
            tickets.append(order.ticket_code)
            sales = Counter(
                session.execute(
                    select(m.StockMovement.stock_item_id).where(
                        m.StockMovement.reason == "sale", m.StockMovement.reference_id == str(order.id)
                    )
                ).scalars()
            )
            assert sales and set(sales.values()) == {1}, sales
            holds = session.execute(select(func.count()).where(m.Reservation.order_id == order.id)).scalar()
            assert holds == 1
        assert ledger_mismatches(session) == []
    assert len(set(tickets)) == len(tickets), tickets


def rejoins(cluster: Cluster, replica: str, starts: int, request: Callable[[], None]) -> None:
    """The cluster started the killed replica again, HAProxy sees it up, and gives it work again (``request``:
    one request of its kind through the balancer)."""
    assert wait_for(lambda: cluster.starts(replica) > starts, timeout=RESTART_SECONDS), cluster.log()[-4000:]
    assert wait_for(lambda: cluster.stats()[replica]["status"] == "UP", timeout=30), cluster.stats()[replica]
    given = cluster.sessions()[replica]
    assert wait_for(lambda: request() or cluster.sessions()[replica] > given, timeout=120, interval=0), (
        f"{replica} was started again but given nothing: {cluster.sessions()}"
    )


def greets(cluster: Cluster) -> None:
    """A customer says hello (a Rasa turn that runs custom actions) and is answered."""
    assert body(Customer(cluster).says("hola")[0]).startswith("¡Hola!")


def after_kill(cluster: Cluster, survivor: str, at_kill: Dict[str, int], victim: str) -> None:
    """The survivor carried the rest of the burst; HAProxy's health checks took the victim out."""
    assert cluster.sessions()[survivor] > at_kill[survivor], (at_kill, cluster.sessions())
    assert int(cluster.stats()[victim]["chkdown"]) >= 1, cluster.stats()[victim]


def test_a_rasa_server_killed_while_it_holds_messages_loses_and_doubles_nothing(cluster):
    """The Rasa server dies with messages it claimed: their leases run out and the other one answers them
    (once: a turn Rasa saved is not run again, replies have dedupe keys); Meta posts the webhooks it never
    answered again and the other one takes them."""
    victim, survivor = "rasa-2", "rasa-1"
    pid, starts = cluster.pid(victim), cluster.starts(victim)
    assert pid
    at_kill: Dict[str, Dict[str, int]] = {}

    def kill(customers: List[Customer]) -> None:
        at_kill[victim] = kill_when(
            cluster,
            victim,
            lambda: processed(customers) >= 6 and holding(pid) and not mid_send() and not mid_send(m.Notification),
            pid,
        )

    paying, chatting = burst(cluster, 2, 4, kill)
    served_once_and_in_order(paying + chatting)
    paid_once(paying)
    after_kill(cluster, survivor, at_kill[victim], victim)
    rejoins(cluster, victim, starts, lambda: greets(cluster))


def test_an_action_server_and_a_back_office_killed_mid_request_lose_and_double_nothing(cluster):
    """The action server dies with an action call in flight: Rasa's turn fails and is run again on the other one
    (an action that did its work already answers from action_runs). The back office dies with a request in
    flight (a payment page, a press of Pay, a payment webhook): the customer presses again, the provider
    posts its webhook again, and the order is paid once."""
    victims = {"actions-2": "actions-1", "backoffice-2": "backoffice-1"}
    starts = {victim: cluster.starts(victim) for victim in victims}
    at_kill: Dict[str, Dict[str, int]] = {}

    def kill(customers: List[Customer]) -> None:
        for victim in victims:
            at_kill[victim] = kill_when(
                cluster,
                victim,
                lambda v=victim: processed(customers) >= 6 and in_flight(cluster, v) and not mid_send(m.Notification),
            )

    paying, chatting = burst(cluster, 3, 2, kill)
    served_once_and_in_order(paying + chatting)
    paid_once(paying)
    for victim, survivor in victims.items():
        after_kill(cluster, survivor, at_kill[victim], victim)
    rejoins(cluster, "actions-2", starts["actions-2"], lambda: greets(cluster))
    rejoins(cluster, "backoffice-2", starts["backoffice-2"], lambda: requests.get(f"{cluster.backoffice}/health"))
