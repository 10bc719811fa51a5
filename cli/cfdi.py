"""`comanda cfdi …`: invoices from the command line, for staff and tests.

satcfdi lives only in COMANDA_ACTIONS_VENV (Rasa's environment cannot have it), so when ``cfdi`` runs where
satcfdi is missing, the same command is executed again with that environment's ``comanda``.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List

from comanda.enums import CancellationMotive
from comanda.errors import InvalidInput

if TYPE_CHECKING:
    from comanda import models as m

ACTOR = "cli"


def _print_invoice(invoice: m.Invoice) -> None:
    from comanda.money import format_money

    test = " (test document: no fiscal validity)" if invoice.test_document else ""
    print(
        f"invoice {invoice.id} {invoice.series}{invoice.folio} {invoice.kind} {invoice.status}: "
        f"{invoice.receiver_rfc} {format_money(invoice.total)} uuid {invoice.uuid}{test}"
    )


def _write_documents(invoice: m.Invoice, folder: Path, language: str) -> None:
    from comanda.services.cfdi.links import document_filename

    folder.mkdir(parents=True, exist_ok=True)
    for fmt, content in (("xml", invoice.xml.encode() if invoice.xml else None), ("pdf", invoice.pdf)):
        if content:
            path = folder / document_filename(invoice, fmt, language)
            path.write_bytes(content)
            print(f"wrote {path}")


def cmd_issue(args: argparse.Namespace) -> int:
    from comanda.services.cfdi.fiscal import FiscalData
    from comanda.services.cfdi.invoicing import issue_invoice
    from integrations.cfdi import issuer

    data = FiscalData(args.rfc, args.name, args.cp, args.regime, args.use, args.email)
    invoice = issue_invoice(args.order, data, issuer=issuer(), actor=ACTOR, replaces=args.replaces)
    _print_invoice(invoice)
    if args.out:
        _write_documents(invoice, Path(args.out), args.lang)
    if args.email:
        from comanda.services.cfdi.delivery import email_invoice
        from integrations.email.smtp import mailer_from_settings

        mailer = mailer_from_settings()
        if mailer is None:
            print("not e-mailed: COMANDA_SMTP_HOST is not set")
        else:
            print(f"e-mailed to {email_invoice(invoice.id, mailer=mailer, language=args.lang, actor=ACTOR)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services.cfdi.lifecycle import get_invoice

    with new_session() as session:
        invoice = get_invoice(session, args.invoice)
    content = invoice.pdf if args.pdf else (invoice.xml.encode() if invoice.xml else None)
    if not content:
        raise InvalidInput(f"invoice {invoice.id} ({invoice.status}) has no {'PDF' if args.pdf else 'XML'}")
    if args.out:
        Path(args.out).write_bytes(content)
        print(f"wrote {args.out}")
    else:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from comanda import models as m
    from comanda.db import new_session

    query = select(m.Invoice).order_by(m.Invoice.id)
    if args.order:
        query = query.where(m.Invoice.order_id == args.order)
    if args.store:
        query = query.where(m.Invoice.store_id == args.store)
    with new_session() as session:
        for invoice in session.execute(query).scalars():
            _print_invoice(invoice)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services.cfdi.lifecycle import cancel_invoice, get_invoice
    from integrations.cfdi import issuer

    with new_session() as session:
        pac = get_invoice(session, args.invoice).pac
    _print_invoice(
        cancel_invoice(args.invoice, args.motive, issuer=issuer(pac), actor=ACTOR, substitute_uuid=args.substitute)
    )
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from comanda.services.cfdi.lifecycle import release_unconfirmed

    _print_invoice(release_unconfirmed(args.invoice, actor=ACTOR))
    return 0


def _returned_lines(specs: List[str]) -> Dict[int, int]:
    lines = {}
    for spec in specs:
        line, _, units = spec.partition(":")
        if not (line.isdigit() and units.isdigit()):
            raise InvalidInput(f"--line takes ORDER_LINE_ID:UNITS, not {spec!r}")
        lines[int(line)] = int(units)
    return lines


def cmd_credit_note(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services.cfdi.credit_notes import issue_credit_note
    from comanda.services.cfdi.lifecycle import get_invoice
    from integrations.cfdi import issuer

    try:
        amount = Decimal(args.amount) if args.amount is not None else None
    except InvalidOperation:
        amount = Decimal("NaN")
    if amount is not None and not amount.is_finite():
        raise InvalidInput(f"--amount must be an amount of money, not {args.amount!r}")
    with new_session() as session:
        pac = get_invoice(session, args.invoice).pac
    note = issue_credit_note(
        args.invoice,
        issuer=issuer(pac),
        actor=ACTOR,
        amount=amount,
        lines=_returned_lines(args.line) if args.line else None,
    )
    _print_invoice(note)
    return 0


def cmd_global(args: argparse.Namespace) -> int:
    from comanda.services.cfdi.global_invoices import issue_global_invoice
    from integrations.cfdi import issuer

    invoice = issue_global_invoice(args.store, args.period, issuer=issuer(), actor=ACTOR)
    if invoice is None:
        print(f"the global invoice of {args.period} was cancelled; no sale of the period is left without a CFDI")
    else:
        _print_invoice(invoice)
    return 0


def cmd_cfdi(args: argparse.Namespace) -> int:
    from cli.runner import ensure_actions_environment

    ensure_actions_environment("satcfdi")
    return args.cfdi_func(args)


def add_cfdi_parser(sub: argparse._SubParsersAction) -> None:
    cfdi = sub.add_parser("cfdi", help="CFDI 4.0 invoices: issue, show, list, cancel, release, credit-note, global")
    cfdi.set_defaults(func=cmd_cfdi)
    commands = cfdi.add_subparsers(dest="cfdi_command", required=True, metavar="CFDI_COMMAND")

    p = commands.add_parser("issue", help="issue the invoice of a paid order")
    p.add_argument("--order", type=int, required=True)
    p.add_argument("--rfc", required=True)
    p.add_argument("--name", required=True, help="as on the Constancia de Situación Fiscal, without SA DE CV")
    p.add_argument("--cp", required=True, help="postal code of the fiscal address")
    p.add_argument("--regime", required=True, help="régimen fiscal, e.g. 601, 612, 626")
    p.add_argument("--use", required=True, help="uso CFDI, e.g. G03")
    p.add_argument("--email", help="also e-mail it (needs COMANDA_SMTP_HOST)")
    p.add_argument("--out", help="folder to write the XML and PDF to")
    p.add_argument("--replaces", type=int, metavar="INVOICE_ID", help="correct this invoice (cancelled with 01)")
    p.add_argument("--lang", choices=["es", "en"], default="es", help="language of file names and e-mail")
    p.set_defaults(cfdi_func=cmd_issue)

    p = commands.add_parser("show", help="print an invoice's XML or PDF")
    p.add_argument("invoice", type=int, metavar="ID")
    fmt = p.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--xml", action="store_true")
    fmt.add_argument("--pdf", action="store_true")
    p.add_argument("--out", help="file to write instead of standard output")
    p.set_defaults(cfdi_func=cmd_show)

    p = commands.add_parser("list", help="list invoices")
    p.add_argument("--order", type=int)
    p.add_argument("--store", help="store id (default: every store)")
    p.set_defaults(cfdi_func=cmd_list)

    p = commands.add_parser("cancel", help="cancel a CFDI with SAT's motive 01-04")
    p.add_argument("invoice", type=int, metavar="ID")
    p.add_argument("--motive", required=True, choices=CancellationMotive.values())
    p.add_argument("--substitute", metavar="UUID", help="motive 01: the UUID of the CFDI that replaces it")
    p.set_defaults(cfdi_func=cmd_cancel)

    p = commands.add_parser(
        "release",
        help="an unconfirmed invoice the PAC holds no live CFDI for (checked on its "
        "site): free its order or period to be invoiced again",
    )
    p.add_argument("invoice", type=int, metavar="ID")
    p.set_defaults(cfdi_func=cmd_release)

    p = commands.add_parser("credit-note", help="issue a credit note (Egreso) for an invoice")
    p.add_argument("invoice", type=int, metavar="ID")
    p.add_argument("--amount", help="credit this amount (IVA included) instead of units")
    p.add_argument("--line", action="append", metavar="ORDER_LINE_ID:UNITS", help="units given back (repeat)")
    p.set_defaults(cfdi_func=cmd_credit_note)

    p = commands.add_parser("global", help="issue the factura global of a store's day or month")
    p.add_argument("--store", required=True)
    p.add_argument("--period", required=True, metavar="YYYY-MM[-DD]")
    p.set_defaults(cfdi_func=cmd_global)
