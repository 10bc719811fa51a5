"""`make bench-webhook`: N signed WhatsApp webhooks posted concurrently to the running stack.

Runs in the Rasa environment (.venv), whose aiohttp makes a light asyncio load generator.

Starts the stack as `make run` does (a fresh SQLite database, or a new PostgreSQL one with ``--database-
url``; the simulator as Meta), posts N text messages from N different customers with C concurrent
senders, and reports the webhook ack latency (p50/p99), the message → reply latency (the reply's arrival
at the simulator's fake Graph API), throughput, and lost and duplicated replies. A first wave keeps the
bot busy while the measured wave is acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List

import aiohttp
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.e2e import children, fresh_database, name_of  # noqa: E402
from bench.profiles import Profiles  # noqa: E402
from comanda.db import transaction  # noqa: E402
from comanda.migrate import upgrade  # noqa: E402
from comanda.services.catalog_loader import load_catalog, read_catalog  # noqa: E402
from integrations.whatsapp.webhook import sign  # noqa: E402
from tests.e2e.conftest import Stack  # noqa: E402

CENTRO = "106540352242922"


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def payload(wa_id: str, message_id: str, text: str) -> bytes:
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"display_phone_number": "525512345678", "phone_number_id": CENTRO},
                                "contacts": [{"profile": {"name": "Bench"}, "wa_id": wa_id}],
                                "messages": [
                                    {
                                        "from": wa_id,
                                        "id": message_id,
                                        "timestamp": str(int(time.time())),
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def post_all(stack: Stack, customers: List[str], concurrency: int) -> Dict[str, tuple]:
    """Post one signed message per customer, ``concurrency`` at a time (asyncio, so the client stays light)."""
    bodies = {w: payload(w, f"wamid.{uuid.uuid4().hex}", "gracias") for w in customers}

    async def run() -> Dict[str, tuple]:
        gate = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def post(wa_id: str) -> tuple:
                raw = bodies[wa_id]
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(stack.app_secret, raw)}
                async with gate:
                    started, wall = time.monotonic(), time.time()
                    async with http.post(f"{stack.rasa}/webhooks/whatsapp/webhook", data=raw, headers=headers) as r:
                        await r.read()
                        return wa_id, (time.monotonic() - started, wall, r.status)

            return dict(await asyncio.gather(*(post(w) for w in customers)))

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="messages in the measured wave")
    parser.add_argument("-c", type=int, default=100, help="concurrent senders")
    parser.add_argument("--warmup", type=int, default=100, help="messages that keep the bot busy first")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for every reply")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of the Rasa server")
    parser.add_argument("--database-url", help="PostgreSQL server (a new database, dropped after); default SQLite")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="comanda-bench-"))
    stack = Stack(workdir)
    stack.db_url, drop_database = fresh_database(args.database_url, workdir)
    os.environ["COMANDA_DATABASE_URL"] = stack.env["COMANDA_DATABASE_URL"] = stack.db_url
    upgrade(stack.db_url)
    with transaction() as session:
        load_catalog(session, read_catalog(ROOT / "data" / "demo" / "catalog.yml"))
    print(f"starting the stack (log: {stack.log_path})", flush=True)
    stack.start()
    try:
        busy = [f"52155{i:08d}" for i in range(args.warmup)]
        measured = [f"52156{i:08d}" for i in range(args.n)]
        post_all(stack, busy, args.c)
        started = time.time()
        if args.profile:
            rasa = {name_of(cmd): pid for pid, cmd in children(stack.proc.pid).items()}["rasa"]
            with Profiles(args.profile, {"rasa": rasa}) as profiles:
                acks = post_all(stack, measured, args.c)
        else:
            acks = post_all(stack, measured, args.c)
        replies: Dict[str, list] = {}
        deadline = time.time() + args.timeout
        while time.time() < deadline:
            records = requests.get(f"{stack.backoffice}/simulator/api/sent", timeout=30).json()["messages"]
            replies = {}
            for record in records:
                replies.setdefault(record["wa_id"], []).append(record["timestamp"])
            if all(wa_id in replies for wa_id in measured + busy):
                break
            time.sleep(1)
        finished = max((max(replies[w]) for w in measured if w in replies), default=time.time())
    finally:
        stack.stop()
        drop_database()

    ack_ms = [acks[w][0] * 1000 for w in measured]
    errors = sum(1 for w in measured if acks[w][2] != 200)
    e2e = [(min(replies[w]) - acks[w][1]) * 1000 for w in measured if w in replies]
    lost = sum(1 for w in measured + busy if w not in replies)
    duplicated = sum(len(replies[w]) - 1 for w in measured + busy if w in replies)
    print(f"webhooks: {args.n} measured (+{args.warmup} keeping the bot busy), {args.c} concurrent senders")
    print(
        f"ack latency: p50 {statistics.median(ack_ms):.1f} ms, p99 {percentile(ack_ms, 99):.1f} ms, "
        f"max {max(ack_ms):.1f} ms; non-200: {errors}"
    )
    if e2e:
        print(
            f"message → reply: p50 {statistics.median(e2e):.0f} ms, p99 {percentile(e2e, 99):.0f} ms; "
            f"throughput {len(e2e) / max(finished - started, 1e-9):.1f} replies/s"
        )
    print(f"lost replies: {lost}; duplicated replies: {duplicated}")
    if args.profile:
        print(f"profile of the Rasa server while the measured wave was acknowledged:\n{profiles.report()}")
    return 0 if lost == 0 and duplicated == 0 and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
