"""The `comanda` command line: one entry point for operators, owners and tests.

Errors Comanda expects (a bad setting, a missing store, a busy port) print one line, ``error: ...``,
and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from sqlalchemy.exc import DBAPIError

from comanda.errors import ComandaError, InvalidInput, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def cmd_migrate(args: argparse.Namespace) -> int:
    from comanda.migrate import upgrade

    upgrade()
    print("database is at the latest schema")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from comanda import models as m
    from comanda.db import transaction
    from comanda.services.catalog_loader import load_catalog, read_catalog
    from comanda.settings import setting

    if not args.demo and not args.file:
        raise ComandaError("say what to load: --demo, or a catalog file")
    path = Path(args.file or setting("COMANDA_CATALOG"))
    data = read_catalog(path)
    with transaction() as session:
        seeded_already = args.if_empty and session.execute(select(m.Business.id).limit(1)).first()
    if seeded_already:
        print("database already has a business: not seeding")
    else:
        with transaction() as session:
            report = load_catalog(session, data)
        if report.changed:
            created = ", ".join(f"{n} {t}" for t, n in sorted(report.created.items())) or "nothing"
            updated = ", ".join(f"{n} {t}" for t, n in sorted(report.updated.items())) or "nothing"
            print(f"loaded {path.name}: created {created}; updated {updated}")
        else:
            print(f"loaded {path.name}: already up to date, nothing changed")
    if args.demo:  # the demo's first owner, when the database has no staff yet (`make run` prints its login)
        from cli.staff import ensure_demo_owner

        ensure_demo_owner()
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    import os

    from comanda.settings import SETTINGS, setting

    for s in SETTINGS.values():
        if args.values:
            value = "(set)" if s.secret and os.environ.get(s.name) else ("(hidden)" if s.secret else setting(s.name))
            print(f"{s.name}={value}")
        else:
            print(f"{s.name}\n    {s.help}\n    default: {s.default_doc}")
    return 0


def cmd_menu(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.money import format_money
    from comanda.services.menu import store_menu

    with new_session() as session:
        sections = store_menu(session, args.store, args.lang)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "category": s.category_id,
                        "title": s.title,
                        "items": [{"sku": i.sku, "name": i.name, "price": str(i.price)} for i in s.items],
                    }
                    for s in sections
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    for section in sections:
        print(section.title)
        for item in section.items:
            print(f"  {item.sku:<16} {item.name:<40} {format_money(item.price):>10}")
    return 0


def cmd_stock(args: argparse.Namespace) -> int:
    from decimal import Decimal

    if args.sku == "count":
        from cli.purchasing import cmd_count

        return cmd_count(args)
    if args.counts:
        raise InvalidInput(
            f"`comanda stock {args.sku}` takes one SKU; to record a count: comanda stock count CODE=QTY …"
        )

    from comanda.db import new_session
    from comanda.services.reservations import stock_report

    with new_session() as session:
        report = stock_report(session, args.store, args.sku)
    shown = {k: format(v.normalize(), "f") if isinstance(v, Decimal) else v for k, v in report.items()}
    if args.json:
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return 0
    print(
        f"{shown['sku']} at {shown['store']}: on hand {shown['on_hand']}, reserved {shown['reserved']}, "
        f"available {shown['available']} ({shown['unit']})"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from cli.runner import run_stack

    return run_stack(only=args.only)


def cmd_shell(args: argparse.Namespace) -> int:
    from cli.runner import run_shell

    return run_shell()


def cmd_rasa(args: argparse.Namespace) -> int:
    """Run Rasa's own command line from the Rasa environment, with Comanda's settings resolved."""
    import os

    from cli.runner import process_env, venv_bin
    from comanda.settings import home

    os.chdir(home())
    program = venv_bin("COMANDA_RASA_VENV", "rasa")
    os.execve(program, [program, *args.rasa_args], process_env())


def cmd_parse(args: argparse.Namespace) -> int:
    from cli.parse import parse, read_texts

    return parse(read_texts(args.messages, args.jsonl), args.store, args.model)


def cmd_payments_reconcile(args: argparse.Namespace) -> int:
    """The day's link payments against the providers' books; problems are listed first."""
    import csv
    import dataclasses

    from cli.runner import ensure_actions_environment

    ensure_actions_environment("stripe")
    from comanda.db import new_session
    from comanda.enums import ReconciliationStatus
    from comanda.services.payments import reconcile
    from comanda.settings import setting
    from integrations.payments import payment_provider

    with new_session() as session:
        day = business_day(session, args.date, args.store)
        rows = reconcile(session, day, payment_provider, args.store, (setting("COMANDA_PAYMENT_PROVIDER"),))
    rows.sort(key=lambda row: (row.status == ReconciliationStatus.OK, row.order_id or 0))
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(
                file, fieldnames=[f.name for f in dataclasses.fields(rows[0])] if rows else ["status"]
            )
            writer.writeheader()
            writer.writerows(dataclasses.asdict(row) for row in rows)
    for row in rows:
        print(
            f"{row.status:<20} order {row.order_id or '-':<6} {row.ticket or '-':<6} {row.provider:<12} "
            f"ours {row.ours if row.ours is not None else '-':>9}  "
            f"theirs {row.theirs if row.theirs is not None else '-':>9}"
            f"  {row.note}"
        )
    problems = sum(row.status != ReconciliationStatus.OK for row in rows)
    written = f"; written to {args.csv}" if args.csv else ""
    print(f"{day.isoformat()}: {len(rows)} payments, {problems} problems{written}")
    return 0


RELATIVE_DAYS = {"today": 0, "yesterday": -1}


def business_day(session: Session, text: str, store_id: str) -> date:
    """A day as the command line takes it: YYYY-MM-DD, or today / yesterday in the business's time zone."""
    from sqlalchemy import select

    from comanda import models as m
    from comanda.clock import local_date

    if text not in RELATIVE_DAYS:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"--date must be YYYY-MM-DD, today or yesterday, not {text!r}") from None
    query = select(m.Business.timezone).join(m.Store, m.Store.business_id == m.Business.id).distinct()
    zones = session.execute(query.where(m.Store.id == store_id) if store_id else query).scalars().all()
    if not zones:
        raise NotFound(f"no store {store_id!r}" if store_id else "no store yet: run `comanda seed`")
    if len(zones) > 1:
        raise InvalidInput(f"the stores keep {len(zones)} time zones, so {text!r} is ambiguous: give --date YYYY-MM-DD")
    return local_date(zones[0]) + timedelta(days=RELATIVE_DAYS[text])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comanda", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("migrate", help="bring the database to the latest schema")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("seed", help="load a business catalog (idempotent)")
    p.add_argument("file", nargs="?", help="catalog YAML file")
    p.add_argument("--demo", action="store_true", help="load the demo business (COMANDA_CATALOG)")
    p.add_argument("--if-empty", action="store_true", help="only when the database has no business yet")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("settings", help="list every setting with its default")
    p.add_argument("--values", action="store_true", help="print the values in force (secrets hidden)")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("menu", help="print what a store sells now")
    p.add_argument("--store", default=None, help="store id (default: COMANDA_DEFAULT_STORE)")
    p.add_argument("--lang", choices=["es", "en"], default="es")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_menu)

    p = sub.add_parser(
        "stock",
        help="print a SKU's stock at a store (on hand, reserved, available); "
        "`stock count --store S CODE=QTY …` records a count",
    )
    p.add_argument("sku", help="product or variant SKU, or an ingredient code; or `count`")
    p.add_argument("counts", nargs="*", metavar="CODE=QTY", help="with `count`: the quantities counted")
    p.add_argument("--store", default=None, help="store id (default: COMANDA_DEFAULT_STORE)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--reason", help="with `count`: waste, breakage or count_correction (the default)")
    p.add_argument("--line-reason", action="append", metavar="CODE=REASON", help="with `count`: one item's reason")
    p.add_argument("--note", help="with `count`: a note kept with the count")
    p.set_defaults(func=cmd_stock, more_positionals="counts")

    p = sub.add_parser("parse", help="print how the bot reads messages, one JSON object per message")
    p.add_argument("messages", nargs="*", help="messages (or --jsonl and one per line on stdin)")
    p.add_argument("--store", default=None, help="store id (default: COMANDA_DEFAULT_STORE)")
    p.add_argument("--jsonl", action="store_true", help="read messages from stdin, one per line")
    p.add_argument(
        "--model",
        default=None,
        help="model file or folder, loaded here (default: the running Rasa server's model, else models/)",
    )
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("payments", help="payments: reconcile a day against the providers")
    payments_sub = p.add_subparsers(dest="payments_command", required=True, metavar="COMMAND")
    p = payments_sub.add_parser(
        "reconcile", help="paid orders against provider payments: missing, duplicated, amount mismatches, unpaid links"
    )
    p.add_argument(
        "--date", default="today", help="the business's local day: YYYY-MM-DD, today (the default) or yesterday"
    )
    p.add_argument("--store", default="", help="one store (default: every store)")
    p.add_argument("--csv", help="also write every row to this CSV file")
    p.set_defaults(func=cmd_payments_reconcile)

    p = sub.add_parser("run", help="start the Rasa server, action server and back office; Ctrl-C stops them")
    p.add_argument("--only", choices=["rasa", "actions", "backoffice"], help="start one process only")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("shell", help="chat with the bot in the terminal")
    p.set_defaults(func=cmd_shell)

    p = sub.add_parser("rasa", help="run a `rasa` command (train, shell, test, ...) with Comanda's settings")
    p.add_argument("rasa_args", nargs=argparse.REMAINDER, help="arguments for rasa")
    p.set_defaults(func=cmd_rasa)

    from cli.cfdi import add_cfdi_parser
    from cli.cluster import add_cluster_parser
    from cli.handoffs import add_handoffs_parser
    from cli.purchasing import add_purchasing_parser
    from cli.report import add_report_parser
    from cli.returns import add_returns_parser
    from cli.review import add_review_parser
    from cli.staff import add_staff_parser
    from cli.train import add_train_parser

    add_cfdi_parser(sub)
    add_cluster_parser(sub)
    add_handoffs_parser(sub)
    add_returns_parser(sub)
    add_purchasing_parser(sub)
    add_report_parser(sub)
    add_review_parser(sub)
    add_train_parser(sub)
    add_staff_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    # argparse does not take positionals after options once a nargs="*" positional is filled ("stock count
    # --store S A=1 B=2"): a command that sets `more_positionals` gets them appended to that attribute.
    args, extra = parser.parse_known_args(argv)
    if extra:
        target = getattr(args, "more_positionals", None)
        if target is None or any(word.startswith("-") for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, target, [*getattr(args, target), *extra])
    if getattr(args, "store", "unset") is None:
        from comanda.settings import setting

        args.store = setting("COMANDA_DEFAULT_STORE")
    try:
        return args.func(args)
    except ComandaError as exc:
        return fail(exc)
    except DBAPIError:
        problem = database_problem()
        if problem is None:
            raise  # the database is reachable and migrated: a bug, keep its traceback
        return fail(problem)
    except KeyboardInterrupt:
        return 130


def fail(exc: ComandaError) -> int:
    print(f"error: {exc.message}", file=sys.stderr)
    return 2


def database_problem() -> Optional[ComandaError]:
    """Why a database error happened when it is the operator's to fix: an unreachable database, or one
    that is not at the latest schema; None when neither."""
    from comanda.migrate import ensure_migrated

    try:
        ensure_migrated()
    except ComandaError as exc:
        return exc
    return None


if __name__ == "__main__":
    sys.exit(main())
