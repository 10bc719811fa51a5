"""`comanda returns`: the returns staff see on /console/returns, from the command line.

``list [--store S] [--status …] [--json]``, ``show ID``, ``approve ID``, ``reject ID --reason …``,
``receive ID --condition good|damaged`` and ``refund ID --reference …`` (cash or SPEI given back by hand).
Steps are the console's (comanda.services.returns), audited as ``cli:<user>``; the refund, the store credit
or the exchange a step makes due goes out at once. Runs in COMANDA_ACTIONS_VENV (payment SDKs, satcfdi).
"""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any, Dict

from comanda.enums import ReceivedCondition, StaffTask


def _setup() -> None:
    from cli.runner import ensure_actions_environment

    ensure_actions_environment("satcfdi")


def _actor() -> Any:
    from comanda.services.audit import Actor

    return Actor(f"cli:{getpass.getuser()}")


def _line(item: Dict[str, Any]) -> str:
    lines = ", ".join(f"{line['quantity']}×{line['sku']}" for line in item["lines"])
    refund = item["refund"] or {}
    money = f"${item['amount']}" + (f" refund {refund['status']}" if refund else "")
    return (
        f"{item['id']:<5} {item['store']:<8} {item['order']:<8} {item['status']:<10} {item['outcome']:<8} "
        f"{item['reason']:<16} {money:<24} {lines}"
    )


def cmd_list(args: argparse.Namespace) -> int:
    _setup()
    from sqlalchemy import select

    from comanda import models as m
    from comanda.db import new_session
    from comanda.services import returns
    from comanda.services.stores import get_store

    with new_session() as session:
        if args.store:
            stores = [get_store(session, args.store).id]
        else:
            stores = list(session.execute(select(m.Store.id)).scalars())
        found = [returns.as_json(session, r) for r in returns.list_returns(session, stores, args.status or None)]
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    for item in found:
        print(_line(item))
    print(f"{len(found)} return(s)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _setup()
    from comanda.db import new_session
    from comanda.services import returns

    with new_session() as session:
        print(json.dumps(returns.as_json(session, returns.get_return(session, args.id)), ensure_ascii=False, indent=2))
    return 0


def _step(args: argparse.Namespace, step: str, *extra: Any) -> int:
    _setup()
    from comanda.services import returns
    from integrations.cfdi import issuer
    from integrations.payments import payment_provider

    settled = returns.take_step(args.id, step, _actor(), payment_provider, issuer(), *extra)
    print(f"return {args.id}: {settled.status}")
    if settled.needs_staff == StaffTask.MANUAL_REFUND:
        print(
            "the sale was paid in cash or by SPEI: give the money back, then `comanda returns refund ID --reference …`"
        )
    elif settled.needs_staff:
        print(f"needs a person: {settled.needs_staff} (a handoff ticket says why)")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _step(args, "approve")


def cmd_reject(args: argparse.Namespace) -> int:
    return _step(args, "reject", args.reason)


def cmd_receive(args: argparse.Namespace) -> int:
    return _step(args, "receive", args.condition)


def cmd_refund(args: argparse.Namespace) -> int:
    _setup()
    from comanda.services import returns
    from integrations.cfdi import issuer
    from integrations.payments import payment_provider

    settled = returns.record_manual_refund(args.id, args.reference, payment_provider, issuer(), _actor().name)
    print(f"return {args.id}: {settled.status}")
    return 0


def add_returns_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("returns", help="returns: list, show, approve, reject, receive, refund by hand")
    commands = p.add_subparsers(dest="returns_command", required=True, metavar="COMMAND")

    q = commands.add_parser("list", help="returns, newest first")
    q.add_argument("--store", default="", help="one store (default: every store)")
    q.add_argument(
        "--status", default="", help="requested, approved, rejected, received, refunded, credited, exchanged"
    )
    q.add_argument("--json", action="store_true", help="as the API answers")
    q.set_defaults(func=cmd_list)

    q = commands.add_parser("show", help="one return, as JSON")
    q.add_argument("id", type=int, metavar="ID")
    q.set_defaults(func=cmd_show)

    q = commands.add_parser("approve", help="approve a return waiting for a person")
    q.add_argument("id", type=int, metavar="ID")
    q.set_defaults(func=cmd_approve)

    q = commands.add_parser("reject", help="reject a return; the customer reads the reason")
    q.add_argument("id", type=int, metavar="ID")
    q.add_argument("--reason", required=True, help="why, in words for the customer")
    q.set_defaults(func=cmd_reject)

    q = commands.add_parser("receive", help="the goods are here: good back on the shelf, damaged written off")
    q.add_argument("id", type=int, metavar="ID")
    q.add_argument("--condition", required=True, choices=ReceivedCondition.values())
    q.set_defaults(func=cmd_receive)

    q = commands.add_parser("refund", help="record cash or SPEI given back by hand for a return")
    q.add_argument("id", type=int, metavar="ID")
    q.add_argument("--reference", required=True, help="the receipt or the transfer's reference")
    q.set_defaults(func=cmd_refund)
