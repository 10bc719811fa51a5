"""`/console/reports` over real HTTP (owners and managers only, each manager's stores only, CSV of every table,
bad dates refused in the member's language) and in a real browser (Debian's Chromium through Playwright):
the charts drawn by the vendored Chart.js, nothing loaded from outside, a CSV download, a phone-sized view.
Screenshots go to reports/screenshots/."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from backoffice.console.report_pages import CHARTS
from comanda.i18n import LANGUAGES, catalogue
from tests.helpers.browser import PHONE, external_requests
from tests.helpers.console import PASSWORD, ConsoleClient, add_staff
from tests.helpers.paths import SCREENSHOTS
from tests.helpers.reports import scripted_dataset

DAY = "from=2026-11-20&to=2026-11-20"
TABLET = {"width": 1280, "height": 900}


@pytest.fixture
def base(demo, offices) -> str:
    scripted_dataset()
    add_staff("duena@cafe.mx", role="owner")
    add_staff("gerente@cafe.mx", role="manager", stores=["centro"])
    add_staff("barista@cafe.mx", role="staff", stores=["centro", "roma"])
    return offices.start()


def logged_in(base: str, email: str) -> ConsoleClient:
    client = ConsoleClient(base)
    assert client.login(email, next_path="/console/reports").status_code == 303
    return client


def test_owners_see_every_store_managers_theirs_and_staff_nothing(base):
    owner = logged_in(base, "duena@cafe.mx")
    page = owner.get(f"/console/reports/sales?{DAY}")
    assert page.status_code == 200
    assert re.search(
        r'data-figure="net">\s*<span class="label">Ventas netas</span>\s*<strong>\$442\.00</strong>', page.text
    )
    assert "periodo anterior $30.00 (+1,433.3 %)" in page.text
    assert owner.get("/console/reports").headers["Location"] == "/console/reports/sales"
    add_staff("boss@cafe.mx", role="owner", language="en")
    english = logged_in(base, "boss@cafe.mx").get(f"/console/reports/sales?{DAY}").text
    assert re.search(r'data-figure="net">\s*<span class="label">Net sales</span>\s*<strong>\$442\.00</strong>', english)
    assert "previous period $30.00 (+1,433.3 %)" in english and "Pickup or delivery" in english
    manager = logged_in(base, "gerente@cafe.mx")
    mine = manager.get(f"/console/reports/sales?{DAY}")
    assert re.search(
        r'data-figure="net">\s*<span class="label">Ventas netas</span>\s*<strong>\$388\.00</strong>', mine.text
    )
    assert "Café Esquina Roma" not in mine.text
    assert manager.get(f"/console/reports/sales?store=roma&{DAY}").status_code == 404  # not theirs: not found
    assert manager.get(f"/console/reports/sales/by_hour.csv?store=roma&{DAY}").status_code == 404
    staff = logged_in(base, "barista@cafe.mx")
    assert staff.get(f"/console/reports/sales?{DAY}").status_code == 403
    assert staff.get(f"/console/reports/sales/by_hour.csv?{DAY}").status_code == 403
    assert ConsoleClient(base).get(f"/console/reports/sales/by_hour.csv?{DAY}").status_code == 303  # log in first


def test_every_table_downloads_as_csv(base):
    owner = logged_in(base, "duena@cafe.mx")
    for kind, charts in CHARTS.items():
        page = owner.get(f"/console/reports/{kind}?{DAY}")
        links = set(re.findall(rf'href="/console/reports/{kind}/([a-z_]+)\.csv\?', page.text))
        assert {name for name, *_ in charts} <= links and "summary" in links, kind
        for name in links:
            answer = owner.get(f"/console/reports/{kind}/{name}.csv?store=&{DAY}")
            assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
            assert f'filename="{kind}-{name}-all-2026-11-20_2026-11-20.csv"' in answer.headers["Content-Disposition"]
            assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(
        csv.DictReader(
            io.StringIO(owner.get(f"/console/reports/sales/product.csv?store=centro&{DAY}").content.decode("utf-8-sig"))
        )
    )
    assert [(r["sku"], r["units"], r["revenue"]) for r in rows][:2] == [
        ("CAFE-GRANO-250", "1", "180.00"),
        ("COCA-600", "2", "60.00"),
    ]
    assert owner.get(f"/console/reports/sales/nothing.csv?{DAY}").status_code == 404


def test_bad_dates_are_explained_in_the_members_language(base):
    owner = logged_in(base, "duena@cafe.mx")
    backwards = owner.get("/console/reports/service?from=2026-11-20&to=2026-11-01")
    assert backwards.status_code == 400 and "La fecha final es anterior a la inicial." in backwards.text
    garbled = owner.get("/console/reports/stock?from=20-11-2026")
    assert garbled.status_code == 400 and "Escribe las fechas como AAAA-MM-DD." in garbled.text
    assert 'value="20-11-2026"' in garbled.text  # what they typed stays in the form


def test_every_label_a_report_shows_exists_in_both_languages(base):
    from comanda.db import new_session
    from comanda.services import reports

    labels = catalogue()
    with new_session() as session:
        period = reports.period(session, ["centro", "roma"], date(2026, 11, 20), date(2026, 11, 20))
        for kind in reports.REPORTS:
            found = reports.build(session, kind, period)
            keys = [f"reports.figure.{k}" for k in found.summary if not k.startswith(("previous_", "change_"))]
            keys += [f"reports.table.{kind}.{name}" for name in found.tables]
            keys += [f"reports.col.{c}" for table in found.tables.values() for c in table.columns]
            keys.append(f"reports.kind.{kind}")
            assert [k for k in keys if set(labels.get(k, {})) != set(LANGUAGES)] == [], kind


@pytest.fixture
def browser_page(chromium: Browser, base: str) -> Iterator[Page]:
    context = chromium.new_context(viewport=TABLET, locale="es-MX", accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def test_the_dashboard_in_a_browser(browser_page: Page, base: str, chromium: Browser):
    page = browser_page
    outside = external_requests(page, base)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/console/login?next=/console/reports")
    page.fill("#email", "duena@cafe.mx")
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page).to_have_url(re.compile(r"/console/reports/sales$"))
    page.fill("#from", "2026-11-20")
    page.fill("#to", "2026-11-20")
    page.click("#apply")
    expect(page.locator('[data-figure="net"] strong')).to_have_text("$442.00")
    expect(page.locator("body")).to_have_attribute("data-charts", "7")  # Chart.js drew every chart
    expect(page.locator("#table-by_hour canvas")).to_have_attribute("data-drawn", "1")
    page.screenshot(path=str(SCREENSHOTS / "console-reports-sales.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#table-by_hour a.csv")
    saved = download.value
    assert saved.suggested_filename == "sales-by_hour-all-2026-11-20_2026-11-20.csv"
    rows = list(csv.DictReader(io.StringIO(open(saved.path(), encoding="utf-8-sig").read())))
    assert rows[9]["gross"] == "86.00" and rows[23]["gross"] == "45.00"  # 23:30 local is still the 20th
    page.select_option("#store", "centro")
    page.click("#apply")
    expect(page.locator('[data-figure="net"] strong')).to_have_text("$388.00")
    page.click("nav.tabs >> text=Servicio")
    expect(page.locator('[data-figure="conversion_rate"] strong')).to_have_text("66.7 %")
    expect(page.locator("body")).to_have_attribute("data-charts", "2")
    page.screenshot(path=str(SCREENSHOTS / "console-reports-service.png"), full_page=True)
    page.click("nav.tabs >> text=Inventario")
    expect(page.locator("#table-low_stock")).to_contain_text("CAFE-GRANO-250")
    assert outside == [] and errors == []

    phone = chromium.new_context(viewport=PHONE, locale="es-MX", is_mobile=True, has_touch=True)
    small = phone.new_page()
    small.context.add_cookies(page.context.cookies())
    small.goto(f"{base}/console/reports/customers?store=&{DAY}")
    expect(small.locator('[data-figure="buyers"] strong')).to_have_text("3")
    expect(small.locator("body")).to_have_attribute("data-charts", "2")
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width  # no sideways scrolling on a phone: wide tables scroll in their box
    small.screenshot(path=str(SCREENSHOTS / "console-reports-phone.png"), full_page=True)
    phone.close()
