"""Rasa's lock store across replicas: separate processes, each with its own Redis client (as two Rasa
servers are), take the same conversation's lock at the same moment, again and again.

Each turn does what the lock protects in Rasa (read the conversation, write it back): a counter read and
written non-atomically. Rasa's ``RedisLockStore`` lets two replicas in at once (lost writes, overlapping
turns, tickets served twice); ``AtomicRedisLockStore`` serves one at a time, in ticket order.
Against the Redis on 127.0.0.1:6379 (COMANDA_TEST_REDIS_URL), and a private redis-server for outages.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import subprocess
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import redis
from rasa.core.lock_store import InMemoryLockStore, LockError, LockStore, RedisLockStore
from rasa.core.utils import read_endpoint_config

from connectors.lock_store import AtomicRedisLockStore
from tests.helpers.net import free_port
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_for

REDIS_URL = os.environ.get("COMANDA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FORK = multiprocessing.get_context("fork")  # workers start with this module loaded, then open their own client

# (round, ticket served, entered, left): one turn as a worker saw it; time.monotonic is one clock per machine.
Turn = Tuple[int, int, float, float]


def make_store(kind: str, url: str, prefix: str, lease: float = 10) -> LockStore:
    if kind == "rasa":
        where = redis.connection.parse_url(url)
        return RedisLockStore(host=where["host"], port=where["port"], db=where.get("db", 0), key_prefix=prefix)
    return AtomicRedisLockStore(url=url, key_prefix=prefix, lease_seconds=lease)


def contend(kind: str, url: str, prefix: str, rounds: int, barrier: Any, results: Any) -> None:
    """One replica: each round, wait for the others, then take the lock and do a read-modify-write."""
    store = make_store(kind, url, prefix)
    client = redis.Redis.from_url(url)
    counter = f"{prefix}:counter"
    turns: List[Turn] = []
    errors: List[str] = []

    async def turn(number: int) -> None:
        async with store.lock("conversation", lock_lifetime=2, wait_time_in_seconds=0.01) as held:
            entered = time.monotonic()
            seen = int(client.get(counter) or 0)
            await asyncio.sleep(0.002)  # the turn's work: Rasa runs the policies, calls actions
            client.set(counter, seen + 1)
            turns.append((number, held.now_serving, entered, time.monotonic()))

    for number in range(rounds):
        barrier.wait(timeout=60)
        try:
            asyncio.run(turn(number))
        except LockError as exc:
            errors.append(str(exc))
    results.put((turns, errors))


def race(kind: str, replicas: int, rounds: int) -> Dict[str, Any]:
    """Run the replicas; what went wrong: overlapping turns, lost writes, tickets out of order, errors."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    barrier, results = FORK.Barrier(replicas), FORK.Queue()
    workers = [
        FORK.Process(target=contend, args=(kind, REDIS_URL, prefix, rounds, barrier, results), daemon=True)
        for _ in range(replicas)
    ]
    for worker in workers:
        worker.start()
    collected = []
    for _ in workers:
        try:
            collected.append(results.get(timeout=240))
        except queue.Empty:  # a replica still waiting for the lock: a lock store may leave one stuck
            collected.append(([], ["a replica did not finish its rounds within 240 s"]))
    for worker in workers:
        worker.join(30)
        if worker.is_alive():
            worker.kill()
    client = redis.Redis.from_url(REDIS_URL)
    written = int(client.get(f"{prefix}:counter") or 0)
    client.delete(*client.keys(f"{prefix}:*") or [f"{prefix}:counter"])
    turns = sorted((t for found, _ in collected for t in found), key=lambda t: t[2])
    overlaps = sum(1 for before, after in pairwise(turns) if after[2] < before[3])
    out_of_order = sum(1 for before, after in pairwise(turns) if before[0] == after[0] and after[1] <= before[1])
    return {
        "turns": len(turns),
        "overlaps": overlaps,
        # a replica that timed out reports no turns though its writes count: never a negative loss
        "lost_writes": max(len(turns) - written, 0),
        "out_of_order": out_of_order,
        "errors": [e for _, errors in collected for e in errors],
    }


