"""A customer's messages are answered in the order they came across replicas (issue 17, found by the replica
chaos test): the balancer spreads one customer's messages over the Rasa servers, and a message held by a
server that died is answered only once its lease runs out, so each server's own per-conversation lock is
not enough. A message waits, outside that lock, until the sender's earlier ones are answered, whoever holds
them; the wait is bounded. On SQLite and PostgreSQL."""

import asyncio

from comanda.db import transaction
from comanda.enums import InboxStatus
from comanda.services import inbox
from connectors.whatsapp import inbox_worker
from connectors.whatsapp.inbox_worker import InboxWorker

LEASE = 30


def received(external_id, sender="5215512345678", owner="replica-a"):
    with transaction() as session:
        return inbox.record_inbound(
            session, "whatsapp", external_id, "text", {}, sender=sender, lease_owner=owner, lease_seconds=LEASE
        )


def finish(row_id, status=InboxStatus.PROCESSED):
    with transaction() as session:
        inbox.finish(session, row_id, status)


def earlier_unfinished(row_id):
    with transaction() as session:
        return row_id in inbox.earlier_unfinished(session, [row_id])


def test_a_message_waits_for_the_senders_earlier_unanswered_ones_only(migrated):
    first = received("wamid.1", owner="replica-a")
    other = received("wamid.other", sender="5215599999999", owner="replica-b")
    second = received("wamid.2", owner="replica-b")
    third = received("wamid.3", owner="replica-b")
    assert not earlier_unfinished(first) and not earlier_unfinished(other)  # another customer's: no wait
    assert earlier_unfinished(second) and earlier_unfinished(third)
    finish(first, InboxStatus.PARKED)  # parked for staff counts as answered: the chat goes on
    assert not earlier_unfinished(second) and earlier_unfinished(third)
    finish(second)
    assert not earlier_unfinished(third)


def worker():
    return InboxWorker(None, agent=lambda: None, on_new_message=None, new_output=None, after_turn=lambda: None)


def test_the_worker_goes_on_once_the_earlier_message_held_elsewhere_is_answered(migrated):
    first = received("wamid.1", owner="replica-a")  # the other replica is answering it
    second = received("wamid.2", owner="replica-b")

    async def scenario():
        waiting = asyncio.ensure_future(worker()._after_earlier(second))
        await asyncio.sleep(1)
        assert not waiting.done()
        finish(first)
        await asyncio.wait_for(waiting, timeout=10)

    asyncio.run(scenario())


def test_the_wait_is_bounded(migrated, monkeypatch, caplog):
    received("wamid.stuck", owner="replica-a")
    later = received("wamid.later", owner="replica-b")
    monkeypatch.setattr(inbox_worker, "EARLIER_POLL_SECONDS", 0.05)
    bounded = worker()
    bounded.lease_seconds, bounded.retry_seconds = 0.1, 0.2

    asyncio.run(asyncio.wait_for(bounded._after_earlier(later), timeout=10))
    assert "waited too long for the earlier ones" in caplog.text


def test_messages_asking_at_the_same_moment_share_one_query(migrated, monkeypatch):
    first = received("wamid.first")
    others = [received(f"wamid.{i}", sender=f"52155000000{i:02d}") for i in range(20)]
    later = received("wamid.later")  # the first one's sender: it waits
    queries = []
    real = inbox.earlier_unfinished

    def counted(session, ids):
        queries.append(set(ids))
        return real(session, ids)

    monkeypatch.setattr(inbox, "earlier_unfinished", counted)

    async def scenario():
        asking = worker()
        return await asyncio.gather(*(asking._earlier_unfinished(row) for row in [first, *others, later]))

    assert asyncio.run(scenario()) == [False] * 21 + [True]
    assert queries == [{first, *others, later}]
