"""Stock reservations under load on PostgreSQL: throughput, latency, and proof that nothing is oversold.

In a throw-away schema (created and dropped here) with the demo business and every stock level set
by an adjustment (to plenty; ``--stock 300`` makes items run out mid-run), W worker threads each reserve
1–3 random demo SKUs of 1–3 units, one short transaction per reservation, as fast as they can for N
seconds. Then it checks that no level has more reserved than on hand, that the reserved stock equals
what the active reservations hold, and that the movement ledger explains every level.

    .venv-actions/bin/python bench/reservations.py [--url postgresql://postgres@127.0.0.1:5432/test]
        [--workers 20] [--seconds 10] [--stock N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comanda import models as m  # noqa: E402
from comanda.db import dispose_engines, new_session, transaction  # noqa: E402
from comanda.errors import OutOfStock  # noqa: E402
from comanda.migrate import upgrade  # noqa: E402
from comanda.services.catalog_loader import load_catalog, read_catalog  # noqa: E402
from comanda.services.reservations import ledger_mismatches, needs_for, reserve  # noqa: E402

PLENTY = 100_000_000  # of every item: only a bug could run out
Needs = Dict[int, Decimal]


@contextmanager
def throwaway_schema(url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema reached through search_path, dropped afterwards (as the tests' pg_schema does)."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, future=True)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        dispose_engines()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def prepare(url: str, stock: Decimal) -> Dict[str, List[Needs]]:
    """Demo business, every level set to ``stock`` (with its adjustment movement); per store, what one
    unit of each SKU needs."""
    upgrade(url)
    with transaction(url) as session:
        load_catalog(session, read_catalog(ROOT / "data" / "demo" / "catalog.yml"))
    with transaction(url) as session:
        for level in session.execute(select(m.StockLevel)).scalars():
            session.add(
                m.StockMovement(
                    store_id=level.store_id,
                    stock_item_id=level.stock_item_id,
                    reason="adjustment",
                    on_hand_delta=stock - level.on_hand,
                    reference_type="staff",
                    reference_id="bench",
                )
            )
            level.on_hand = stock
        products = session.execute(select(m.Product)).scalars().all()
        units = [needs_for(product, variant, 1) for product in products for variant in product.variants or [None]]
        return {store: units for store in session.execute(select(m.Store.id)).scalars()}


def work(
    sessions: sessionmaker, units: Dict[str, List[Needs]], seed: int, deadline: float
) -> Tuple[List[float], Counter]:
    """Reserve until the deadline: 1–3 SKUs of one store, 1–3 units each, one transaction per reservation;
    the latency of each success, and the failures by kind."""
    rng = random.Random(seed)
    latencies: List[float] = []
    failures: Counter = Counter()
    while time.monotonic() < deadline:
        store = rng.choice(sorted(units))
        needs: Needs = defaultdict(Decimal)
        for unit in rng.sample(units[store], rng.randint(1, 3)):
            quantity = rng.randint(1, 3)
            for item_id, q in unit.items():
                needs[item_id] += q * quantity
        started = time.monotonic()
        try:
            with sessions() as session, session.begin():  # what comanda.db.transaction() does
                reserve(session, store, needs)
            latencies.append(time.monotonic() - started)
        except OutOfStock:
            failures["out of stock"] += 1  # expected only when --stock is small
        except Exception as exc:  # noqa: BLE001 - counted and reported: any of these is a finding
            failures[type(exc).__name__] += 1
    return latencies, failures


def check(url: str) -> Tuple[int, int, int]:
    """(levels with more reserved than on hand, levels whose reserved differs from what the active
    reservations hold, levels the ledger does not explain): all three must be 0."""
    with new_session(url) as session:
        oversold = session.execute(
            select(func.count()).select_from(m.StockLevel).where(m.StockLevel.reserved > m.StockLevel.on_hand)
        ).scalar()
        held = {
            (store, item): q
            for store, item, q in session.execute(
                select(m.Reservation.store_id, m.ReservationLine.stock_item_id, func.sum(m.ReservationLine.quantity))
                .join(m.Reservation)
                .where(m.Reservation.status == "active")
                .group_by(m.Reservation.store_id, m.ReservationLine.stock_item_id)
            )
        }
        levels = session.execute(select(m.StockLevel)).scalars().all()
        unexplained = sum(1 for level in levels if held.get((level.store_id, level.stock_item_id), 0) != level.reserved)
        return oversold, unexplained, len(ledger_mismatches(session))


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL server")
    parser.add_argument("--workers", type=int, default=20, help="concurrent threads, one transaction each")
    parser.add_argument("--seconds", type=float, default=10, help="how long to keep reserving")
    parser.add_argument("--stock", type=Decimal, default=Decimal(PLENTY), help="on hand of every item at the start")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with throwaway_schema(args.url) as url:
        units = prepare(url, args.stock)
        # one connection per worker, as separate action-server processes would have
        engine = create_engine(url, future=True, pool_size=args.workers, max_overflow=0)
        sessions = sessionmaker(bind=engine, future=True, expire_on_commit=False)
        deadline = time.monotonic() + args.seconds
        results: List[Tuple[List[float], Counter]] = [([], Counter())] * args.workers

        def run(n: int) -> None:
            results[n] = work(sessions, units, args.seed + n, deadline)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(args.workers)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        engine.dispose()
        oversold, unexplained, mismatches = check(url)

    latencies = [s for worker_latencies, _ in results for s in worker_latencies]
    failures = sum((worker_failures for _, worker_failures in results), Counter())
    out_of_stock = failures.pop("out of stock", 0)
    ms = [s * 1000 for s in latencies]
    print(
        f"{args.workers} workers for {elapsed:.1f} s on PostgreSQL: {len(ms)} reservations, "
        f"{len(ms) / elapsed:.0f} reservations/s"
    )
    if ms:
        print(f"latency: p50 {statistics.median(ms):.1f} ms, p95 {percentile(ms, 95):.1f} ms, max {max(ms):.1f} ms")
    print(
        f"out of stock: {out_of_stock}; errors: {sum(failures.values())}"
        + "".join(f"; {kind}: {n}" for kind, n in sorted(failures.items()))
    )
    print(
        f"oversold levels: {oversold}; reserved not matching active reservations: {unexplained}; "
        f"ledger mismatches: {mismatches}"
    )
    return 0 if not (oversold or unexplained or mismatches or failures) else 1


if __name__ == "__main__":
    sys.exit(main())
