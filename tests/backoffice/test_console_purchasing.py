"""The console's purchasing, stock count and customer pages over real HTTP, on a back office as `comanda run` starts
it, on SQLite and PostgreSQL: owners send (the mail reaches a local SMTP server), staff receive at the back door,
other stores' orders and customers stay out of reach, every change needs the session's CSRF token."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.console import ConsoleClient, add_staff
from tests.helpers.purchasing import on_hand, purchase_orders, sell_coffee_down_to_the_reorder_points


@pytest.fixture
def people(demo):
    add_staff("owner@cafe.mx", role="owner", language="en")
    add_staff("ana@cafe.mx", role="staff", stores=["centro"])
    add_staff("rita@cafe.mx", role="manager", stores=["roma"])


def client(base: str, email: str) -> ConsoleClient:
    browser = ConsoleClient(base)
    assert browser.login(email).status_code == 303
    return browser


def line_ids(po_id: int) -> dict:
    with new_session() as session:
        po = session.get(m.PurchaseOrder, po_id)
        return {line.stock_item.code: line.id for line in po.lines}


def test_owner_sends_staff_receive_and_other_stores_stay_out(people, smtp, console_url):
    sell_coffee_down_to_the_reorder_points()
    [po] = purchase_orders()
    lines = line_ids(po.id)
    owner, ana, rita = (client(console_url, e) for e in ("owner@cafe.mx", "ana@cafe.mx", "rita@cafe.mx"))

    page = owner.get("/console/purchasing")
    assert page.status_code == 200 and f"OC-{po.id:05d} · Cafetaleros de Chiapas" in page.text
    assert "Send to supplier (ventas@cafetaleros.example)" in page.text
    assert owner.post(f"/console/purchasing/{po.id}/send", csrf=None).status_code == 403  # no CSRF token
    changed = owner.post(f"/console/purchasing/{po.id}/lines", {f"line-{lines['coffee_beans']}": "4000"})
    assert changed.status_code == 200 and "Quantities saved." in changed.text
    assert ana.post(f"/console/purchasing/{po.id}/send").status_code == 403  # staff receive; buyers send
    bad = owner.post(f"/console/purchasing/{po.id}/lines", {f"line-{lines['coffee_beans']}": "mucho"})
    assert bad.status_code == 400 and "is not a quantity" in bad.text

    sent = owner.post(f"/console/purchasing/{po.id}/send")
    assert sent.status_code == 200 and re.search(
        r"sent to ventas@cafetaleros\.example; expected \d{4}-\d\d-\d\d", sent.text
    )
    assert len(smtp.messages) == 1 and smtp.messages[0]["To"] == "ventas@cafetaleros.example"
    again = owner.post(f"/console/purchasing/{po.id}/send")
    assert again.status_code == 409  # sent already: never twice

    assert rita.get("/console/purchasing?store=centro").status_code == 404
    assert f"OC-{po.id:05d}" not in rita.get("/console/purchasing").text
    assert rita.post(f"/console/purchasing/{po.id}/receive", {"all": "1"}).status_code == 404

    before = on_hand("coffee_beans")
    part = ana.post(
        f"/console/purchasing/{po.id}/receive", {f"line-{lines['coffee_beans']}": "1500", "note": "remisión 88"}
    )
    assert part.status_code == 200 and "Recibida en parte" in part.text
    rest = ana.post(f"/console/purchasing/{po.id}/receive", {"all": "1"})
    assert rest.status_code == 200 and f"Recibido en la orden OC-{po.id:05d}: Recibida." in rest.text
    assert on_hand("coffee_beans") == before + 4000
    assert purchase_orders()[0].status == "received"
    pdf = owner.get(f"/console/purchasing/{po.id}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_a_count_from_the_console_adjusts_stock_with_its_reason(people, console_url):
    ana = client(console_url, "ana@cafe.mx")
    form = ana.get("/console/stock/count")
    assert form.status_code == 200 and "Conteo de inventario" in form.text
    with new_session() as session:
        concha = session.execute(select(m.StockItem.id).where(m.StockItem.code == "CONCHA")).scalar_one()
    saved = ana.post("/console/stock/count", {"store": "centro", f"item-{concha}": "26", f"reason-{concha}": "waste"})
    assert saved.status_code == 200 and "1 artículos ajustados de 1 contados" in saved.text
    assert on_hand("CONCHA") == 26
    assert ana.post("/console/stock/count", {"store": "roma", f"item-{concha}": "1"}).status_code == 404
    empty = ana.post("/console/stock/count", {"store": "centro"})
    assert empty.status_code == 400


def test_customers_are_searched_and_profiled_with_tags_notes_and_consent(people, console_url):
    from tests.helpers.payments import place

    place("centro:whatsapp:+525512340000", method="cash", sku="CONCHA", quantity=2)
    place("centro:whatsapp:+525512340000", method="cash", sku="CAFE-GRANO-250", quantity=1)
    place("roma:whatsapp:+525599990000", method="cash", sku="CONCHA", quantity=1)
    with new_session() as session:
        ana_id = session.execute(select(m.Customer.id).where(m.Customer.phone == "+525512340000")).scalar_one()
        roma_only = session.execute(select(m.Customer.id).where(m.Customer.phone == "+525599990000")).scalar_one()
    owner = client(console_url, "owner@cafe.mx")
    found = owner.get("/console/customers?q=1234")
    assert found.status_code == 200 and "+525512340000" in found.text and "+525599990000" not in found.text
    profile = owner.get(f"/console/customers/{ana_id}")
    assert profile.status_code == 200
    assert '<dd id="order-count">2</dd>' in profile.text and "$216.00" in profile.text  # 2 × $18 + $180
    assert "Concha" in profile.text
    tagged = owner.post(f"/console/customers/{ana_id}/tags", {"tag": "  VIP  "})
    assert tagged.status_code == 200 and '<span class="tag">vip' in tagged.text
    noted = owner.post(f"/console/customers/{ana_id}/notes", {"body": "Prefiere leche de avena"})
    assert "Prefiere leche de avena" in noted.text
    consent = owner.post(f"/console/customers/{ana_id}/consent", {"granted": "1"})
    assert "Yes, since" in consent.text and "(console)" in consent.text
    with new_session() as session:
        customer = session.get(m.Customer, ana_id)
        assert (customer.consent_marketing, customer.consent_marketing_source) == (True, "console")
        [event] = session.execute(select(m.ConsentEvent)).scalars().all()
        assert (event.kind, event.granted, event.source) == ("marketing", True, "console")
    ana = client(console_url, "ana@cafe.mx")
    assert ana.get(f"/console/customers/{ana_id}").status_code == 403  # owners and managers only
    rita = client(console_url, "rita@cafe.mx")
    assert rita.get(f"/console/customers/{ana_id}").status_code == 404  # never bought at Roma
    assert rita.get(f"/console/customers/{roma_only}").status_code == 200
