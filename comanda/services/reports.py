"""The owner's figures: sales, customers, service and stock over a range of the business's local days.

Every figure is an SQL aggregation over the rows the rest of Comanda keeps (orders, refunds, handoff tickets,
the stock ledger, purchase orders): nothing is stored twice. Times are grouped by UTC hour in SQL and each
hour is then placed in the business's time zone (Mexico's and the US's offsets are whole hours), so "by day"
and "by hour" are the shop's days and hours, on SQLite and PostgreSQL alike. Money is Decimal (comanda.money).

What a sale is: an order that entered the store's queue (paid, or cash to pay at the counter), counted at
the moment it entered (``confirmed_at``); an order cancelled before any money changed hands is not one.
Gross = Σ(subtotal + delivery fee); discounts = gross − Σ total; refunds = refunds that succeeded in the
range (counted when the money went back); net = gross − refunds − discounts.

A few figures read columns that other parts of Comanda are adding: each is one function below
(``_first_response_at``, ``_resolved_at``, ``_waste_reason``, ``_po_delivered``) so it can be pointed at
the new column in one place.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import Float, String, and_, func, literal, not_, select, union
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from comanda import clock
from comanda import models as m
from comanda.enums import (
    HandoffReason,
    LowStockAlertStatus,
    MovementReason,
    OrderPaymentStatus,
    OrderStatus,
    PurchaseOrderStatus,
    RefundStatus,
)
from comanda.errors import InvalidInput, NotFound
from comanda.i18n import language_or_default
from comanda.money import round_money

REPORTS = ("sales", "customers", "service", "stock")
MAX_DAYS = 366
TOP_CUSTOMERS = 10
RATE = Decimal("0.0001")
MINUTES = Decimal("0.1")


# --- SQL helpers: the same SQL on SQLite and PostgreSQL ----------------------------------------------------


class utc_hour(FunctionElement):
    """``'YYYY-MM-DD HH'`` of a UTC timestamp: the bucket every time series is grouped by."""

    type = String()
    inherit_cache = True
    name = "utc_hour"


@compiles(utc_hour, "sqlite")
def _utc_hour_sqlite(element: utc_hour, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H', {compiler.process(element.clauses, **kw)})"


@compiles(utc_hour, "postgresql")
def _utc_hour_pg(element: utc_hour, compiler: Any, **kw: Any) -> str:
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"


class seconds_between(FunctionElement):
    """Seconds from the second timestamp to the first."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_pg(element: seconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({later}) - ({earlier}))"


def _money(value: Any) -> Decimal:
    """A summed amount (SQLite sums REAL): back to exact cents."""
    return round_money(Decimal(str(value))) if value is not None else Decimal("0.00")


def _rate(part: int, whole: int) -> Optional[Decimal]:
    return (Decimal(part) / Decimal(whole)).quantize(RATE) if whole else None


def _average(total: Decimal, count: int) -> Optional[Decimal]:
    return round_money(total / count) if count else None


def _minutes(seconds: Any, count: int) -> Optional[Decimal]:
    return (Decimal(str(seconds)) / 60 / count).quantize(MINUTES) if count and seconds is not None else None


def _change(now: Optional[Decimal], before: Optional[Decimal]) -> Optional[Decimal]:
    """Relative change against the previous period (0.25 = +25 %); None when there is nothing to compare."""
    if now is None or not before:
        return None
    return ((Decimal(now) - Decimal(before)) / Decimal(before)).quantize(RATE)


# --- the range and the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Local days ``start``..``end`` (both included) at some stores of one business, in its time zone."""

    store_ids: Tuple[str, ...]
    start: date
    end: date
    timezone: str
    language: str = "es"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), self.zone).astimezone(timezone.utc)

    @property
    def end_utc(self) -> datetime:
        """The first instant after the range (exclusive)."""
        return datetime.combine(self.end + timedelta(days=1), datetime.min.time(), self.zone).astimezone(timezone.utc)

    def previous(self) -> Period:
        """The same number of days just before: what "vs previous period" compares with."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    def within(self, column: Any) -> ColumnElement:
        return and_(column >= self.start_utc, column < self.end_utc)

    def local(self, bucket: str) -> datetime:
        """A ``utc_hour`` bucket as the business's local time."""
        return _local_hour(bucket, self.timezone)

    def each_day(self) -> List[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]


