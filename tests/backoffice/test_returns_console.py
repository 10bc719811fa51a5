"""Returns for staff over real HTTP (the back-office process as `comanda run` starts it), on SQLite and
PostgreSQL: the API on personal tokens, the /console/returns page and its forms with CSRF, per-store access
(another store's return is 404), and the same page in Chromium with a screenshot."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.console import PASSWORD, ConsoleClient, add_staff, personal_token
from tests.helpers.paths import SCREENSHOTS
from tests.helpers.payments import assert_ledger_balanced, available
from tests.helpers.returns import ask, sold, status

pytestmark = pytest.mark.usefixtures("sandbox_settings")

ROMA = "roma:whatsapp:+525533334444"


@pytest.fixture
def people(demo):
    add_staff("ana@cafe.mx", stores=["centro"])
    add_staff("rosa@cafe.mx", stores=["roma"], language="en")


def api(base: str, email: str):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {personal_token(email)}"
    return lambda method, path, **kw: session.request(method, f"{base}/api/returns{path}", timeout=30, **kw)


def test_the_api_lists_approves_receives_and_refunds_once_within_the_members_stores(people, console_url):
    termos = sold("TERMO", 2)  # $640: waits for a person
    waiting = ask(termos, reason_code="defective", reason="la tapa no cierra", declared_condition="unused")
    roma = ask(sold("TAZA", conversation=ROMA), declared_condition="unused")
    ana, rosa = api(console_url, "ana@cafe.mx"), api(console_url, "rosa@cafe.mx")
    assert requests.get(f"{console_url}/api/returns", timeout=10).status_code == 401

    listed = ana("GET", "?status=requested").json()["returns"]
    assert [(r["id"], r["status"], r["reason"], r["lines"], r["outcome"], r["refund"]) for r in listed] == [
        (waiting, "requested", "defective", [{"sku": "TERMO", "quantity": 2, "amount": "640.00"}], "refund", None)
    ]
    assert [r["id"] for r in rosa("GET", "").json()["returns"]] == [roma]  # Roma's only
    assert rosa("POST", f"/{waiting}/approve").status_code == 404  # not Rosa's store: as if it did not exist
    assert ana("GET", "?store=roma").status_code == 404

    assert ana("POST", f"/{waiting}/reject", json={}).status_code == 400
    approved = ana("POST", f"/{waiting}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = ana("POST", f"/{waiting}/approve")
    assert again.status_code == 409 and again.json()["code"] == "return_conflict"
    assert ana("POST", f"/{waiting}/receive", json={"condition": "broken"}).status_code == 400

    before = available("TERMO")
    received = ana("POST", f"/{waiting}/receive", json={"condition": "good"}).json()
    assert received["status"] == "refunded" and received["needs_staff"] is None
    assert received["refund"] == {"amount": "640.00", "status": "succeeded", "provider": "sandbox"}
    assert available("TERMO") == before + 2
    assert ana("POST", f"/{waiting}/receive", json={"condition": "good"}).status_code == 409
    with new_session() as session:
        assert len(session.execute(select(m.Refund.id)).all()) == 1
    assert_ledger_balanced()


def test_the_console_page_approves_rejects_receives_and_refunds_an_order(people, console_url):
    termos = ask(sold("TERMO", 2), declared_condition="unused")
    mug = ask(sold("TAZA", conversation="centro:whatsapp:+525500007777"), declared_condition="any")
    food = sold("CONCHA", 2)
    client = ConsoleClient(console_url)
    client.login("ana@cafe.mx", next_path="/console/returns")
    page = client.get("/console/returns")
    assert page.status_code == 200 and "Por aprobar" in page.text and f'id="return-{termos}"' in page.text
    assert 'href="/console/returns"' in page.text  # in the navigation now
    assert client.post(f"/console/returns/{termos}/approve", csrf=None, htmx=False).status_code == 403
    assert status(termos) == "requested"

    assert client.post(f"/console/returns/{termos}/approve", htmx=False).status_code == 200
    done = client.post(f"/console/returns/{termos}/receive", {"condition": "damaged"}, htmx=False)
    assert f"Devolución #{termos} reembolsada" in done.text
    refused = client.post(f"/console/returns/{mug}/reject", {"reason": " "}, htmx=False)
    assert refused.status_code == 400 and status(mug) == "requested"
    client.post(f"/console/returns/{mug}/reject", {"reason": "Tiene marcas de uso"}, htmx=False)
    assert status(mug) == "rejected"

    form = {"order": str(food), "amount": "20.00", "reason": "llegó fría", "key": "form-1"}
    answer = client.post("/console/returns/order-refund", form, htmx=False)
    assert "reembolso de $20.00 (succeeded)" in answer.text
    client.post("/console/returns/order-refund", form, htmx=False)  # submitted twice: refunded once
    with new_session() as session:
        refunds = session.execute(select(m.Refund.amount).where(m.Refund.return_id.is_(None))).scalars().all()
        order = session.get(m.Order, food)
    assert refunds == [Decimal("20.00")] and order.payment_status == "partially_refunded"
    roma = sold("TAZA", conversation=ROMA)
    other = client.post("/console/returns/order-refund", {**form, "order": str(roma), "key": "k2"}, htmx=False)
    assert other.status_code == 404


def test_an_exchange_card_shows_its_replacement_and_a_cash_sales_cheaper_difference_is_recorded(people, console_url):
    exchange = ask(
        sold("TERMO", method="cash"), outcome="exchange", replacement_sku="TAZA", declared_condition="unused"
    )
    client = ConsoleClient(console_url)
    client.login("ana@cafe.mx", next_path="/console/returns")
    done = client.post(f"/console/returns/{exchange}/receive", {"condition": "good"}, htmx=False)
    assert f"Devolución #{exchange}: cambio listo" in done.text and "entrega el dinero" in done.text
    assert "Cambio por TAZA ($150.00; diferencia −$170.00)" in done.text
    refund_form = f'action="/console/returns/{exchange}/refund"'
    assert refund_form in done.text
    recorded = client.post(f"/console/returns/{exchange}/refund", {"reference": "recibo 7"}, htmx=False)
    assert recorded.status_code == 200 and refund_form not in recorded.text
    with new_session() as session:
        refunds = session.execute(select(m.Refund.amount, m.Refund.status)).all()
    assert refunds == [(Decimal("170.00"), "succeeded")]
    assert_ledger_balanced()


def test_the_returns_page_in_a_browser(people, console_url, chromium):
    waiting = ask(sold("TERMO", 2), reason_code="defective", declared_condition="unused")
    approved = ask(sold("TAZA", conversation="centro:whatsapp:+525500008888"), declared_condition="unused")
    context = chromium.new_context(viewport={"width": 1180, "height": 900}, locale="es-MX")
    page = context.new_page()
    page.goto(f"{console_url}/console/login?next=/console/returns")
    page.fill("#email", "ana@cafe.mx")
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page.locator(f"#returns-waiting #return-{waiting}")).to_be_visible()
    expect(page.locator(f"#returns-approved #return-{approved}")).to_contain_text("Aprobada por la política")
    page.screenshot(path=str(SCREENSHOTS / "console-returns.png"), full_page=True)
    page.locator(f"#return-{waiting} button.primary").click()
    expect(page.locator("#flash")).to_contain_text("aprobada")
    page.locator(f"#return-{waiting} button[value=good]").click()
    expect(page.locator(f"#returns-done #return-{waiting}")).to_contain_text("succeeded")
    phone = chromium.new_context(viewport={"width": 390, "height": 844}, locale="es-MX")
    small = phone.new_page()
    small.context.add_cookies(context.cookies())
    small.goto(f"{console_url}/console/returns")
    expect(small.locator(f"#return-{approved}")).to_be_visible()
    small.screenshot(path=str(SCREENSHOTS / "console-returns-phone.png"), full_page=True)
    phone.close()
    context.close()
