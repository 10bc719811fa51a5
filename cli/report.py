"""`comanda report sales|customers|service|stock` (the dashboard's figures, in the business's time zone) and
`comanda report export` (the daily export, for one day, now)."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any, List

from comanda.errors import InvalidInput

BY_CHOICES = (
    "hour",
    "day",
    "product",
    "category",
    "payment_method",
    "channel",
    "fulfilment",
    "customer",
    "reason",
    "supplier",
)


def _stores(session: Any, store: str) -> List[str]:
    from sqlalchemy import select

    from comanda import models as m
    from comanda.errors import NotFound

    query = select(m.Store.id).order_by(m.Store.id)
    found = list(session.execute(query.where(m.Store.id == store) if store else query).scalars())
    if not found:
        raise NotFound(f"no store {store!r}" if store else "no store yet: run `comanda seed`")
    return found


def _day(session: Any, text: str, store: str, flag: str) -> date:
    from cli.main import business_day

    try:
        return business_day(session, text, store)
    except InvalidInput:
        raise InvalidInput(f"{flag} must be YYYY-MM-DD, today or yesterday, not {text!r}") from None


def _shown(value: Any) -> str:
    from comanda.services.reports import plain

    return "-" if value is None else str(plain(value))


def cmd_report(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services import reports

    with new_session() as session:
        stores = _stores(session, args.store)
        start = _day(session, args.date_from, args.store, "--from")
        end = _day(session, args.date_to or args.date_from, args.store, "--to")
        report = reports.build(session, args.report, reports.period(session, stores, start, end, args.lang))
    chosen = reports.table_for(report, args.by) if args.by else None
    table = chosen[1] if chosen else reports.summary_table(report)
    if args.csv:
        with open(args.csv, "w", encoding=reports.CSV_ENCODING, newline="") as file:
            file.write(reports.csv_text(table))
    if args.json:
        found = report.as_json()
        if chosen:
            found["tables"] = {chosen[0]: found["tables"][chosen[0]]}
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    period = report.period
    print(f"{report.kind} · {', '.join(period.store_ids)} · {period.start} – {period.end} ({period.timezone})")
    for key, value in report.summary.items():
        print(f"  {key:<28} {_shown(value)}")
    if chosen:
        print()
        widths = [max(len(c), *(len(_shown(r.get(c))) for r in table.rows)) for c in table.columns]
        print("  ".join(c.ljust(w) for c, w in zip(table.columns, widths, strict=True)).rstrip())
        for row in table.rows:
            print("  ".join(_shown(row.get(c)).ljust(w) for c, w in zip(table.columns, widths, strict=True)).rstrip())
    else:
        print(f"  (tables: --by {' | '.join(reports.BY[report.kind])})")
    if args.csv:
        print(f"written to {args.csv}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from comanda import models as m
    from comanda.db import new_session
    from comanda.services import report_export
    from comanda.settings import setting
    from integrations.email.smtp import mailer_from_settings

    with new_session() as session:
        query = select(m.Business.id).order_by(m.Business.id)
        businesses = list(
            session.execute(query.where(m.Business.id == args.business) if args.business else query).scalars()
        )
        if not businesses:
            raise InvalidInput(
                f"no business {args.business!r}" if args.business else "no business yet: run `comanda seed`"
            )
        day = _day(session, args.date, "", "--date")
    for business_id in businesses:
        result = report_export.run_export(
            business_id, day, mailer_from_settings(), report_export.process_name(), force=args.force
        )
        if result is None:
            print(
                f"{business_id} {day}: already exported, or another process is exporting it (--force writes it again)"
            )
            continue
        where = f"{len(result.files)} files under {setting('COMANDA_EXPORT_DIR')}" if result.files else "no files"
        mailed = f"; e-mailed to {', '.join(result.emailed_to)}" if result.emailed_to else ""
        print(f"{business_id} {day}: {where}{mailed}")
    return 0


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    from comanda.services.reports import REPORTS

    p = sub.add_parser("report", help="sales, customers, service and stock figures; the daily export")
    commands = p.add_subparsers(dest="report", required=True, metavar="REPORT")
    for kind in REPORTS:
        q = commands.add_parser(kind, help=f"the {kind} report")
        q.add_argument("--store", default="", help="one store (default: every store)")
        q.add_argument(
            "--from", dest="date_from", default="today", help="first local day: YYYY-MM-DD, today or yesterday"
        )
        q.add_argument("--to", dest="date_to", default="", help="last local day (default: the --from day)")
        q.add_argument("--by", choices=BY_CHOICES, help="show one table (each report lists its own)")
        q.add_argument("--csv", help="write the table (or, without --by, the headline figures) to this CSV file")
        q.add_argument("--json", action="store_true", help="print JSON: amounts and rates as exact strings")
        q.add_argument(
            "--lang", choices=["es", "en"], default=None, help="product and category names (default: the business's)"
        )
        q.set_defaults(func=cmd_report)
    q = commands.add_parser("export", help="write (and e-mail) one day's CSV files now, as the daily export does")
    q.add_argument("--date", default="yesterday", help="the local day: YYYY-MM-DD, today or yesterday (the default)")
    q.add_argument("--business", default="", help="one business (default: every business)")
    q.add_argument("--force", action="store_true", help="write it again even when it was exported already")
    q.set_defaults(func=cmd_export)
