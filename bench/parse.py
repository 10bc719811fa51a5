"""Latency of reading a message, on a fresh demo database: OrderLineExtractor.process() alone, and
the whole NLU of the trained model (tokenizer to FallbackClassifier, as the bot parses every message).

Runs in the Rasa environment: `.venv/bin/python bench/parse.py [--model models/comanda.tar.gz]`.

Migrates and seeds a temporary SQLite database, creates the component as Rasa does when it loads a
model (which reads the catalog), then times process() on ~200 mixed messages: orders in Spanish,
English and Spanglish with typos, questions, greetings and FAQ. The first pass fills the word cache;
the measured passes run with it warm. It measures twice: with the default ``reload_seconds`` (the
catalog version is checked at most every 5 s) and with 0 (checked on every message, the worst
case). Then, when a trained model is there, it times Rasa's own parse of the same messages with the
model loaded in process (``Agent.parse_message``, what ``comanda parse`` and the channels run).
Target: p95 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message

from comanda.db import transaction
from comanda.migrate import upgrade
from comanda.services.catalog_loader import load_catalog, read_catalog
from nlu_components.order_lines import OrderLineExtractor
from nlu_components.parse import logs_to_stderr

ROOT = Path(__file__).resolve().parents[1]

ORDERS = [
    "me das 3 de pastor y una coca porfa",
    "one large taro milk tea, half sugar",
    "2 de pastor y 2 de suadero sin cebolla",
    "una docena de conchas",
    "media docena de churros",
    "a couple of lattes with oat milk",
    "quiero una playera negra talla M",
    "2 tacos al pastor con piña y 1 horchata",
    "un latte grande con leche de avena plis",
    "2 horchtas y una jamaica",
    "un taor grande sin azúcar",
    "tres capuchinos medianos",
    "3 quesadillas, 1 torta de milanesa y 2 cocas",
    "i'd like a black t-shirt size XL",
    "1 taro milk tea 24 oz, half sugar, oat milk, no boba",
    "quiero two tacos de pastor and una horchata",
    "buenas tardes, me pone un matcha sin perlas y un thai tea al 50%",
    "coca x2",
    "pastor 3, suadero 2",
    "Can I have two capuccinos, small",
    "hola! me das 2 tacos de suadero y 3 campechanos porfa 🌮🌮",
]
OTHER = [
    "hola",
    "hola buenas tardes",
    "a qué hora abren",
    "what's on the menu",
    "what time do you close?",
    "gracias!!",
    "ok 👍",
    "where are you located",
    "aceptan tarjeta?",
    "tienen wifi?",
    "do you have matcha?",
    "¿tienen horchata?",
    "¿hacen envíos a domicilio a la colonia Roma?",
    "can I pay with card at the counter?",
    "se aceptan mascotas?",
]
QUANTITIES = ["", "1", "2", "3", "una", "un", "dos", "tres", "a", "two", "a couple of", "un par de", "media docena de"]
PRODUCTS = [
    "tacos al pastor",
    "suadero",
    "campechanos",
    "horchata",
    "jamaica",
    "cocas",
    "agua natural",
    "latte",
    "capuchino",
    "americano",
    "taro milk tea",
    "matcha latte",
    "thai tea",
    "brown sugar boba",
    "conchas",
    "churros",
    "quesadillas",
    "chilaquiles",
    "torta de milanesa",
    "taza",
    "termo",
    "café en grano",
    "playera",
]
OPTIONS = [
    "",
    "grande",
    "large",
    "chico",
    "sin azúcar",
    "half sugar",
    "con leche de avena",
    "oat milk",
    "sin boba",
    "con piña",
    "sin cebolla",
    "negra talla M",
    "white XL",
]


def typo(word: str, rng: random.Random) -> str:
    """Swap two inner letters of a long word, as thumbs on a phone keyboard do."""
    if len(word) < 6:
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def messages(n: int) -> List[str]:
    rng = random.Random(7)
    out = ORDERS + OTHER
    while len(out) < n:
        items = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            product = " ".join(typo(w, rng) if rng.random() < 0.2 else w for w in rng.choice(PRODUCTS).split())
            items.append(" ".join(x for x in (rng.choice(QUANTITIES), product, rng.choice(OPTIONS)) if x))
        opening = rng.choice(["", "hola, ", "me das ", "can I get ", "quiero "])
        closing = rng.choice(["", " porfa", " please", " plis 🙏", "!"])
        out.append(opening + rng.choice([" y ", ", ", " and "]).join(items) + closing)
    return out


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def measure(extractor: OrderLineExtractor, texts: List[str], rounds: int) -> List[float]:
    timings = []
    for _ in range(rounds):
        for text in texts:
            message = Message.build(text=text)
            started = time.perf_counter()
            extractor.process([message])
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def report(label: str, timings: List[float]) -> None:
    print(
        f"{label}: p50 {statistics.median(timings):.2f} ms, p95 {percentile(timings, 95):.2f} ms, "
        f"p99 {percentile(timings, 99):.2f} ms, max {max(timings):.2f} ms ({len(timings)} messages)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="distinct messages")
    parser.add_argument("--rounds", type=int, default=5, help="measured passes over the messages")
    parser.add_argument(
        "--model",
        type=Path,
        default=ROOT / "models" / "comanda.tar.gz",
        help="trained model for the whole-pipeline figure (skipped when missing)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'comanda.db'}"
        os.environ["COMANDA_DATABASE_URL"] = url
        upgrade(url)
        with transaction(url) as session:
            load_catalog(session, read_catalog(ROOT / "data" / "demo" / "catalog.yml"))
        texts = messages(args.n)
        context = ExecutionContext(GraphSchema({}), "bench")
        results = {}
        for reload_seconds in (OrderLineExtractor.get_default_config()["reload_seconds"], 0):
            started = time.perf_counter()
            extractor = OrderLineExtractor.create(
                {**OrderLineExtractor.get_default_config(), "reload_seconds": reload_seconds},
                LocalModelStorage(Path(folder)),
                Resource("order_lines"),
                context,
            )
            created_ms = (time.perf_counter() - started) * 1000
            cold = measure(extractor, texts, 1)
            results[reload_seconds] = (created_ms, cold, measure(extractor, texts, args.rounds))
        ordering = sum(bool(extractor.parser().parse(t).lines) for t in texts)
        pipeline = whole_pipeline(args.model, texts, args.rounds) if args.model.exists() else None
    print(f"{len(texts)} messages ({ordering} with order lines), {args.rounds} measured passes, SQLite")
    for reload_seconds, (created_ms, cold, warm) in results.items():
        print(f"reload_seconds={reload_seconds}: create (reads the catalog) {created_ms:.1f} ms")
        report("  first pass, word cache filling", cold)
        report("  warm", warm)
    if pipeline is None:
        print(f"whole NLU pipeline: skipped, no model at {args.model} (make train)")
    else:
        timings, long_ms = pipeline
        report(f"whole NLU pipeline of {args.model.name} (Agent.parse_message, warm)", timings)
        print(f"  a {LONG_MESSAGE_CHARS:,}-character message: {long_ms:.0f} ms (the order reader reads 4,096)")
    return 0


LONG_MESSAGE_CHARS = 100_000


def long_message() -> str:
    """An order followed by 100,000 characters of varied words: a pasted document, or an attack."""
    rng = random.Random(11)
    words = [rng.choice(PRODUCTS).split()[-1] + str(n % 97) for n in range(30_000)]
    return ("quiero 2 de pastor y una coca, " + " ".join(words))[:LONG_MESSAGE_CHARS]


def whole_pipeline(model: Path, texts: List[str], rounds: int) -> Tuple[List[float], float]:
    """Rasa's parse of each message with the model in process, after one warm-up pass; and the time
    of one 100,000-character message."""
    from rasa.core.agent import Agent

    logs_to_stderr()
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()
    for text in texts:
        loop.run_until_complete(agent.parse_message(text))
    timings = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            loop.run_until_complete(agent.parse_message(text))
            timings.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    loop.run_until_complete(agent.parse_message(long_message()))
    long_ms = (time.perf_counter() - started) * 1000
    loop.close()
    return timings, long_ms


if __name__ == "__main__":
    sys.exit(main())
