"""`/console/reports`: the owner's and managers' dashboard (sales, customers, service, stock) with charts, a date
range and store filter, and a CSV download of every table behind a chart. The figures are
comanda.services.reports'; a manager sees only the stores they work at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select

from backoffice.console.pages import bp, page, store_names
from backoffice.console.web import Visit, error_page, staff_only
from comanda import clock
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session
from comanda.enums import StaffRole
from comanda.errors import InvalidInput, NotFound
from comanda.i18n import catalogue, t
from comanda.money import format_money
from comanda.services import reports, staff

KINDS = "sales|customers|service|stock"
MONEY = {
    "gross",
    "discounts",
    "refunds",
    "net",
    "average_ticket",
    "revenue",
    "spend",
    "lifetime_value",
    "previous_gross",
}
# The charts drawn above each report's tables: (table, chart type, label column, value columns).
CHARTS: Dict[str, List[Tuple[str, str, str, Tuple[str, ...]]]] = {
    "sales": [
        ("by_hour", "bar", "hour", ("gross", "net", "previous_gross")),
        ("by_day", "bar", "day", ("gross", "net", "previous_gross")),
        ("product", "hbar", "name", ("revenue",)),
        ("category", "doughnut", "name", ("revenue",)),
        ("payment_method", "doughnut", "payment_method", ("gross",)),
        ("channel", "doughnut", "channel", ("gross",)),
        ("fulfilment", "doughnut", "fulfilment", ("gross",)),
    ],
    "customers": [("by_day", "stacked", "day", ("new", "returning")), ("top", "hbar", "name", ("spend",))],
    "service": [
        ("handoff_reasons", "hbar", "reason", ("handoffs",)),
        ("prep_by_hour", "bar", "hour", ("average_minutes",)),
    ],
    "stock": [("waste", "hbar", "name", ("quantity",)), ("suppliers", "hbar", "name", ("on_time_rate",))],
}


def label(kind: str, value: Any, lang: str) -> str:
    """A column, figure or value's name in the member's language (a value with none shows as it is)."""
    key = f"reports.{kind}.{value}"
    return t(key, lang) if key in catalogue() else ("—" if value is None else str(value))


def shown(column: str, value: Any, lang: str) -> str:
    """A cell or figure as people read it: $1,234.50, 33.3 %, 12.0 min, a day, a plain number."""
    if value is None:
        return "—"
    if isinstance(value, Decimal) and (column.endswith("rate") or column == "share" or column.startswith("change_")):
        percent = (value * 100).quantize(Decimal("0.1"))
        return f"{'+' if column.startswith('change_') and percent > 0 else ''}{percent:,} %"
    if isinstance(value, Decimal) and (column in MONEY or column.split("_", 1)[-1] in MONEY):
        return format_money(value)
    if column.endswith("minutes"):
        return f"{value} min"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if column in ("payment_method", "channel", "fulfilment", "reason"):
        return label("value", value, lang)
    if isinstance(value, datetime):  # already in the business's time zone
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value.isoformat() if isinstance(value, date) else value)


@dataclass
class Filters:
    store: str  # "" for all the member's stores
    start: date
    end: date


def filters(request: Request, visit: Visit) -> Filters:
    """The ?store=, ?from= and ?to= of the page (default: today, every store of the member)."""
    store = request.args.get("store") or ""
    stores = staff.store_filter(visit.member, store or None)  # NotFound for a store not theirs
    with new_session() as session:
        zone = session.execute(
            select(m.Business.timezone)
            .join(m.Store, m.Store.business_id == m.Business.id)
            .where(m.Store.id == stores[0])
        ).scalar_one()
    today = clock.local_date(zone)
    try:
        start = date.fromisoformat(request.args.get("from") or today.isoformat())
        end = date.fromisoformat(request.args.get("to") or start.isoformat())
    except ValueError:
        raise InvalidInput(t("console.reports.bad_date", visit.lang)) from None
    if end < start:
        raise InvalidInput(t("console.reports.bad_range", visit.lang))
    if (end - start).days + 1 > reports.MAX_DAYS:
        raise InvalidInput(t("console.reports.too_long", visit.lang, days=reports.MAX_DAYS))
    return Filters(store, start, end)


def build(visit: Visit, kind: str, chosen: Filters) -> reports.Report:
    with new_session() as session:
        period = reports.period(
            session, staff.store_filter(visit.member, chosen.store or None), chosen.start, chosen.end, visit.lang
        )
        return reports.build(session, kind, period)


def chart(kind: str, spec: Tuple[str, str, str, Tuple[str, ...]], report: reports.Report, lang: str) -> Dict[str, Any]:
    """What static/reports.js draws: labels, one series per value column (plain numbers), the type."""
    table_name, chart_type, key, values = spec
    rows = report.tables[table_name].rows
    return {
        "type": chart_type,
        "labels": [shown(key, row.get(key), lang) for row in rows],
        "series": [
            {
                "label": label("col", column, lang),
                "line": column.startswith("previous_"),  # the previous period: a line over the bars
                "data": [
                    float(row[column] * (100 if column.endswith("rate") else 1))
                    if row.get(column) is not None
                    else None
                    for row in rows
                ],
            }
            for column in values
        ],
    }


def sections(kind: str, report: reports.Report, lang: str) -> List[Dict[str, Any]]:
    drawn = {spec[0]: spec for spec in CHARTS[kind]}
    found = []
    for name, table in report.tables.items():
        found.append(
            {
                "name": name,
                "title": t(f"reports.table.{kind}.{name}", lang),
                "chart": chart(kind, drawn[name], report, lang) if name in drawn and table.rows else None,
                "columns": [label("col", c, lang) for c in table.columns],
                "rows": [[shown(c, row.get(c), lang) for c in table.columns] for row in table.rows],
            }
        )
    return found


def figures(report: reports.Report, lang: str) -> List[Dict[str, str]]:
    """The headline figures; in sales, each with the previous period and the change beside it."""
    found = []
    for key, value in report.summary.items():
        if key.startswith(("previous_", "change_")):
            continue
        item = {"key": key, "label": label("figure", key, lang), "value": shown(key, value, lang)}
        if f"previous_{key}" in report.summary:
            item["previous"] = shown(key, report.summary[f"previous_{key}"], lang)
            item["change"] = shown(f"change_{key}", report.summary[f"change_{key}"], lang)
        found.append(item)
    return found


def query_string(chosen: Filters) -> str:
    return f"store={chosen.store}&from={chosen.start.isoformat()}&to={chosen.end.isoformat()}"


@bp.get("/reports")
@staff_only(StaffRole.OWNER, StaffRole.MANAGER)
async def reports_home(request: Request) -> HTTPResponse:
    suffix = f"?{request.query_string}" if request.query_string else ""
    return response.redirect(f"/console/reports/sales{suffix}", status=303)


@bp.get(f"/reports/<kind:{KINDS}>")
@staff_only(StaffRole.OWNER, StaffRole.MANAGER)
async def reports_page(request: Request, kind: str) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    stores = await in_thread(store_names, visit.member)
    try:
        chosen = await in_thread(filters, request, visit)
        report = await in_thread(build, visit, kind, chosen)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang), request.path)
    except InvalidInput as exc:
        typed = {name: request.args.get(name) or "" for name in ("store", "from", "to")}
        return page(request, "reports.html", 400, kind=kind, stores=stores, form=typed, problem=exc.message)
    return page(
        request,
        "reports.html",
        kind=kind,
        stores=stores,
        form={"store": chosen.store, "from": chosen.start.isoformat(), "to": chosen.end.isoformat()},
        problem=None,
        figures=figures(report, visit.lang),
        sections=sections(kind, report, visit.lang),
        query=query_string(chosen),
        period=report.period,
    )


@bp.get(f"/reports/<kind:{KINDS}>/<filename:[a-z_]+\\.csv>")
@staff_only(StaffRole.OWNER, StaffRole.MANAGER)
async def reports_csv(request: Request, kind: str, filename: str) -> HTTPResponse:
    """One table as CSV (``summary`` for the headline figures), named after the report, table and days."""
    visit: Visit = request.ctx.visit
    table = filename.removesuffix(".csv")
    try:
        chosen = await in_thread(filters, request, visit)
        report = await in_thread(build, visit, kind, chosen)
    except NotFound:
        return response.text(t("console.error.not_found", visit.lang), status=404)
    except InvalidInput as exc:
        return response.text(exc.message, status=400)
    found: Optional[reports.Table] = reports.summary_table(report) if table == "summary" else report.tables.get(table)
    if found is None:
        return response.text(t("console.error.not_found", visit.lang), status=404)
    scope = chosen.store or "all"
    name = f"{kind}-{table}-{scope}-{chosen.start.isoformat()}_{chosen.end.isoformat()}.csv"
    return response.raw(
        reports.csv_text(found).encode(reports.CSV_ENCODING),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
