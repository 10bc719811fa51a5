"""`comanda handoffs`: see and resolve the conversations handed to a person from the command line (staff
use the console's inbox, /console/inbox, or the staff API, /api/handoffs).

Resolving a ticket closes it (audited) and, when it was the conversation's last open one, resumes the bot
for it through Rasa's HTTP API (``ConversationResumed``), so the next message is answered again.
"""

from __future__ import annotations

import argparse
from typing import Any

from comanda.errors import ComandaError


def _age(ticket: Any) -> str:
    from comanda import clock

    minutes = int((clock.now() - ticket.created_at).total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def cmd_list(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services import handoff

    with new_session() as session:
        tickets = handoff.open_tickets(session, args.store or None)
        for ticket in tickets:
            summary = (ticket.summary or "").replace("\n", " ")
            print(
                f"{ticket.id:<5} {ticket.status:<9} {ticket.reason:<13} {_age(ticket):>12}  "
                f"{ticket.conversation_id}  {summary[:60]}"
            )
    print(f"{len(tickets)} open")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from comanda import models as m
    from comanda.db import new_session
    from comanda.services import handoff

    with new_session() as session:
        ticket = handoff.get_ticket(session, args.ticket)
        customer = session.get(m.Customer, ticket.customer_id)
        print(f"ticket {ticket.id} · {ticket.status} · {ticket.reason}")
        print(f"store: {ticket.store_id}")
        print(f"conversation: {ticket.conversation_id}")
        print(f"customer: {customer.name or '-'} {customer.phone or customer.whatsapp_user_id or ''}".rstrip())
        print(f"opened: {ticket.created_at.isoformat(timespec='seconds')} ({_age(ticket)} ago)")
        if ticket.unanswered_notice_at:
            print(f"customer told nobody had answered: {ticket.unanswered_notice_at.isoformat(timespec='seconds')}")
        if ticket.assigned_to:
            owner = session.get(m.StaffUser, ticket.assigned_to)
            print(f"assigned to: {owner.name} <{owner.email}>")
        if ticket.resolved_at:
            print(f"resolved: {ticket.resolved_at.isoformat(timespec='seconds')}")
        print(f"summary: {ticket.summary or '-'}")
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import handoff
    from comanda.services.audit import Actor
    from integrations.rasa_api import RasaApi

    actor = Actor(f"cli:{args.by}" if args.by else "cli")
    with transaction() as session:
        ticket = handoff.get_ticket(session, args.ticket)
        conversation_id = ticket.conversation_id
        last = handoff.resolve(session, args.ticket, actor)
    if not last:
        print(f"ticket {args.ticket} resolved; the conversation has other open tickets: the bot stays quiet")
        return 0
    try:
        RasaApi.from_settings().resume(conversation_id)
    except ComandaError as exc:
        raise ComandaError(
            f"ticket {args.ticket} resolved, but the bot could not be resumed ({exc.message}); "
            "run the same command again once Rasa is up"
        ) from None
    print(f"ticket {args.ticket} resolved; the bot answers {conversation_id} again")
    return 0


def add_handoffs_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("handoffs", help="conversations handed to a person: list, show, resolve")
    commands = p.add_subparsers(dest="handoffs_command", required=True, metavar="COMMAND")

    q = commands.add_parser("list", help="tickets waiting or open, oldest first")
    q.add_argument("--store", default="", help="one store (default: every store)")
    q.set_defaults(func=cmd_list)

    q = commands.add_parser("show", help="one ticket: customer, reason, what they said")
    q.add_argument("ticket", type=int, metavar="ID")
    q.set_defaults(func=cmd_show)

    q = commands.add_parser("resolve", help="close a ticket; the bot answers the conversation again")
    q.add_argument("ticket", type=int, metavar="ID")
    q.add_argument("--by", default="", help="who resolved it (kept in the audit trail)")
    q.set_defaults(func=cmd_resolve)
