"""How long the reports take on a busy year: the four reports over a day, a month and a year, both stores.

A fresh database (a temporary SQLite file, or a throw-away PostgreSQL schema with ``--url``) gets the demo
business and a year of sales written in bulk: ``--orders-per-day`` orders a day (by default 150, about 55,000
orders and 110,000 lines), at random minutes of the opening hours, from 3,000 customers, card and cash,
pickup and delivery, each made ready 5–25 minutes after it came in, one in fifty refunded in part. Each
report is then built three times per range; the median is printed. On PostgreSQL the tables are
ANALYZEd after the load, as autovacuum would.

    .venv-actions/bin/python bench/reports.py [--url postgresql://postgres@127.0.0.1:5432/test]
        [--orders-per-day 150] [--days 365]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterator, List, Optional
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text  # noqa: E402

from bench.reservations import throwaway_schema  # noqa: E402
from comanda import models as m  # noqa: E402
from comanda.db import dispose_engines, get_engine, new_session, transaction  # noqa: E402
from comanda.migrate import upgrade  # noqa: E402
from comanda.services import reports  # noqa: E402
from comanda.services.catalog_loader import load_catalog, read_catalog  # noqa: E402

ZONE = ZoneInfo("America/Mexico_City")
LAST_DAY = date(2026, 11, 30)
CUSTOMERS = 3000


@contextmanager
def database(url: Optional[str]) -> Iterator[str]:
    if url:
        with throwaway_schema(url) as schema_url:
            yield schema_url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/bench.db"


def fill(url: str, days: int, per_day: int, rng: random.Random) -> int:
    """The demo business and a year of sales, written in bulk; how many orders."""
    upgrade(url)
    with transaction(url) as session:
        load_catalog(session, read_catalog(ROOT / "data" / "demo" / "catalog.yml"))
        products = session.execute(select(m.Product).where(m.Product.active.is_(True))).scalars().all()
        catalog = [(p.id, p.sku, p.name_es, p.price, p.sat_prod_serv, p.sat_unit) for p in products]
        session.execute(insert(m.Customer), [{"phone": f"+5255{n:08d}"} for n in range(CUSTOMERS)])
    with new_session(url) as session:
        customer_ids = list(session.execute(select(m.Customer.id)).scalars())
    next_id = 1
    for offset in range(days):
        day = LAST_DAY - timedelta(days=days - 1 - offset)
        orders, lines, changes, payments, refunds = [], [], [], [], []
        for _ in range(per_day):
            store = rng.choice(("centro", "centro", "roma"))
            at = datetime(day.year, day.month, day.day, 8, tzinfo=ZONE) + timedelta(minutes=rng.randrange(13 * 60))
            at = at.astimezone(timezone.utc)
            picked = rng.sample(catalog, rng.randint(1, 3))
            subtotal = Decimal("0.00")
            for product_id, sku, name, price, prod_serv, unit in picked:
                quantity = rng.randint(1, 3)
                subtotal += price * quantity
                lines.append(
                    {
                        "order_id": next_id,
                        "product_id": product_id,
                        "sku": sku,
                        "description": name,
                        "quantity": quantity,
                        "modifiers": {},
                        "unit_price": price,
                        "line_total": price * quantity,
                        "sat_prod_serv": prod_serv,
                        "sat_unit": unit,
                    }
                )
            delivery = store == "centro" and rng.random() < 0.2
            total = subtotal + (Decimal("35.00") if delivery else 0)
            method = rng.choice(("card", "card", "cash", "oxxo"))
            orders.append(
                {
                    "id": next_id,
                    "business_id": "cafe-esquina",
                    "store_id": store,
                    "customer_id": rng.choice(customer_ids),
                    "channel": "whatsapp",
                    "status": "picked_up",
                    "payment_status": "paid",
                    "payment_method": method,
                    "fulfilment": "delivery" if delivery else "pickup",
                    "subtotal": subtotal,
                    "delivery_fee": Decimal("35.00") if delivery else Decimal("0.00"),
                    "total": total,
                    "created_at": at,
                    "confirmed_at": at,
                    "paid_at": at,
                }
            )
            changes.append(
                {
                    "order_id": next_id,
                    "from_status": "received",
                    "to_status": "ready",
                    "actor": "bench",
                    "created_at": at + timedelta(minutes=rng.randint(5, 25)),
                }
            )
            if method != "cash":
                payments.append(
                    {
                        "id": next_id,
                        "order_id": next_id,
                        "provider": "sandbox",
                        "method": method,
                        "status": "paid",
                        "amount": total,
                        "created_at": at,
                        "paid_at": at,
                    }
                )
                if rng.random() < 0.02:
                    refunds.append(
                        {
                            "payment_id": next_id,
                            "amount": min(total, Decimal("20.00")),
                            "status": "succeeded",
                            "idempotency_key": f"bench-{next_id}",
                            "actor": "bench",
                            "created_at": at + timedelta(hours=1),
                            "completed_at": at + timedelta(hours=1),
                        }
                    )
            next_id += 1
        with transaction(url) as session:
            session.execute(insert(m.Order), orders)
            session.execute(insert(m.OrderLine), lines)
            session.execute(insert(m.OrderStatusChange), changes)
            if payments:
                session.execute(insert(m.Payment), payments)
            if refunds:
                session.execute(insert(m.Refund), refunds)
    if url.startswith("postgresql"):  # what autovacuum does after a bulk load, before anyone reads the figures
        with get_engine(url).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return next_id - 1


def timed(url: str, kind: str, start: date, end: date) -> float:
    runs: List[float] = []
    for _ in range(3):
        began = time.perf_counter()
        with new_session(url) as session:
            reports.build(session, kind, reports.period(session, ["centro", "roma"], start, end))
        runs.append(time.perf_counter() - began)
    return statistics.median(runs) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="PostgreSQL URL (a throw-away schema is used); default: a temporary SQLite file")
    parser.add_argument("--orders-per-day", type=int, default=150)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with database(args.url) as url:
        began = time.perf_counter()
        count = fill(url, args.days, args.orders_per_day, random.Random(20261120))
        print(
            f"{count} orders over {args.days} days written in {time.perf_counter() - began:.1f} s ({url.split(':')[0]})"
        )
        ranges = {"a day": (LAST_DAY, LAST_DAY), "30 days": (LAST_DAY - timedelta(days=29), LAST_DAY)}
        ranges["a year"] = (LAST_DAY - timedelta(days=args.days - 1), LAST_DAY)
        print(f"{'report':<10}" + "".join(f"{name:>12}" for name in ranges))
        for kind in reports.REPORTS:
            figures = [timed(url, kind, *span) for span in ranges.values()]
            print(f"{kind:<10}" + "".join(f"{ms:>9.0f} ms" for ms in figures))
        dispose_engines()
    return 0


if __name__ == "__main__":
    sys.exit(main())
