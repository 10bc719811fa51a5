"""`comanda run-cluster` end to end: two Rasa servers, two action servers and two back offices behind
HAProxy, on a PostgreSQL database of their own and Redis (tests/helpers/cluster.py). Customers order and
pay through the balancer at the same time (signed webhooks as Meta posts them, replies at the simulator's
Graph API); every message is answered once and in order, and both replicas of each kind did part of the
work (HAProxy's own counters say so). Small on purpose: the machine is shared.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.cluster import Cluster, Customer, orders_and_pays, running_cluster, tracker_messages


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as found:
        yield found


def test_customers_are_served_through_two_replicas_of_everything_once_and_in_order(cluster):
    customers = [Customer(cluster) for _ in range(3)]
    with ThreadPoolExecutor(len(customers)) as pool:
        paid = list(pool.map(orders_and_pays, customers))
    assert all(text.startswith("✅ ¡Pagado! Tu número es") for text in paid), paid

    with new_session() as session:
        for customer in customers:
            [order] = session.execute(select(m.Order).where(m.Order.conversation_id == customer.conversation)).scalars()
            assert (order.status, order.payment_status, order.total) == ("received", "paid", 44)
            payments = session.execute(select(m.Payment).where(m.Payment.order_id == order.id)).scalars().all()
            assert [p.status for p in payments] == ["paid"]
            # every message was processed once, by one replica
            inbound = session.execute(
                select(m.InboundMessage.external_id, m.InboundMessage.status, m.InboundMessage.attempts)
                .where(m.InboundMessage.conversation_id == customer.conversation)
                .order_by(m.InboundMessage.id)
            ).all()
            assert [(i.external_id, i.status, i.attempts) for i in inbound] == [
                (sent, "processed", 1) for sent in customer.sent
            ]
            # Rasa's tracker (shared by both Rasa servers) has each message once, in the order it was sent
            assert tracker_messages(session, customer.conversation) == customer.sent
            # the Graph API got every outbox row once, in the order the bot wrote them
            outbox = session.execute(
                select(m.OutboundMessage.external_id, m.OutboundMessage.status)
                .where(m.OutboundMessage.conversation_id == customer.conversation)
                .order_by(m.OutboundMessage.id)
            ).all()
            assert all(status in ("sent", "delivered", "read") for _, status in outbox)
            assert [row.external_id for row in outbox] == [r["id"] for r in customer.replies()]

    served = cluster.sessions()
    for replica in ("rasa-1", "rasa-2", "actions-1", "actions-2", "backoffice-1", "backoffice-2"):
        assert served[replica] > 0, served
