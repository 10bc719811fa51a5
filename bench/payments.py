"""A burst of payment webhooks at a real back office on PostgreSQL: every order paid exactly once,
tickets unique and gap-free, and how long each webhook took.

In a throw-away schema (as bench/reservations.py makes one) with the demo business: N pending card
orders at Centro, each with its sandbox link. Then 2N signed sandbox webhooks: one "paid" event per
order, plus exact replays (the same bytes), other "paid" events (new event ids) for the same charges,
and S second charges (a second Pay on a paid link: a new charge), all shuffled and posted at once by C
concurrent senders to `python -m backoffice` (started here, the sandbox provider on, a small stand-in
for Rasa counting the customers' notifications). The bench posts the webhooks itself: the sandbox's own
outbox is emptied first. Then it checks: one "paid" outcome per order, "already_paid" per second charge
and "duplicate" for the rest, one paid payment per order, tickets 1..N without gaps, a balanced stock
ledger, one "paid" notification per order and one "paid_twice" per second charge delivered to Rasa.

    .venv-actions/bin/python bench/payments.py [--url postgresql://postgres@127.0.0.1:5432/test]
        [--orders 100] [--webhooks 200] [--second-charges 10] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Tuple

import requests
from sqlalchemy import delete, func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reservations import PLENTY, percentile, prepare, throwaway_schema  # noqa: E402
from comanda import clock  # noqa: E402
from comanda import models as m  # noqa: E402
from comanda.db import dispose_engines, new_session, transaction  # noqa: E402
from comanda.services import carts, orders, payments  # noqa: E402
from comanda.services.checkout import CheckoutDetails  # noqa: E402
from comanda.services.reservations import ledger_mismatches  # noqa: E402
from integrations.payments.sandbox import SIGNATURE_HEADER, SandboxProvider, event_body, record_charge, sign  # noqa: E402

SECRET = "bench-sandbox-secret"
RASA_TOKEN = "bench-rasa-token"
SKUS = ("CONCHA", "COCA-600", "TACO-PASTOR", "TARO-MT", "CAFE-GRANO-250", "AGUA-1L")
Webhook = Tuple[int, bytes]  # (order id, body)


class RasaStandIn:
    """Counts trigger_intent calls per (order, event), answering 200 like Rasa."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        lock = threading.Lock()
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with lock:
                    calls[(body["entities"]["order_id"], body["entities"]["event"])] += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def place_orders(url: str, count: int, base_url: str, rng: random.Random) -> List[Tuple[int, str, Decimal]]:
    """``count`` card orders, each with its sandbox link: (order id, link token, amount)."""
    provider = SandboxProvider(base_url, SECRET, 300)
    placed = []
    for n in range(count):
        conversation = f"centro:whatsapp:+52551{n:07d}"
        with transaction(url) as session:
            cart = carts.open_cart(session, conversation)
            carts.add_items(session, cart, [carts.Wanted(sku, rng.randint(1, 3)) for sku in rng.sample(SKUS, 2)], "es")
        with transaction(url) as session:
            order = orders.place_order(
                session, conversation, CheckoutDetails("pickup", f"Cliente {n}", "card"), "bench"
            )
            link = payments.start_payment(session, order, provider)
        with new_session(url) as session:
            placed.append((order.id, session.get(m.Payment, link.payment_id).provider_link_id, link.amount))
    return placed


def webhooks(
    url: str, placed: List[Tuple[int, str, Decimal]], total: int, second_charges: int, rng: random.Random
) -> Tuple[List[Webhook], Counter]:
    """One paid event per order, then replays, other events for the same charges and second charges,
    shuffled; the sandbox's own outbox is emptied (the bench posts every webhook itself)."""
    charges = {
        order_id: record_charge(token, str(order_id), "paid", amount, "MXN") for order_id, token, amount in placed
    }
    first = [(order_id, event_body("paid", charge)) for order_id, charge in charges.items()]
    extra = total - len(first) - second_charges
    replays = [rng.choice(first) for _ in range(extra * 3 // 5)]
    again = [
        (order_id, event_body("paid", charges[order_id]))
        for order_id in rng.sample(list(charges), extra - len(replays))
    ]
    twice = [
        (order_id, event_body("paid", record_charge(token, str(order_id), "paid", amount, "MXN")))
        for order_id, token, amount in rng.sample(placed, second_charges)
    ]
    with transaction(url) as session:
        session.execute(delete(m.SandboxWebhook))
    burst = first + replays + again + twice
    rng.shuffle(burst)
    return burst, Counter(first=len(first), replays=len(replays), second_events=len(again), second_charges=len(twice))


def start_backoffice(url: str, port: int, rasa_url: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "COMANDA_DATABASE_URL": url,
        "COMANDA_BACKOFFICE_PORT": str(port),
        "COMANDA_BACKOFFICE_URL": f"http://127.0.0.1:{port}",
        "COMANDA_PAYMENT_PROVIDER": "sandbox",
        "COMANDA_SANDBOX_WEBHOOK_SECRET": SECRET,
        "COMANDA_RASA_URL": rasa_url,
        "COMANDA_RASA_TOKEN": RASA_TOKEN,
        "COMANDA_NOTIFY_POLL_SECONDS": "0.2",
        "COMANDA_SANDBOX_WEBHOOK_POLL_SECONDS": "3600",
        "COMANDA_SIMULATOR": "0",
        "COMANDA_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "backoffice", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the back office did not start:\n{log.read_text()[-2000:]}")


def send(base_url: str, burst: List[Webhook], concurrency: int) -> List[Tuple[int, str, float]]:
    """Post every webhook, ``concurrency`` at a time, signed just before; (status, outcome, seconds) each."""
    local = threading.local()
    concurrency = min(concurrency, len(burst))  # the pool starts no more threads than there are posts
    gate = threading.Barrier(concurrency)

    def post(n: int) -> Tuple[int, str, float]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            gate.wait()  # every sender ready: the burst starts at once
        body = burst[n][1]
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, SECRET, int(clock.now().timestamp())),
        }
        started = time.perf_counter()
        answer = local.session.post(f"{base_url}/webhooks/payments/sandbox", data=body, headers=headers, timeout=60)
        elapsed = time.perf_counter() - started
        return answer.status_code, (answer.json().get("outcome") if answer.ok else answer.text[:80]), elapsed

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(post, range(len(burst))))


