"""`comanda review`: the review inbox on the command line — what the bot was unsure about, and the owner's
decision on each item (the same decisions as /console/review and WhatsApp review)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_list(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services import review

    with new_session() as session:
        items = review.visible_items(session, None, args.store or None)
        seen = review.where_seen(session, [i.id for i in items])
        rows = [review.as_json(item, seen.get(item.id)) for item in items]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        lines = ", ".join(f"{i['quantity']}×{i['sku']}" for i in row["items"]) or "-"
        confidence = f"{row['confidence']:.2f}" if row["confidence"] is not None else "-"
        print(
            f"{row['id']:<5} {row['reason']:<14} ×{row['count']:<3} {row['language'] or '--'}  "
            f"{row['intent'] or '-'} {confidence} (then {row['runner_up'] or '-'})  [{lines}]  {row['text'][:70]}"
        )
    print(f"{len(rows)} waiting")
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from cli.staff import _actor as cli_actor
    from comanda.db import transaction
    from comanda.services import review

    decision = review.Decision(
        intent=args.intent or None,
        items=review.parse_items(args.items) if args.items is not None else None,
        synonyms=review.parse_synonyms(args.synonym or []),
    )
    with transaction() as session:
        item = review.accept(session, cli_actor(), review.get_item(session, args.id), decision)
        status, landed = item.status, item.decision or {}
    print(f"review item {args.id}: {status}" + "".join(f"; {k}: {v}" for k, v in landed.items() if v))
    if landed.get("intent"):
        print("the example is in data/nlu/<language>/reviewed.yml: `comanda train` teaches it to the bot")
    if landed.get("synonyms"):
        print("the synonym is live: the bot reads it within seconds")
    return 0


def cmd_ignore(args: argparse.Namespace) -> int:
    from cli.staff import _actor as cli_actor
    from comanda.db import transaction
    from comanda.services import review

    with transaction() as session:
        review.ignore(session, cli_actor(), review.get_item(session, args.id))
    print(f"review item {args.id}: ignored")
    return 0


def cmd_intents(args: argparse.Namespace) -> int:
    from comanda.services.training_data import known_intents

    print("\n".join(sorted(known_intents())))
    return 0


def add_review_parser(sub: Any) -> None:
    p = sub.add_parser("review", help="the review inbox: messages the bot was unsure about, and decisions on them")
    commands = p.add_subparsers(dest="review_command", required=True, metavar="COMMAND")

    q = commands.add_parser("list", help="items waiting for a decision, newest first")
    q.add_argument("--store", default="", help="items seen at this store (default: every store)")
    q.add_argument("--json", action="store_true", help="one JSON list")
    q.set_defaults(func=cmd_list)

    q = commands.add_parser(
        "accept", help="decide an item: it was right (no options), another intent, the order's lines, a synonym"
    )
    q.add_argument("id", type=int, metavar="ID")
    q.add_argument("--intent", help="the intent it is (or a FAQ topic: faq/<topic>); see `comanda review intents`")
    q.add_argument("--items", help="the order as it should be read: SKU:QTY,SKU:QTY")
    q.add_argument(
        "--synonym",
        action="append",
        metavar="WORD=SKU",
        help="a word the catalog missed means this product (repeatable)",
    )
    q.set_defaults(func=cmd_accept)

    q = commands.add_parser("ignore", help="nothing to learn from this item")
    q.add_argument("id", type=int, metavar="ID")
    q.set_defaults(func=cmd_ignore)

    q = commands.add_parser("intents", help="every intent and FAQ topic a decision may name")
    q.set_defaults(func=cmd_intents)
