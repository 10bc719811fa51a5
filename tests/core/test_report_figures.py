"""The report figures against the scripted dataset (tests/helpers/reports.py), worked out by hand: refunds, a
cancelled order, sales on both sides of midnight in Mexico City (UTC−6), both stores and one store alone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Dict, Iterator, List

import pytest

from comanda import clock
from comanda.db import new_session
from comanda.errors import InvalidInput, NotFound
from comanda.services import reports
from tests.helpers.reports import DAY, LATER, scripted_dataset

BOTH = ["centro", "roma"]


@pytest.fixture
def dataset(demo) -> Iterator[Dict[str, int]]:
    ids = scripted_dataset()
    clock.set_clock(lambda: LATER)
    yield ids
    clock.set_clock(None)


def report(kind: str, stores: List[str], start: date = DAY, end: date = DAY, language: str = "es") -> Dict[str, Any]:
    with new_session() as session:
        return reports.build(session, kind, reports.period(session, stores, start, end, language)).as_json()


def rows(found: Dict[str, Any], table: str, key: str) -> Dict[Any, Dict[str, Any]]:
    return {row[key]: row for row in found["tables"][table]}


def test_sales_count_what_entered_the_queue_in_the_local_day(dataset):
    both = report("sales", BOTH)
    # 86 (2 conchas + a medium americano) + 54 (Roma, cash) + 275 (delivery, fee 35) + 45 (23:30 local = 05:30 UTC
    # the next day); Carla's 30 at 23:50 on the 19th is the 20th in UTC but the previous day here; Beto's
    # cancelled cash concha is no sale.
    assert both["summary"] == {
        "orders": 4,
        "gross": "460.00",
        "discounts": "0.00",
        "refunds": "18.00",
        "net": "442.00",
        "average_ticket": "115.00",
        "cancelled_orders": 1,
        "previous_orders": 1,
        "change_orders": "3.0000",
        "previous_gross": "30.00",
        "change_gross": "14.3333",
        "previous_net": "30.00",
        "change_net": "13.7333",
        "previous_average_ticket": "30.00",
        "change_average_ticket": "2.8333",
    }
    by_hour = rows(both, "by_hour", "hour")
    assert len(by_hour) == 24
    assert {
        h: (r["orders"], r["gross"], r["net"]) for h, r in by_hour.items() if r["orders"] or r["refunds"] != "0.00"
    } == {
        9: (1, "86.00", "86.00"),
        10: (1, "54.00", "54.00"),
        13: (1, "275.00", "275.00"),
        18: (0, "0.00", "-18.00"),  # the refund, when the money went back
        23: (1, "45.00", "45.00"),
    }
    assert both["tables"]["by_day"] == [
        {
            "day": "2026-11-20",
            "orders": 4,
            "gross": "460.00",
            "discounts": "0.00",
            "refunds": "18.00",
            "net": "442.00",
            "average_ticket": "115.00",
            "previous_gross": "30.00",
        }
    ]
    assert by_hour[23]["previous_gross"] == "30.00"  # Carla, 23:50 the evening before
    products = rows(both, "product", "sku")
    assert list(products) == ["CAFE-GRANO-250", "CONCHA", "COCA-600", "CAFE-AMER", "CHURROS"]  # by revenue
    assert {s: (r["units"], r["revenue"]) for s, r in products.items()} == {
        "CAFE-GRANO-250": (1, "180.00"),
        "CONCHA": (5, "90.00"),
        "COCA-600": (2, "60.00"),
        "CAFE-AMER": (1, "50.00"),
        "CHURROS": (1, "45.00"),
    }
    assert products["CONCHA"]["name"] == "Concha" and products["CONCHA"]["category"] == "Panadería"
    categories = rows(both, "category", "category")
    assert {c: (r["units"], r["revenue"], r["share"]) for c, r in categories.items()} == {
        "retail": (1, "180.00", "0.4235"),
        "bakery": (6, "135.00", "0.3176"),
        "sodas": (2, "60.00", "0.1412"),
        "coffee": (1, "50.00", "0.1176"),
    }
    assert {
        k: (r["orders"], r["gross"], r["average_ticket"])
        for k, r in rows(both, "payment_method", "payment_method").items()
    } == {
        "card": (3, "406.00", "135.33"),
        "cash": (1, "54.00", "54.00"),
    }
    assert {k: (r["orders"], r["gross"]) for k, r in rows(both, "fulfilment", "fulfilment").items()} == {
        "delivery": (1, "275.00"),
        "pickup": (3, "185.00"),
    }
    assert rows(both, "channel", "channel")["whatsapp"]["orders"] == 4


def test_one_store_alone_and_a_range_of_days(dataset):
    centro = report("sales", ["centro"])["summary"]
    assert (centro["orders"], centro["gross"], centro["refunds"], centro["net"]) == (3, "406.00", "18.00", "388.00")
    roma = report("sales", ["roma"])["summary"]
    assert (roma["orders"], roma["gross"], roma["net"], roma["cancelled_orders"]) == (1, "54.00", "54.00", 0)
    week = report("sales", BOTH, date(2026, 11, 16), date(2026, 11, 22), language="en")
    days = rows(week, "by_day", "day")
    assert len(days) == 7
    assert days["2026-11-19"]["gross"] == "30.00" and days["2026-11-20"]["gross"] == "460.00"
    assert days["2026-11-21"]["orders"] == 0  # Ana's 23:30 order is the 20th's, although UTC says the 21st
    assert week["summary"]["gross"] == "490.00" and week["summary"]["previous_gross"] == "18.00"  # Ana on the 10th
    assert rows(week, "product", "sku")["CAFE-AMER"]["name"] == "Americano"


def test_customers_every_buyer_cash_included(dataset):
    both = report("customers", BOTH)
    # Ana (bought on the 10th: returning, 3 orders in all), Beto (new: his cancelled order does not count),
    # Dani (new, cash, Roma). Lifetime values 149 + 275 + 54.
    assert both["summary"] == {
        "buyers": 3,
        "new_customers": 2,
        "returning_customers": 1,
        "repeat_customers": 1,
        "repeat_rate": "0.3333",
        "orders_per_buyer": "1.33",
        "average_lifetime_value": "159.33",
    }
    assert both["tables"]["by_day"] == [{"day": "2026-11-20", "new": 2, "returning": 1}]
    top = both["tables"]["top"]
    assert [
        (c["name"], c["phone"], c["orders"], c["spend"], c["lifetime_orders"], c["lifetime_value"]) for c in top
    ] == [
        ("Beto", "+525511110002", 1, "275.00", 1, "275.00"),
        ("Ana", "+525511110001", 2, "131.00", 3, "149.00"),
        ("Dani", "+525511110004", 1, "54.00", 1, "54.00"),
    ]
    assert top[1]["first_order"] == "2026-11-10"
    centro = report("customers", ["centro"])["summary"]
    assert (centro["buyers"], centro["new_customers"], centro["repeat_rate"]) == (2, 1, "0.5000")


def test_service_conversations_conversion_containment_and_handoffs(dataset):
    both = report("service", BOTH)
    # Active on the 20th: Ana (wrote), Beto, Dani, Eva (started); Carla started at 23:50 on the 19th.
    assert both["summary"] == {
        "conversations": 4,
        "converted_conversations": 3,
        "conversion_rate": "0.7500",
        "contained_conversations": 2,
        "containment_rate": "0.5000",
        "handoffs": 2,
        "handoff_rate": "0.5000",
        "handoffs_answered": 1,
        "first_response_minutes": "4.0",
        "handoffs_resolved": 1,
        "resolve_minutes": "30.0",
    }
    assert {r["reason"]: r["handoffs"] for r in both["tables"]["handoff_reasons"]} == {"requested": 1, "complaint": 1}
    prep = {r["hour"]: (r["orders"], r["average_minutes"]) for r in both["tables"]["prep_by_hour"] if r["orders"]}
    assert prep == {9: (1, "12.0"), 13: (1, "20.0")}
    roma = report("service", ["roma"])["summary"]
    assert (roma["conversations"], roma["conversion_rate"], roma["handoffs"]) == (1, "1.0000", 0)


def test_stock_low_items_waste_and_supplier_punctuality(dataset):
    centro = report("stock", ["centro"])
    assert centro["summary"] == {
        "low_stock_items": 1,
        "open_alerts": 1,
        "waste_movements": 2,
        "purchase_orders_due": 3,
        "supplier_on_time_rate": "0.3333",
    }
    (low,) = centro["tables"]["low_stock"]
    assert (low["code"], low["on_hand"], low["reorder_point"], low["supplier"]) == (
        "CAFE-GRANO-250",
        "4.000",
        "5.000",
        "Cafetaleros de Chiapas",
    )
    assert low["alert_since"] == "2026-11-20T19:00:00-06:00"
    assert [(w["reason"], w["code"], w["quantity"]) for w in centro["tables"]["waste"]] == [
        ("breakage", "COCA-600", "2.000"),
        ("waste", "CAFE-GRANO-250", "7.000"),
    ]  # the count that found 3 more conchas is no waste; Roma's waste is the next day's
    assert [
        (s["supplier"], s["due"], s["on_time"], s["late"], s["not_delivered"], s["on_time_rate"])
        for s in centro["tables"]["suppliers"]
    ] == [
        ("chiapas", 1, 1, 0, 0, "1.0000"),
        ("perla", 2, 0, 1, 1, "0.0000"),
    ]
    roma = report("stock", ["roma"])
    assert {r["code"] for r in roma["tables"]["low_stock"]} == {"pastor", "suadero", "tapioca", "tortilla"}
    assert roma["tables"]["waste"] == [] and roma["summary"]["supplier_on_time_rate"] is None


def test_bad_ranges_and_unknown_stores_are_refused(demo):
    with new_session() as session:
        with pytest.raises(InvalidInput, match="before it starts"):
            reports.period(session, ["centro"], date(2026, 11, 20), date(2026, 11, 19))
        with pytest.raises(InvalidInput, match="at most 366 days"):
            reports.period(session, ["centro"], date(2025, 1, 1), date(2026, 11, 19))
        with pytest.raises(NotFound, match="no store 'norte'"):
            reports.period(session, ["centro", "norte"], DAY, DAY)
        empty = reports.build(session, "sales", reports.period(session, ["centro"], DAY, DAY))
    assert empty.summary["orders"] == 0 and empty.summary["gross"] == Decimal("0.00")
    assert empty.summary["average_ticket"] is None and empty.summary["change_gross"] is None


def test_csv_cells_never_run_as_formulas():
    """A WhatsApp profile name is the customer's to choose: text a spreadsheet would run stays text."""
    table = reports.Table(
        ["name", "net", "day"],
        [
            {"name": '=HYPERLINK("http://x.example")', "net": Decimal("-18.00"), "day": date(2026, 11, 20)},
            {"name": "@SUM(A1)", "net": None, "day": None},
            {"name": "Ana-Luisa", "net": Decimal("0.00"), "day": None},
        ],
    )
    assert reports.csv_text(table) == (
        'name,net,day\r\n"\'=HYPERLINK(""http://x.example"")",-18.00,2026-11-20\r\n\'@SUM(A1),,\r\nAna-Luisa,0.00,\r\n'
    )