def check(url: str, order_ids: List[int]) -> Dict[str, Any]:
    with new_session(url) as session:
        paid = Counter(session.execute(select(m.Payment.order_id).where(m.Payment.status == "paid")).scalars())
        tickets = (
            session.execute(
                select(m.Order.ticket_number).where(m.Order.id.in_(order_ids)).order_by(m.Order.ticket_number)
            )
            .scalars()
            .all()
        )
        statuses = Counter(session.execute(select(m.Order.status).where(m.Order.id.in_(order_ids))).scalars())
        events = session.execute(select(func.count()).select_from(m.PaymentEvent)).scalar()
        mismatches = len(ledger_mismatches(session))
    return {
        "paid_once": sum(1 for order_id in order_ids if paid[order_id] == 1),
        "paid_twice": sum(1 for order_id in order_ids if paid[order_id] > 1),
        "gap_free": tickets == list(range(1, len(order_ids) + 1)),
        "statuses": statuses,
        "events": events,
        "ledger_mismatches": mismatches,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL server")
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--webhooks", type=int, default=200, help="at least one per order")
    parser.add_argument("--second-charges", type=int, default=10, help="paid orders charged a second time")
    parser.add_argument("--concurrency", type=int, default=50, help="senders posting at once")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rasa = RasaStandIn()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with throwaway_schema(args.url) as url:
        os.environ["COMANDA_DATABASE_URL"] = url  # the sandbox's books (record_charge) too
        prepare(url, Decimal(PLENTY))
        placed = place_orders(url, args.orders, base_url, rng)
        burst, mix = webhooks(url, placed, args.webhooks, args.second_charges, rng)
        dispose_engines()  # the back office gets the connections
        log = Path("/tmp") / f"payments-bench-{port}.log"  # the back office's output, for a failed run
        proc = start_backoffice(url, port, rasa.url, log)
        try:
            started = time.monotonic()
            results = send(base_url, burst, args.concurrency)
            elapsed = time.monotonic() - started
            order_ids = [order_id for order_id, _, _ in placed]
            deadline = time.monotonic() + 30
            expected = len(order_ids) + args.second_charges
            while sum(rasa.calls[key] for key in rasa.calls) < expected and time.monotonic() < deadline:
                time.sleep(0.2)
            found = check(url, order_ids)
        finally:
            proc.terminate()
            proc.wait(15)
    outcomes = Counter(outcome for _, outcome, _ in results)
    failures = sum(1 for status, _, _ in results if status != 200)
    ms = [seconds * 1000 for _, _, seconds in results]
    told = sum(1 for o in order_ids if rasa.calls[(o, "paid")] == 1)
    told_twice = sum(1 for o in order_ids if rasa.calls[(o, "paid")] > 1)
    print(
        f"{len(burst)} webhooks for {args.orders} orders ({mix['first']} first events, {mix['replays']} exact "
        f"replays, {mix['second_events']} other events for a paid charge, {mix['second_charges']} second "
        f"charges; shuffled), {args.concurrency} concurrent senders, PostgreSQL: {elapsed:.2f} s, "
        f"{len(burst) / elapsed:.0f} webhooks/s"
    )
    print(
        f"webhook handling time: p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms, max {max(ms):.1f} ms"
    )
    print(f"answers: {failures} not 200; outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(
        f"orders paid exactly once: {found['paid_once']}/{args.orders} (paid twice: {found['paid_twice']}); "
        f"statuses: {dict(found['statuses'])}; tickets 1..{args.orders} gap-free: {found['gap_free']}; "
        f"payment_events rows: {found['events']}; ledger mismatches: {found['ledger_mismatches']}"
    )
    told_paid_twice = sum(count for (_, event), count in rasa.calls.items() if event == "paid_twice")
    print(f'customers told "paid" through Rasa: {told}/{args.orders} (twice: {told_twice})')
    print(
        f'customers told "paid twice" (a second charge, flagged for a refund): {told_paid_twice}/{args.second_charges}'
    )
    ok = (
        not failures
        and outcomes["paid"] == args.orders
        and outcomes["already_paid"] == args.second_charges
        and told_paid_twice == args.second_charges
        and found["paid_once"] == args.orders
        and found["gap_free"]
        and not found["ledger_mismatches"]
        and told == args.orders
        and not told_twice
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