def test_rasa_redis_lock_store_issues_one_ticket_twice_when_two_replicas_take_it_at_once():
    """The race, step by step: RedisLockStore.issue_ticket is get, issue, save; two replicas interleave."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    first, second = make_store("rasa", REDIS_URL, prefix), make_store("rasa", REDIS_URL, prefix)
    try:
        lock_a, lock_b = first.get_or_create_lock("c"), second.get_or_create_lock("c")
        ticket_a, ticket_b = lock_a.issue_ticket(60), lock_b.issue_ticket(60)
        first.save_lock(lock_a)
        second.save_lock(lock_b)
        assert ticket_a == ticket_b == 0
        # both replicas now believe it is their turn: two turns of one conversation at once
        assert not first.get_lock("c").is_locked(ticket_a) and not second.get_lock("c").is_locked(ticket_b)
    finally:
        first.delete_lock("c")


def test_rasa_redis_lock_store_lets_replicas_in_together():
    found = race("rasa", replicas=3, rounds=40)
    assert found["overlaps"] + found["lost_writes"] + found["out_of_order"] + len(found["errors"]) > 0, found


def test_atomic_lock_store_serves_one_replica_at_a_time_in_ticket_order():
    found = race("atomic", replicas=3, rounds=40)
    assert found == {"turns": 120, "overlaps": 0, "lost_writes": 0, "out_of_order": 0, "errors": []}


def test_atomic_tickets_issued_at_once_are_distinct_and_only_the_first_is_served():
    prefix = f"t{uuid.uuid4().hex[:12]}"
    first, second = make_store("atomic", REDIS_URL, prefix), make_store("atomic", REDIS_URL, prefix)
    ticket_a, ticket_b = first.issue_ticket("c"), second.issue_ticket("c")
    assert ticket_a < ticket_b
    assert [t.number for t in second.get_lock("c").tickets] == [ticket_a, ticket_b]
    assert first.get_lock("c").now_serving == ticket_a
    with pytest.raises(LockError, match="race"):
        first.save_lock(first.get_lock("c"))
    first.cleanup("c", ticket_a)
    assert second.get_lock("c").now_serving == ticket_b and second.is_someone_waiting("c")
    second.cleanup("c", ticket_b)
    assert first.get_lock("c") is None and not first.is_someone_waiting("c")


def queue_in(prefix: str, name: str, results: Any, hold: Optional[float] = None) -> None:
    """A replica taking the lock once: report when it got it (and hold it ``hold`` seconds)."""
    store = make_store("atomic", REDIS_URL, prefix, lease=1)

    async def take() -> None:
        async with store.lock("conversation"):
            entered = time.monotonic()
            results.put(("in", name, entered))
            if hold:
                await asyncio.sleep(hold)  # the scenario: a turn that holds the lock this long
            results.put(("out", name, time.monotonic()))

    asyncio.run(take())


def test_replicas_are_served_in_the_order_they_asked():
    prefix = f"t{uuid.uuid4().hex[:12]}"
    observer = make_store("atomic", REDIS_URL, prefix)
    results = FORK.Queue()
    holder = FORK.Process(target=queue_in, args=(prefix, "holder", results, 1.5), daemon=True)
    holder.start()
    assert results.get(timeout=20)[:2] == ("in", "holder")
    waiting = []
    for name in ("first", "second", "third", "fourth"):
        waiting.append(FORK.Process(target=queue_in, args=(prefix, name, results), daemon=True))
        waiting[-1].start()
        # the next replica asks only once this one's ticket is in line
        assert wait_for(lambda: len(observer.get_lock("conversation").tickets) == len(waiting) + 1, interval=0.01)
    events = [results.get(timeout=30) for _ in range(9)]
    for process in [holder, *waiting]:
        process.join(10)
    entered = [name for kind, name, _ in events if kind == "in"]
    assert entered == ["first", "second", "third", "fourth"]
    # nobody entered before the one ahead of it left (the holder held past its 1 s lease: it renewed it)
    moments = {(kind, name): at for kind, name, at in events}
    order = ["holder", *entered]
    assert all(moments["in", after] >= moments["out", before] for before, after in pairwise(order))
    assert observer.get_lock("conversation") is None


def test_a_replica_that_dies_holding_the_lock_loses_it_after_its_lease():
    prefix = f"t{uuid.uuid4().hex[:12]}"
    results = FORK.Queue()
    doomed = FORK.Process(target=queue_in, args=(prefix, "doomed", results, 600), daemon=True)
    doomed.start()
    assert results.get(timeout=20)[:2] == ("in", "doomed")
    doomed.kill()  # SIGKILL: no finally, no release
    doomed.join(10)
    killed = time.monotonic()
    results = FORK.Queue()  # a process killed while it uses a queue may leave it unusable
    survivor = FORK.Process(target=queue_in, args=(prefix, "survivor", results), daemon=True)
    survivor.start()
    kind, name, entered = results.get(timeout=20)
    survivor.join(10)
    assert (kind, name) == ("in", "survivor")
    assert entered - killed < 10  # one lease (1 s) and a poll, with room for a loaded machine


def test_conversations_do_not_wait_for_each_other():
    store = make_store("atomic", REDIS_URL, f"t{uuid.uuid4().hex[:12]}")

    async def both() -> None:
        async with store.lock("ana"):
            await asyncio.wait_for(_take(store, "beto"), timeout=5)

    asyncio.run(both())


async def _take(store: LockStore, conversation: str) -> None:
    async with store.lock(conversation):
        pass


# --- Redis down and back ---------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the test's own (with a password), to stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port, self.workdir = free_port(), workdir
        self.url = f"redis://:s3cret-pass@127.0.0.1:{self.port}/0"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--requirepass", "s3cret-pass", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        assert wait_for(lambda: self._pings(client), timeout=20, interval=0.01)

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_down_is_a_clear_error_and_back_is_business_as_usual(own_redis):
    store = AtomicRedisLockStore(url=own_redis.url, lease_seconds=2)
    asyncio.run(_take(store, "ana"))

    async def redis_stops_mid_turn() -> None:
        async with store.lock("ana"):
            own_redis.stop()  # the turn still finishes; its ticket would expire on its own

    asyncio.run(redis_stops_mid_turn())
    started = time.monotonic()
    with pytest.raises(LockError) as down:
        asyncio.run(_take(store, "ana"))
    message = str(down.value)
    assert f"lock store unreachable at redis://:***@127.0.0.1:{own_redis.port}/0" in message
    assert "s3cret" not in message and time.monotonic() - started < 6
    with pytest.raises(LockError, match="unreachable"):
        store.issue_ticket("ana")

    own_redis.start()  # empty: no scripts loaded, no tickets
    asyncio.run(_take(store, "ana"))
    assert store.get_lock("ana") is None


def test_endpoints_yml_gives_rasa_the_lock_store_the_settings_name(monkeypatch):
    monkeypatch.setenv("COMANDA_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("COMANDA_LOCK_STORE", "connectors.lock_store.AtomicRedisLockStore")
    monkeypatch.setenv("COMANDA_ACTIONS_URL", "http://127.0.0.1:5055/webhook")
    monkeypatch.setenv("COMANDA_ACTIONS_TOKEN", "test-actions-token")
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "lock_store")
    store = LockStore.create(config)
    assert isinstance(store, AtomicRedisLockStore) and store.url == REDIS_URL
    monkeypatch.setenv("COMANDA_LOCK_STORE", "in_memory")
    assert isinstance(
        LockStore.create(read_endpoint_config(str(ROOT / "endpoints.yml"), "lock_store")), InMemoryLockStore
    )
