"""How the bot reads a message, for owners and evaluations: ``comanda parse`` runs this.

It loads the trained model and parses with Rasa's own message processor, the path the WhatsApp
channel takes, so the answer is the bot's reading, entities from the live catalog included. Order
lines are kept to the store's business (SKUs are unique per business only).

    python -m nlu_components.parse [--store centro] [--model models/] [--jsonl] [MESSAGE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set

from comanda.db import new_session
from comanda.errors import ComandaError, ConfigError
from comanda.services.stores import get_store
from comanda.settings import home, setting


def business_skus(store_id: str) -> Set[str]:
    """Every product and variant SKU the store's business sells."""
    from sqlalchemy import select

    from comanda import models as m

    with new_session() as session:
        business_id = get_store(session, store_id).business_id
        products = session.execute(select(m.Product.sku).where(m.Product.business_id == business_id)).scalars()
        variants = session.execute(
            select(m.ProductVariant.sku).join(m.Product).where(m.Product.business_id == business_id)
        ).scalars()
        return set(products) | set(variants)


def reading(text: str, parse_data: Dict[str, Any], skus: Set[str]) -> Dict[str, Any]:
    """The parts of Rasa's parse result an owner looks at, one order line per item (with its kitchen
    note, when there is one), and the product words the catalog could not place, when there are."""
    entities = parse_data.get("entities") or []
    language = next((e["value"] for e in entities if e.get("entity") == "language"), None)
    items = []
    for entity in entities:
        if entity.get("entity") != "order_line" or not isinstance(entity.get("value"), dict):
            continue
        line = entity["value"]
        sku = line.get("variant_sku") or line["sku"]
        if sku in skus:
            item = {
                "sku": sku,
                "quantity": line["quantity"],
                "modifiers": line.get("modifiers") or {},
                "variant": line.get("variant") or {},
            }
            if line.get("note"):
                item["note"] = line["note"]
            items.append(item)
    intent = parse_data.get("intent") or {}
    result = {
        "text": text,
        "intent": intent.get("name"),
        "confidence": round(float(intent.get("confidence") or 0), 4),
        "language": language,
        "items": items,
    }
    unplaced = [e["value"] for e in entities if e.get("entity") == "unplaced" and isinstance(e.get("value"), dict)]
    if unplaced:  # product words the catalog could not place: what the bot says back
        result["unplaced"] = unplaced
    return result


class Reader:
    """The trained model, loaded once, reading messages for one store."""

    def __init__(self, model: Optional[Path] = None, store_id: Optional[str] = None) -> None:
        from rasa.core.agent import Agent
        from rasa.model import get_local_model

        try:
            path = get_local_model(str(model or home() / "models"))
        except Exception as exc:  # noqa: BLE001 - Rasa raises several kinds for a missing model
            raise ConfigError(f"no trained model in {model or home() / 'models'}: run `make train` ({exc})") from exc
        self.store_id = store_id or setting("COMANDA_DEFAULT_STORE")
        self.skus = business_skus(self.store_id)
        self.model_name = Path(path).name
        self.agent = Agent.load(path)

    def read(self, texts: Iterable[str]) -> Iterator[Dict[str, Any]]:
        loop = asyncio.new_event_loop()
        try:
            for text in texts:
                yield reading(text, loop.run_until_complete(self.agent.parse_message(text)), self.skus)
        finally:
            loop.close()


def message_of(line: str) -> str:
    """A stdin line: a JSON string or ``{"text": ...}`` object, or else the text itself."""
    try:
        value = json.loads(line)
    except ValueError:
        return line.rstrip("\n")
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return value["text"]
    return line.rstrip("\n")


def logs_to_stderr() -> None:
    """Standard output carries the JSON lines only: Rasa's logs (structlog's too) go to stderr."""
    import logging

    import structlog

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    structlog.configure(
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="comanda parse", description="How the bot reads messages (JSON lines).")
    parser.add_argument("messages", nargs="*", help="messages to read (or --jsonl and one per line on stdin)")
    parser.add_argument("--store", default=None, help="store id (default: COMANDA_DEFAULT_STORE)")
    parser.add_argument("--model", type=Path, default=None, help="model file or folder (default: models/)")
    parser.add_argument(
        "--jsonl",
        action="store_true",
        help='read messages from stdin, one per line (text, a JSON string or {"text": ...})',
    )
    args = parser.parse_args(argv)
    texts = [message_of(line) for line in sys.stdin if line.strip()] if args.jsonl else args.messages
    if not texts:
        parser.error("give messages as arguments, or --jsonl with one message per line on stdin")
    logs_to_stderr()
    try:
        for result in Reader(args.model, args.store).read(texts):
            print(json.dumps(result, ensure_ascii=False), flush=True)
    except ComandaError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
