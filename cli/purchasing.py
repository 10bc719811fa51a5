"""`comanda purchasing …` (list, send, receive, set, cancel) and `comanda stock count`: purchase orders and stock
counts from the command line. Every change is audited with the actor ``cli:<operating-system user>``.

Sending prints the PO with WeasyPrint, which only COMANDA_ACTIONS_VENV has: there, `send` runs again with that
environment's ``comanda`` (as `comanda cfdi` does).
"""

from __future__ import annotations

import argparse
import getpass
import json
from decimal import Decimal
from typing import Any, Dict, List, Tuple

from comanda.errors import InvalidInput


def _actor() -> Any:
    from comanda.services.audit import Actor

    return Actor(f"cli:{getpass.getuser()}")


def parse_pairs(pairs: List[str], separator: str, what: str) -> Dict[str, Decimal]:
    """``["coffee_beans:2500", "CAFE-GRANO-250:20"]`` → {code: quantity}; a code given twice is an error."""
    from comanda.services.purchasing import parse_quantity

    found: Dict[str, Decimal] = {}
    for pair in pairs:
        code, sep, quantity = pair.rpartition(separator)
        if not sep or not code.strip():
            raise InvalidInput(f"{what} must be CODE{separator}QUANTITY, not {pair!r}")
        code = code.strip()
        if code in found:
            raise InvalidInput(f"{code} is given twice")
        found[code] = parse_quantity(quantity, code)
    return found


def _line_summary(po: Any) -> str:
    return ", ".join(
        f"{line.stock_item.code} {line.quantity_received.normalize():f}/{line.quantity_ordered.normalize():f}"
        for line in po.lines
    )


def cmd_list(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services import purchasing

    statuses = [s.strip() for value in args.status or [] for s in value.split(",") if s.strip()]
    with new_session() as session:
        if args.store:
            from comanda.services.stores import get_store

            get_store(session, args.store)
        orders = purchasing.list_orders(session, [args.store] if args.store else None, statuses or None)
        rows = [purchasing.as_json(po) for po in orders]
        lines = [
            f"{po.id:>5}  {po.store_id:<8} {po.supplier_id:<10} {po.status:<19} "
            f"expected {po.expected_on.isoformat() if po.expected_on else '-':<10}  {_line_summary(po)}"
            for po in orders
        ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif lines:
        print("\n".join(lines))
    else:
        print("no purchase orders")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import purchasing

    mailer = printer = None
    if not args.no_email:
        from cli.runner import ensure_actions_environment

        ensure_actions_environment("weasyprint")
        from integrations.email.smtp import mailer_from_settings
        from integrations.purchasing.pdf import WeasyPrinter

        mailer, printer = mailer_from_settings(), WeasyPrinter()
    with transaction() as session:
        po = purchasing.send_order(session, args.id, _actor(), mailer=mailer, printer=printer, email=not args.no_email)
        number, to, expected = purchasing.po_number(po), po.sent_to, po.expected_on
    how = f"e-mailed to {to}" if to else "marked as sent (no e-mail)"
    print(f"purchase order {args.id} ({number}) {how}; expected on {expected.isoformat()}")
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import purchasing

    with transaction() as session:
        po = purchasing.get_order(session, args.id)
        if args.all:
            quantities = {code: q for code, q in purchasing.outstanding_by_line(po).items() if q > 0}
        else:
            if not args.line:
                raise InvalidInput("say what arrived: --line CODE:QUANTITY (repeat), or --all")
            quantities = parse_pairs(args.line, ":", "--line")
        purchasing.receive(session, args.id, quantities, _actor(), note=args.note)
        status, summary = po.status, _line_summary(po)
    print(f"purchase order {args.id} {status}: {summary}")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import purchasing

    with transaction() as session:
        po = purchasing.get_order(session, args.id)
        for code, quantity in parse_pairs(args.line, ":", "--line").items():
            purchasing.set_quantity(session, po, code, quantity, _actor())
        summary = _line_summary(po)
    print(f"purchase order {args.id} draft: {summary}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import purchasing

    with transaction() as session:
        purchasing.cancel_order(session, args.id, _actor())
    print(f"purchase order {args.id} cancelled")
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import stock_counts

    counted = parse_pairs(args.counts, "=", "a count")
    reasons = {code: stock_counts.parse_reason(r) for code, r in _reasons(args.line_reason).items()}
    with transaction() as session:
        count = stock_counts.count_stock(
            session,
            args.store,
            counted,
            _actor(),
            reason=stock_counts.parse_reason(args.reason),
            reasons=reasons,
            note=args.note,
        )
        rows: List[Tuple[str, Decimal, Decimal, str]] = [
            (line.stock_item.code, line.expected, line.counted, line.reason) for line in count.lines
        ]
        count_id = count.id
    print(f"stock count {count_id} at {args.store}:")
    for code, expected, quantity, reason in rows:
        delta = quantity - expected
        change = f"{delta.normalize():+f} ({reason})" if delta else "as booked"
        print(f"  {code}: {expected.normalize():f} → {quantity.normalize():f}  {change}")
    return 0


def _reasons(values: List[str]) -> Dict[str, str]:
    found = {}
    for value in values or []:
        code, sep, reason = value.partition("=")
        if not sep:
            raise InvalidInput(f"--line-reason must be CODE=REASON, not {value!r}")
        found[code.strip()] = reason.strip()
    return found


def add_purchasing_parser(sub: Any) -> None:
    parser = sub.add_parser("purchasing", help="purchase orders: list, send, receive, change a draft, cancel")
    commands = parser.add_subparsers(dest="purchasing_command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", help="purchase orders, newest first")
    p.add_argument("--store", default="", help="one store (default: every store)")
    p.add_argument(
        "--status",
        action="append",
        help="draft, sent, partially_received, received or cancelled (repeat, or comma-separated)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("send", help="e-mail a draft's PDF to its supplier; it becomes sent")
    p.add_argument("id", type=int)
    p.add_argument("--no-email", action="store_true", help="sent by other means (phone, WhatsApp): only mark it")
    p.set_defaults(func=cmd_send)

    p = commands.add_parser("receive", help="record a delivery: what arrived of which lines")
    p.add_argument("id", type=int)
    p.add_argument("--line", action="append", metavar="CODE:QUANTITY", help="stock item code and quantity (repeat)")
    p.add_argument("--all", action="store_true", help="everything still outstanding arrived")
    p.add_argument("--note", help="e.g. the supplier's delivery note number")
    p.set_defaults(func=cmd_receive)

    p = commands.add_parser("set", help="change a draft's quantities (0 takes a line off)")
    p.add_argument("id", type=int)
    p.add_argument("--line", action="append", required=True, metavar="CODE:QUANTITY")
    p.set_defaults(func=cmd_set)

    p = commands.add_parser("cancel", help="cancel a draft or sent order (nothing received yet)")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_cancel)