@lru_cache(maxsize=65536)
def _local_hour(bucket: str, zone: str) -> datetime:
    """Buckets repeat across a report's queries (a year has 8,760): each is parsed and placed once."""
    utc = datetime(int(bucket[:4]), int(bucket[5:7]), int(bucket[8:10]), int(bucket[11:13]), tzinfo=timezone.utc)
    return utc.astimezone(ZoneInfo(zone))


def period(
    session: Session,
    store_ids: Sequence[str],
    start: date,
    end: date,
    language: Optional[str] = None,
) -> Period:
    """Check the range and the stores (one business, one time zone); the Period to report on."""
    if end < start:
        raise InvalidInput(f"the range ends ({end}) before it starts ({start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days")
    if not store_ids:
        raise InvalidInput("a report needs at least one store")
    rows = session.execute(
        select(m.Store.id, m.Business.timezone, m.Business.default_language)
        .join(m.Business, m.Business.id == m.Store.business_id)
        .where(m.Store.id.in_(list(store_ids)))
    ).all()
    unknown = sorted(set(store_ids) - {row.id for row in rows})
    if unknown:
        raise NotFound(f"no store {unknown[0]!r}", store_id=unknown[0])
    zones = {row.timezone for row in rows}
    if len(zones) > 1:
        raise InvalidInput("those stores keep different time zones: report on them one at a time")
    return Period(
        tuple(sorted(set(store_ids))), start, end, zones.pop(), language_or_default(language, rows[0].default_language)
    )


@dataclass
class Table:
    """One table behind a chart: its columns in order and a dict per row."""

    columns: List[str]
    rows: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    kind: str
    period: Period
    summary: Dict[str, Any]
    tables: Dict[str, Table]

    def as_json(self) -> Dict[str, Any]:
        """Plain JSON: amounts, rates and minutes as strings (exact), dates as ISO."""
        return {
            "report": self.kind,
            "stores": list(self.period.store_ids),
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "timezone": self.period.timezone,
            "summary": {key: plain(value) for key, value in self.summary.items()},
            "tables": {
                name: [{c: plain(row.get(c)) for c in table.columns} for row in table.rows]
                for name, table in self.tables.items()
            },
        }


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


# --- sales -------------------------------------------------------------------------------------------------


def _is_sale(p: Period) -> ColumnElement:
    """Orders that entered the queue in the range, except those cancelled before any money changed hands."""
    return and_(
        m.Order.store_id.in_(p.store_ids),
        m.Order.confirmed_at.is_not(None),
        p.within(m.Order.confirmed_at),
        not_(
            and_(
                m.Order.status == OrderStatus.CANCELLED.value, m.Order.payment_status == OrderPaymentStatus.UNPAID.value
            )
        ),
    )


GROSS = func.sum(m.Order.subtotal + m.Order.delivery_fee)
DISCOUNTS = func.sum(m.Order.subtotal + m.Order.delivery_fee - m.Order.total)


def _refunds_by_hour(session: Session, p: Period) -> Dict[str, Decimal]:
    """Money given back in the range at these stores, by the UTC hour it went back."""
    bucket = utc_hour(m.Refund.completed_at)
    at_these_stores = (  # checked per refund of the range: the range's refunds are read first, by their time
        select(m.Payment.id)
        .join(m.Order, m.Order.id == m.Payment.order_id)
        .where(m.Payment.id == m.Refund.payment_id, m.Order.store_id.in_(p.store_ids))
        .exists()
    )
    rows = session.execute(
        select(bucket, func.sum(m.Refund.amount))
        .where(
            m.Refund.status == RefundStatus.SUCCEEDED.value,
            m.Refund.completed_at.is_not(None),
            p.within(m.Refund.completed_at),
            at_these_stores,
        )
        .group_by(bucket)
    ).all()
    return {b: _money(amount) for b, amount in rows}


