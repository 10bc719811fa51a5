"""Purchasing end to end on SQLite and PostgreSQL: sales push items under their reorder point → one draft PO per
supplier → sent (the e-mail and its PDF arrive at a local SMTP server) → partial then full receipt → ledger
balanced, alerts resolved, expected against actual logged. Stock counts become adjustment movements."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.enums import StockAdjustmentReason
from comanda.errors import ConfigError, InvalidInput
from comanda.services import purchasing, stock_counts
from comanda.services.audit import Actor
from comanda.services.purchasing import StatusConflict, expected_delivery
from comanda.services.reservations import ledger_mismatches
from integrations.email.smtp import EmailFailed, SmtpMailer, mailer_from_settings
from integrations.purchasing.pdf import WeasyPrinter, printable_html
from tests.helpers.payments import place
from tests.helpers.purchasing import alerts, on_hand, purchase_orders, sell_coffee_down_to_the_reorder_points
from tests.helpers.stock import set_on_hand

OWNER = Actor("staff:1", "203.0.113.9")
PRINTER = WeasyPrinter()
FRIDAY = datetime(2026, 12, 4, 18, 0, tzinfo=timezone.utc)  # noon in Mexico City


@pytest.fixture
def friday():
    set_clock(lambda: FRIDAY)
    yield
    set_clock(None)


def send(po_id: int, **kwargs) -> m.PurchaseOrder:
    with transaction() as session:
        return purchasing.send_order(session, po_id, OWNER, mailer=mailer_from_settings(), printer=PRINTER, **kwargs)


def receive(po_id: int, **quantities: str) -> m.PurchaseReceipt:
    with transaction() as session:
        wanted = {code.replace("_", "-") if code.isupper() else code: Decimal(q) for code, q in quantities.items()}
        return purchasing.receive(session, po_id, wanted, OWNER)


def test_low_stock_drafts_one_po_that_is_sent_received_in_two_deliveries_and_balances(demo, smtp, friday):
    sell_coffee_down_to_the_reorder_points()
    [po] = purchase_orders()
    assert (po.supplier_id, po.status, po.created_by) == ("chiapas", "draft", "system")
    lines = {line.stock_item.code: (line.quantity_ordered, line.unit_cost) for line in po.lines}
    assert lines == {
        "coffee_beans": (Decimal("5000"), Decimal("0.42")),  # reorder quantity, the supplier's price per gram
        "CAFE-GRANO-250": (Decimal("20"), Decimal("95.00")),
    }
    assert [(code, status, po_id) for code, status, po_id in alerts()] == [
        ("coffee_beans", "open", po.id),
        ("CAFE-GRANO-250", "open", po.id),
    ]
    # another sale of an item already drafted adds nothing: one draft per store and supplier, one line per item
    place("centro:whatsapp:+525500000003", method="cash", sku="CAFE-GRANO-250", quantity=1)
    assert len(purchase_orders()) == 1 and len(purchase_orders()[0].lines) == 2

    with transaction() as session:
        purchasing.set_quantity(session, purchasing.get_order(session, po.id), "coffee_beans", Decimal("4000"), OWNER)
    sent = send(po.id)
    # Friday + 5 days' lead time = Wednesday; Chiapas delivers on Mondays → Monday 14 December
    assert (sent.status, sent.expected_on, sent.sent_to) == ("sent", date(2026, 12, 14), "ventas@cafetaleros.example")
    assert smtp.envelopes == [("compras@cafe-esquina.example", ["ventas@cafetaleros.example"])]
    message = smtp.messages[0]
    assert message["Subject"] == f"Café Esquina: orden de compra OC-{po.id:05d}"  # the supplier's language: Spanish
    assert "Entrega esperada: 2026-12-14" in message.get_body(("plain",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"OC-{po.id:05d}.pdf" and attachment.get_content_type() == "application/pdf"
    assert attachment.get_content().startswith(b"%PDF")
    assert {status for _, status, _ in alerts()} == {"ordered"}

    before = on_hand("coffee_beans"), on_hand("CAFE-GRANO-250")
    receive(po.id, coffee_beans="2500")
    assert purchase_orders()[0].status == "partially_received"
    assert on_hand("coffee_beans") == before[0] + 2500
    assert [status for _, status, _ in alerts()] == ["ordered", "ordered"]
    with pytest.raises(InvalidInput, match="only 1500 outstanding"):
        receive(po.id, coffee_beans="1600")
    receive(po.id, coffee_beans="1500", CAFE_GRANO_250="20")
    done = purchase_orders()[0]
    assert done.status == "received" and done.received_at == FRIDAY
    assert {line.stock_item.code: line.quantity_received for line in done.lines} == {
        "coffee_beans": Decimal("4000"),
        "CAFE-GRANO-250": Decimal("20"),
    }
    assert (on_hand("coffee_beans"), on_hand("CAFE-GRANO-250")) == (before[0] + 4000, before[1] + 20)
    assert {status for _, status, _ in alerts()} == {"resolved"}
    with new_session() as session:
        assert ledger_mismatches(session) == []
        receipts = session.execute(
            select(m.StockMovement.reason, m.StockMovement.on_hand_delta, m.StockMovement.reference_id)
            .where(m.StockMovement.reason == "purchase_receipt")
            .order_by(m.StockMovement.id)
        ).all()
        assert receipts == [
            ("purchase_receipt", Decimal("2500"), str(po.id)),
            ("purchase_receipt", Decimal("1500"), str(po.id)),
            ("purchase_receipt", Decimal("20"), str(po.id)),
        ]
        logged = session.execute(
            select(m.AuditEvent.data).where(m.AuditEvent.action == "purchase_order.received")
        ).scalar_one()
        assert (logged["expected_on"], logged["received_on"], logged["days_late"]) == ("2026-12-14", "2026-12-04", -10)
        assert len(session.execute(select(m.PurchaseReceipt)).scalars().all()) == 2
    with pytest.raises(StatusConflict):
        receive(po.id, coffee_beans="1")


def test_a_po_is_never_sent_twice_nor_sent_without_its_mail(demo, monkeypatch, friday):
    sell_coffee_down_to_the_reorder_points()
    [po] = purchase_orders()
    monkeypatch.delenv("COMANDA_SMTP_HOST", raising=False)
    with pytest.raises(ConfigError, match="COMANDA_SMTP_HOST"):
        send(po.id)
    with pytest.raises(EmailFailed, match="could not e-mail"):  # nobody listens there: the failure undoes all
        with transaction() as session:
            purchasing.send_order(
                session, po.id, OWNER, mailer=SmtpMailer("127.0.0.1", 9, "x@y.mx", "none", timeout=2), printer=PRINTER
            )
    assert purchase_orders()[0].status == "draft"
    sent = send(po.id, email=False)  # phoned in: no e-mail, but the same expected date
    assert (sent.status, sent.sent_to, sent.expected_on) == ("sent", None, date(2026, 12, 14))
    with pytest.raises(StatusConflict):
        send(po.id, email=False)
    # sold again while the order is on its way: the new alert joins the PO, no second order
    place("centro:whatsapp:+525500000009", method="cash", sku="CAFE-GRANO-250", quantity=1)
    assert len(purchase_orders()) == 1
    assert alerts()[-1] == ("CAFE-GRANO-250", "ordered", po.id)


def test_a_po_goes_out_in_the_suppliers_language(demo, smtp, friday):
    set_on_hand("TAZA", "3")  # Estampados Roma writes in English; reorder point 3
    place("centro:whatsapp:+525500000004", method="cash", sku="TAZA", quantity=1)
    [po] = purchase_orders()
    assert po.supplier_id == "merch" and po.lines[0].unit_cost is None  # no price list: cost left open
    send(po.id)
    assert smtp.messages[0]["Subject"] == f"Café Esquina: purchase order OC-{po.id:05d}"
    with new_session() as session:
        doc = purchasing.document(session, purchasing.get_order(session, po.id), date(2026, 12, 16))
    html = printable_html(doc)
    assert 'lang="en"' in html and "Expected delivery" in html and "Unit cost" in html


def test_cancelling_a_draft_resolves_its_alerts_and_the_next_sale_drafts_again(demo):
    sell_coffee_down_to_the_reorder_points()
    [po] = purchase_orders()
    with transaction() as session:
        purchasing.cancel_order(session, po.id, OWNER)
    assert purchase_orders()[0].status == "cancelled" and {s for _, s, _ in alerts()} == {"resolved"}
    place("centro:whatsapp:+525500000005", method="cash", sku="CAFE-GRANO-250", quantity=1)
    assert [p.status for p in purchase_orders()] == ["cancelled", "draft"]
    assert [line.stock_item.code for line in purchase_orders()[1].lines] == ["CAFE-GRANO-250"]


def test_expected_delivery_waits_for_the_suppliers_delivery_day():
    assert expected_delivery(date(2026, 12, 4), 2, ["tue", "fri"]) == date(2026, 12, 8)  # Fri + 2 = Sun → Tue
    assert expected_delivery(date(2026, 12, 4), 1, []) == date(2026, 12, 5)


def test_a_stock_count_adjusts_the_books_with_its_reasons_and_drafts_what_is_low(demo):
    with transaction() as session:
        count = stock_counts.count_stock(
            session,
            "centro",
            {"milk": Decimal("19250"), "CONCHA": Decimal("28"), "tapioca": Decimal("4000")},
            Actor("staff:2"),
            reasons={"milk": StockAdjustmentReason.WASTE, "CONCHA": StockAdjustmentReason.BREAKAGE},
        )
        count_id = count.id
    with new_session() as session:
        moves = session.execute(
            select(m.StockItem.code, m.StockMovement.on_hand_delta, m.StockMovement.note)
            .join(m.StockItem, m.StockItem.id == m.StockMovement.stock_item_id)
            .where(m.StockMovement.reference_type == "stock_count", m.StockMovement.reference_id == str(count_id))
            .order_by(m.StockItem.code)
        ).all()
        assert moves == [
            ("CONCHA", Decimal("-2"), "breakage"),
            ("milk", Decimal("-750"), "waste"),
        ]  # tapioca: as booked
        assert ledger_mismatches(session) == []
        lines = session.execute(select(m.StockCountLine).where(m.StockCountLine.count_id == count_id)).scalars().all()
        assert len(lines) == 3
    with transaction() as session:
        stock_counts.count_stock(session, "centro", {"tapioca": Decimal("1200")}, Actor("staff:2"))
    [po] = purchase_orders()
    assert po.supplier_id == "perla" and [line.stock_item.code for line in po.lines] == ["tapioca"]
    with pytest.raises(InvalidInput, match="no stock item NOPE"):
        with transaction() as session:
            stock_counts.count_stock(session, "centro", {"NOPE": Decimal("1")}, Actor("staff:2"))
    with pytest.raises(InvalidInput, match="unknown reason"):
        stock_counts.parse_reason("theft")


def test_the_list_has_the_issues_json_shape_and_checks_statuses(demo):
    sell_coffee_down_to_the_reorder_points()
    with new_session() as session:
        [row] = [purchasing.as_json(po) for po in purchasing.list_orders(session, ["centro"], ["draft"])]
        assert row == {
            "id": row["id"],
            "supplier": "chiapas",
            "store": "centro",
            "status": "draft",
            "lines": [
                {"sku": "coffee_beans", "quantity": 5000, "received": 0},
                {"sku": "CAFE-GRANO-250", "quantity": 20, "received": 0},
            ],
            "expected_at": None,
        }
        assert purchasing.list_orders(session, ["roma"]) == []
        with pytest.raises(InvalidInput, match="unknown purchase order status"):
            purchasing.list_orders(session, None, ["open"])