def _sales_by_hour(session: Session, p: Period) -> List[Tuple[str, int, Decimal, Decimal]]:
    bucket = utc_hour(m.Order.confirmed_at)
    rows = session.execute(
        select(bucket, func.count(m.Order.id), GROSS, DISCOUNTS).where(_is_sale(p)).group_by(bucket)
    ).all()
    return [(b, n, _money(gross), _money(discounts)) for b, n, gross, discounts in rows]


def _sales_row(
    key: Dict[str, Any], orders: int, gross: Decimal, discounts: Decimal, refunds: Decimal
) -> Dict[str, Any]:
    return {
        **key,
        "orders": orders,
        "gross": gross,
        "discounts": discounts,
        "refunds": refunds,
        "net": gross - refunds - discounts,
        "average_ticket": _average(gross - discounts, orders),
    }


SALES_COLUMNS = ["orders", "gross", "discounts", "refunds", "net", "average_ticket"]


@dataclass
class _Hours:
    """One range's sales and refunds by UTC hour, read once and folded into totals, hours and days."""

    period: Period
    sales: List[Tuple[str, int, Decimal, Decimal]]
    refunds: Dict[str, Decimal]

    @classmethod
    def read(cls, session: Session, p: Period) -> _Hours:
        return cls(p, _sales_by_hour(session, p), _refunds_by_hour(session, p))

    def totals(self) -> Dict[str, Any]:
        return _sales_row(
            {},
            sum(n for _, n, _, _ in self.sales),
            sum((g for _, _, g, _ in self.sales), Decimal("0.00")),
            sum((d for _, _, _, d in self.sales), Decimal("0.00")),
            sum(self.refunds.values(), Decimal("0.00")),
        )

    def folded(self, by_day: bool) -> Dict[Any, List[Any]]:
        """Orders, gross, discounts and refunds per local hour (0–23) or day (every one listed, empty at 0)."""
        p = self.period
        keys: Iterable[Any] = p.each_day() if by_day else range(24)
        totals: Dict[Any, List[Any]] = {k: [0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00")] for k in keys}

        def key(bucket: str) -> Any:
            local = p.local(bucket)
            return local.date() if by_day else local.hour

        for bucket, orders, gross, discounts in self.sales:
            slot = totals[key(bucket)]
            slot[0] += orders
            slot[1] += gross
            slot[2] += discounts
        for bucket, amount in self.refunds.items():
            totals[key(bucket)][3] += amount
        return totals


def _by_time(now: _Hours, before: _Hours, by_day: bool) -> Table:
    """Sales by local hour of day or by day, each beside the previous period's gross: the same hour, or the
    day as many days earlier as the range is long."""
    name = "day" if by_day else "hour"
    rows = [
        {**_sales_row({name: k}, *v), "previous_gross": previous[1]}
        for (k, v), previous in zip(now.folded(by_day).items(), before.folded(by_day).values(), strict=True)
    ]
    return Table([name, *SALES_COLUMNS, "previous_gross"], rows)


def _grouped(session: Session, p: Period, column: Any, name: str) -> Table:
    """Sales split by one order column (payment method, channel, pickup or delivery)."""
    rows = session.execute(
        select(column, func.count(m.Order.id), GROSS, DISCOUNTS).where(_is_sale(p)).group_by(column).order_by(column)
    ).all()
    table = Table([name, "orders", "gross", "share", "average_ticket"])
    total = sum((_money(g) - _money(d) for _, _, g, d in rows), Decimal("0.00"))
    for value, orders, gross, discounts in rows:
        paid = _money(gross) - _money(discounts)
        table.rows.append(
            {
                name: value or "unknown",
                "orders": orders,
                "gross": _money(gross),
                "share": (paid / total).quantize(RATE) if total else None,
                "average_ticket": _average(paid, orders),
            }
        )
    table.rows.sort(key=lambda row: -row["gross"])
    return table


def _mix(session: Session, p: Period, by_category: bool) -> Table:
    """Units and revenue per product (or category): what sells."""
    name_col = m.Category.name_en if p.language == "en" else m.Category.name_es
    product_name = m.Product.name_en if p.language == "en" else m.Product.name_es
    keys: List[Any] = [m.Category.id, name_col] if by_category else [m.Product.sku, product_name, name_col]
    rows = session.execute(
        select(
            *keys,
            func.sum(m.OrderLine.quantity),
            func.sum(m.OrderLine.returned_quantity),
            func.sum(m.OrderLine.line_total),
        )
        .join(m.Order, m.Order.id == m.OrderLine.order_id)
        .join(m.Product, m.Product.id == m.OrderLine.product_id)
        .join(m.Category, m.Category.id == m.Product.category_id)
        .where(_is_sale(p))
        .group_by(*keys)
    ).all()
    columns = ["category", "name"] if by_category else ["sku", "name", "category"]
    table = Table([*columns, "units", "returned", "revenue", "share"])
    total = sum((_money(r[-1]) for r in rows), Decimal("0.00"))
    for row in rows:
        revenue = _money(row[-1])
        table.rows.append(
            {
                **dict(zip(columns, row[: len(keys)], strict=True)),
                "units": int(row[-3]),
                "returned": int(row[-2] or 0),
                "revenue": revenue,
                "share": (revenue / total).quantize(RATE) if total else None,
            }
        )
    table.rows.sort(key=lambda r: (-r["revenue"], -r["units"], r[columns[0]]))
    return table


def sales(session: Session, p: Period) -> Report:
    hours, hours_before = _Hours.read(session, p), _Hours.read(session, p.previous())
    now, before = hours.totals(), hours_before.totals()
    cancelled = session.execute(
        select(func.count(m.Order.id)).where(
            m.Order.store_id.in_(p.store_ids),
            m.Order.status == OrderStatus.CANCELLED.value,
            m.Order.cancelled_at.is_not(None),
            p.within(m.Order.cancelled_at),
        )
    ).scalar_one()
    summary: Dict[str, Any] = {**now, "cancelled_orders": cancelled}
    for key in ("orders", "gross", "net", "average_ticket"):
        summary[f"previous_{key}"] = before[key]
        summary[f"change_{key}"] = _change(now[key], before[key])
    tables = {
        "by_hour": _by_time(hours, hours_before, by_day=False),
        "by_day": _by_time(hours, hours_before, by_day=True),
        "product": _mix(session, p, by_category=False),
        "category": _mix(session, p, by_category=True),
        "payment_method": _grouped(session, p, m.Order.payment_method, "payment_method"),
        "channel": _grouped(session, p, m.Order.channel, "channel"),
        "fulfilment": _grouped(session, p, m.Order.fulfilment, "fulfilment"),
    }
    return Report("sales", p, summary, tables)


# --- customers ---------------------------------------------------------------------------------------------


def customers(session: Session, p: Period) -> Report:
    """Every buyer counts (cash included: each one is a WhatsApp number). New: their first purchase at these
    stores is in the range; returning: they had bought before. Repeat: at least two purchases up to the end."""
    lifetime = and_(
        m.Order.store_id.in_(p.store_ids),
        m.Order.confirmed_at.is_not(None),
        m.Order.confirmed_at < p.end_utc,
        not_(
            and_(
                m.Order.status == OrderStatus.CANCELLED.value, m.Order.payment_status == OrderPaymentStatus.UNPAID.value
            )
        ),
    )
    in_range = select(m.Order.customer_id).where(_is_sale(p)).distinct().subquery()
    ever = session.execute(
        select(
            m.Order.customer_id,
            func.min(m.Order.confirmed_at),
            func.count(m.Order.id),
            func.sum(m.Order.total),
        )
        .where(lifetime, m.Order.customer_id.in_(select(in_range.c.customer_id)))
        .group_by(m.Order.customer_id)
    ).all()
    first = {c: first_at for c, first_at, _, _ in ever}
    first_day = {c: at.astimezone(p.zone).date() for c, at in first.items()}
    life = {c: (n, _money(spent)) for c, _, n, spent in ever}
    bucket = utc_hour(m.Order.confirmed_at)
    visits = session.execute(
        select(m.Order.customer_id, bucket, func.count(m.Order.id), func.sum(m.Order.total))
        .where(_is_sale(p))
        .group_by(m.Order.customer_id, bucket)
    ).all()
    per_day: Dict[date, Dict[str, set]] = {d: {"new": set(), "returning": set()} for d in p.each_day()}
    spend: Dict[int, List[Any]] = defaultdict(lambda: [0, Decimal("0.00")])
    for customer_id, b, n, total in visits:
        day = p.local(b).date()
        is_new = first_day[customer_id] == day
        per_day[day]["new" if is_new else "returning"].add(customer_id)
        spend[customer_id][0] += n
        spend[customer_id][1] += _money(total)
    buyers = set(spend)
    new = {c for c in buyers if first[c] >= p.start_utc}
    repeat = {c for c in buyers if life[c][0] >= 2}
    lifetime_total = sum((life[c][1] for c in buyers), Decimal("0.00"))
    summary = {
        "buyers": len(buyers),
        "new_customers": len(new),
        "returning_customers": len(buyers - new),
        "repeat_customers": len(repeat),
        "repeat_rate": _rate(len(repeat), len(buyers)),
        "orders_per_buyer": (Decimal(sum(v[0] for v in spend.values())) / len(buyers)).quantize(Decimal("0.01"))
        if buyers
        else None,
        "average_lifetime_value": _average(lifetime_total, len(buyers)),
    }
    by_day = Table(
        ["day", "new", "returning"],
        [{"day": d, "new": len(v["new"]), "returning": len(v["returning"])} for d, v in per_day.items()],
    )
    top_ids = sorted(buyers, key=lambda c: (-spend[c][1], -spend[c][0], c))[:TOP_CUSTOMERS]
    people = {c.id: c for c in session.execute(select(m.Customer).where(m.Customer.id.in_(top_ids))).scalars()}
    given = dict(  # the name given at checkout, for customers whose profile has none (latest wins)
        session.execute(
            select(m.Order.customer_id, m.Order.customer_name)
            .where(_is_sale(p), m.Order.customer_id.in_(top_ids), m.Order.customer_name.is_not(None))
            .order_by(m.Order.confirmed_at)
        ).all()
    )
    top = Table(["customer_id", "name", "phone", "orders", "spend", "lifetime_orders", "lifetime_value", "first_order"])
    for c in top_ids:
        person = people[c]
        top.rows.append(
            {
                "customer_id": c,
                "name": None if person.erased_at else (person.name or given.get(c)),
                "phone": person.phone,
                "orders": spend[c][0],
                "spend": spend[c][1],
                "lifetime_orders": life[c][0],
                "lifetime_value": life[c][1],
                "first_order": first_day[c],
            }
        )
    return Report("customers", p, summary, {"by_day": by_day, "top": top})


# --- service -----------------------------------------------------------------------------------------------


def _first_response_at() -> ColumnElement:
    """When a person first answered a handed-over chat (their first reply from the inbox)."""
    return m.HandoffTicket.first_response_at


def _resolved_at() -> ColumnElement:
    """When a handed-over chat was resolved (the bot took it back)."""
    return m.HandoffTicket.resolved_at


def _active_conversations(p: Period) -> Any:
    """Conversations at these stores with a customer message in the range (the durable inbox keeps every
    WhatsApp and Twilio message), or that started in it (any channel)."""
    wrote = select(m.InboundMessage.conversation_id.label("id")).where(
        m.InboundMessage.store_id.in_(p.store_ids),
        m.InboundMessage.conversation_id.is_not(None),
        p.within(m.InboundMessage.received_at),
    )
    started = select(m.Conversation.id.label("id")).where(
        m.Conversation.store_id.in_(p.store_ids), p.within(m.Conversation.created_at)
    )
    return union(wrote, started).subquery()


def service(session: Session, p: Period) -> Report:
    active = _active_conversations(p)
    conversations = session.execute(select(func.count()).select_from(active)).scalar_one()
    converted = session.execute(
        select(func.count(func.distinct(m.Order.conversation_id))).where(
            _is_sale(p), m.Order.conversation_id.in_(select(active.c.id))
        )
    ).scalar_one()
    tickets = and_(m.HandoffTicket.store_id.in_(p.store_ids), p.within(m.HandoffTicket.created_at))
    handed = session.execute(
        select(func.count(func.distinct(m.HandoffTicket.conversation_id))).where(
            tickets, m.HandoffTicket.conversation_id.in_(select(active.c.id))
        )
    ).scalar_one()
    reasons = session.execute(
        select(m.HandoffTicket.reason, func.count(m.HandoffTicket.id)).where(tickets).group_by(m.HandoffTicket.reason)
    ).all()
    handoffs = sum(n for _, n in reasons)
    response_at, resolved_at = _first_response_at(), _resolved_at()
    answered, response_seconds, resolved, resolve_seconds = session.execute(
        select(
            func.count(response_at),
            func.sum(seconds_between(response_at, m.HandoffTicket.created_at)),
            func.count(resolved_at),
            func.sum(seconds_between(resolved_at, m.HandoffTicket.created_at)),
        ).where(tickets)
    ).one()
    summary = {
        "conversations": conversations,
        "converted_conversations": converted,
        "conversion_rate": _rate(converted, conversations),
        "contained_conversations": conversations - handed,
        "containment_rate": _rate(conversations - handed, conversations),
        "handoffs": handoffs,
        "handoff_rate": _rate(handed, conversations),
        "handoffs_answered": answered,
        "first_response_minutes": _minutes(response_seconds, answered),
        "handoffs_resolved": resolved,
        "resolve_minutes": _minutes(resolve_seconds, resolved),
    }
    order_of = {r.value: n for n, r in enumerate(HandoffReason)}
    reason_table = Table(
        ["reason", "handoffs", "share"],
        [
            {"reason": reason, "handoffs": n, "share": _rate(n, handoffs)}
            for reason, n in sorted(reasons, key=lambda r: (-r[1], order_of.get(r[0], 99)))
        ],
    )
    return Report("service", p, summary, {"handoff_reasons": reason_table, "prep_by_hour": _prep_by_hour(session, p)})


def _prep_by_hour(session: Session, p: Period) -> Table:
    """Minutes from entering the queue (received) to ready, by the local hour the order came in."""
    ready = (
        select(m.OrderStatusChange.order_id, func.min(m.OrderStatusChange.created_at).label("ready_at"))
        .where(
            m.OrderStatusChange.to_status == OrderStatus.READY.value,
            m.OrderStatusChange.order_id.in_(select(m.Order.id).where(_is_sale(p))),
        )
        .group_by(m.OrderStatusChange.order_id)
        .subquery()
    )
    bucket = utc_hour(m.Order.confirmed_at)
    rows = session.execute(
        select(bucket, func.count(m.Order.id), func.sum(seconds_between(ready.c.ready_at, m.Order.confirmed_at)))
        .join(ready, ready.c.order_id == m.Order.id)
        .where(_is_sale(p))
        .group_by(bucket)
    ).all()
    hours: Dict[int, List[Any]] = defaultdict(lambda: [0, 0.0])
    for b, n, seconds in rows:
        slot = hours[p.local(b).hour]
        slot[0] += n
        slot[1] += seconds or 0.0
    return Table(
        ["hour", "orders", "average_minutes"],
        [{"hour": h, "orders": hours[h][0], "average_minutes": _minutes(hours[h][1], hours[h][0])} for h in range(24)],
    )


# --- stock -------------------------------------------------------------------------------------------------


def _waste_reason() -> ColumnElement:
    """Why stock was written off: a count's adjustment carries its line's reason as the movement's note (waste,
    breakage, count_correction); a note-less adjustment reads "unspecified"."""
    return func.coalesce(m.StockMovement.note, literal("unspecified"))


def _po_delivered(session: Session, store_ids: Sequence[str]) -> Dict[int, datetime]:
    """When each purchase order's first delivery arrived: its first ``purchase_receipt`` in the ledger."""
    rows = session.execute(
        select(m.StockMovement.reference_id, func.min(m.StockMovement.created_at))
        .where(
            m.StockMovement.reason == MovementReason.PURCHASE_RECEIPT.value,
            m.StockMovement.reference_type == "purchase_order",
            m.StockMovement.store_id.in_(list(store_ids)),
        )
        .group_by(m.StockMovement.reference_id)
    ).all()
    return {int(ref): at for ref, at in rows if ref and ref.isdigit()}


def _low_stock(session: Session, p: Period) -> Table:
    """Items now at or under their reorder point (what an alert would say), with any open alert."""
    alert = (
        select(
            m.LowStockAlert.store_id, m.LowStockAlert.stock_item_id, func.min(m.LowStockAlert.created_at).label("at")
        )
        .where(m.LowStockAlert.status == LowStockAlertStatus.OPEN)
        .group_by(m.LowStockAlert.store_id, m.LowStockAlert.stock_item_id)
        .subquery()
    )
    rows = session.execute(
        select(m.StockLevel, m.StockItem, m.Supplier.name, alert.c.at)
        .join(m.StockItem, m.StockItem.id == m.StockLevel.stock_item_id)
        .outerjoin(m.Supplier, m.Supplier.id == m.StockItem.supplier_id)
        .outerjoin(
            alert, and_(alert.c.store_id == m.StockLevel.store_id, alert.c.stock_item_id == m.StockLevel.stock_item_id)
        )
        .where(
            m.StockLevel.store_id.in_(p.store_ids),
            m.StockItem.reorder_point.is_not(None),
            m.StockLevel.on_hand <= m.StockItem.reorder_point,
        )
        .order_by(m.StockLevel.store_id, m.StockItem.code)
    ).all()
    table = Table(
        ["store", "code", "name", "unit", "on_hand", "reorder_point", "reorder_qty", "supplier", "alert_since"]
    )
    for level, item, supplier, since in rows:
        table.rows.append(
            {
                "store": level.store_id,
                "code": item.code,
                "name": item.name,
                "unit": item.unit,
                "on_hand": level.on_hand,
                "reorder_point": item.reorder_point,
                "reorder_qty": item.reorder_qty,
                "supplier": supplier,
                "alert_since": since.astimezone(p.zone).replace(microsecond=0) if since else None,
            }
        )
    return table


def _waste(session: Session, p: Period) -> Table:
    reason = _waste_reason()
    rows = session.execute(
        select(reason, m.StockItem.code, m.StockItem.name, m.StockItem.unit, func.sum(m.StockMovement.on_hand_delta))
        .join(m.StockItem, m.StockItem.id == m.StockMovement.stock_item_id)
        .where(
            m.StockMovement.reason == MovementReason.ADJUSTMENT.value,
            m.StockMovement.on_hand_delta < 0,
            m.StockMovement.store_id.in_(p.store_ids),
            p.within(m.StockMovement.created_at),
        )
        .group_by(reason, m.StockItem.code, m.StockItem.name, m.StockItem.unit)
        .order_by(reason, m.StockItem.code)
    ).all()
    return Table(
        ["reason", "code", "name", "unit", "quantity"],
        [
            {
                "reason": r,
                "code": code,
                "name": name,
                "unit": unit,
                "quantity": -Decimal(str(q)).quantize(Decimal("0.001")),
            }
            for r, code, name, unit, q in rows
        ],
    )


def _suppliers(session: Session, p: Period) -> Table:
    """Per supplier: purchase orders due in the range (expected on one of its days), delivered on or before
    that day, late, or still not delivered; on-time rate = on time / due."""
    delivered = _po_delivered(session, p.store_ids)
    rows = session.execute(
        select(m.PurchaseOrder.id, m.PurchaseOrder.expected_on, m.Supplier.id, m.Supplier.name)
        .join(m.Supplier, m.Supplier.id == m.PurchaseOrder.supplier_id)
        .where(
            m.PurchaseOrder.store_id.in_(p.store_ids),
            m.PurchaseOrder.status != PurchaseOrderStatus.CANCELLED.value,
            m.PurchaseOrder.status != PurchaseOrderStatus.DRAFT.value,
            m.PurchaseOrder.expected_on >= p.start,
            m.PurchaseOrder.expected_on <= p.end,
        )
    ).all()
    today = clock.local_date(p.timezone)
    counts: Dict[Tuple[str, str], Dict[str, int]] = defaultdict(lambda: {"on_time": 0, "late": 0, "not_delivered": 0})
    for po_id, expected, supplier_id, name in rows:
        arrived = delivered.get(po_id)
        slot = counts[supplier_id, name]
        if arrived is None:
            if expected < today:
                slot["not_delivered"] += 1
        elif arrived.astimezone(p.zone).date() <= expected:
            slot["on_time"] += 1
        else:
            slot["late"] += 1
    table = Table(["supplier", "name", "due", "on_time", "late", "not_delivered", "on_time_rate"])
    for (supplier_id, name), c in sorted(counts.items()):
        due = c["on_time"] + c["late"] + c["not_delivered"]
        table.rows.append(
            {"supplier": supplier_id, "name": name, "due": due, **c, "on_time_rate": _rate(c["on_time"], due)}
        )
    return table


def stock(session: Session, p: Period) -> Report:
    low, waste, suppliers = _low_stock(session, p), _waste(session, p), _suppliers(session, p)
    due = sum(r["due"] for r in suppliers.rows)
    on_time = sum(r["on_time"] for r in suppliers.rows)
    summary = {
        "low_stock_items": len(low.rows),
        "open_alerts": sum(1 for r in low.rows if r["alert_since"]),
        "waste_movements": session.execute(
            select(func.count(m.StockMovement.id)).where(
                m.StockMovement.reason == MovementReason.ADJUSTMENT.value,
                m.StockMovement.on_hand_delta < 0,
                m.StockMovement.store_id.in_(p.store_ids),
                p.within(m.StockMovement.created_at),
            )
        ).scalar_one(),
        "purchase_orders_due": due,
        "supplier_on_time_rate": _rate(on_time, due),
    }
    return Report("stock", p, summary, {"low_stock": low, "waste": waste, "suppliers": suppliers})


BUILDERS: Dict[str, Callable[[Session, Period], Report]] = {
    "sales": sales,
    "customers": customers,
    "service": service,
    "stock": stock,
}

# What `--by` names, per report: the table it shows.
BY = {
    "sales": {
        "hour": "by_hour",
        "day": "by_day",
        "product": "product",
        "category": "category",
        "payment_method": "payment_method",
        "channel": "channel",
        "fulfilment": "fulfilment",
    },
    "customers": {"day": "by_day", "customer": "top"},
    "service": {"hour": "prep_by_hour", "reason": "handoff_reasons"},
    "stock": {"product": "low_stock", "reason": "waste", "supplier": "suppliers"},
}


def build(session: Session, kind: str, p: Period) -> Report:
    if kind not in BUILDERS:
        raise InvalidInput(f"no report {kind!r}: one of {', '.join(REPORTS)}")
    return BUILDERS[kind](session, p)


def table_for(report: Report, by: str) -> Tuple[str, Table]:
    """The table ``--by`` names in this report (InvalidInput, listing the choices, when it has none)."""
    choices = BY[report.kind]
    if by not in choices:
        raise InvalidInput(f"the {report.kind} report has no --by {by}: choose {', '.join(choices)}")
    return choices[by], report.tables[choices[by]]


def summary_table(report: Report) -> Table:
    """The headline figures as a two-column table (figure, value), for CSV."""
    return Table(["figure", "value"], [{"figure": k, "value": v} for k, v in report.summary.items()])


CSV_ENCODING = "utf-8-sig"  # with a BOM: spreadsheets (Excel in Mexico) then read the accents right


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell. Text that a spreadsheet would run as a formula (a WhatsApp profile name such as
    ``=HYPERLINK(…)``) gets a leading apostrophe, as OWASP advises; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return plain(value)


def csv_text(table: Table) -> str:
    """The table as CSV: a header row of column names, then plain values (amounts as 123.45, ISO dates)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([csv_cell(row.get(c)) for c in table.columns])
    return out.getvalue()


def csv_files(report: Report) -> Dict[str, str]:
    """Every table of a report as CSV, named ``<report>-<table>.csv`` (the headline figures as ``-summary``)."""
    files = {f"{report.kind}-summary.csv": csv_text(summary_table(report))}
    files.update({f"{report.kind}-{name}.csv": csv_text(table) for name, table in report.tables.items()})
    return files
