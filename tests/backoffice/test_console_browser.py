"""The staff console in a real browser (Debian's Chromium through Playwright): log in, run the queue on a
counter tablet (a new paid order arrives live and chimes, one tap per stage, the customer told at each,
recall), the customers' board following along, a phone-sized view; nothing loaded from outside the back
office. Screenshots go to reports/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from comanda import clock
from comanda import models as m
from comanda.db import transaction
from tests.helpers.browser import PHONE, TABLET, external_requests
from tests.helpers.console import PASSWORD, add_staff, order_row, queued_order
from tests.helpers.paths import SCREENSHOTS
from tests.helpers.receiver import order_events
from tests.helpers.waiting import wait_for


@pytest.fixture
def staff_base(demo, offices) -> str:
    add_staff("ana@cafe.mx", stores=["centro"])
    return offices.start()


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", "ana@cafe.mx")
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page).to_have_url(f"{base}/console/queue")


@pytest.fixture
def tablet(chromium: Browser, staff_base: str) -> Iterator[Page]:
    context = chromium.new_context(viewport=TABLET, has_touch=True, locale="es-MX")
    page = context.new_page()
    yield page
    context.close()


def card(page: Page, column: str, ticket: str):
    return page.locator(f'[data-column="{column}"] [data-ticket="{ticket}"]')


def test_the_counter_tablet_runs_the_queue_live_and_the_board_follows(chromium, tablet, staff_base, receiver):
    outside = external_requests(tablet, staff_base)
    tablet.goto(f"{staff_base}/console/login")
    expect(tablet.locator("h1")).to_contain_text("Entrar")
    tablet.screenshot(path=str(SCREENSHOTS / "console-login.png"))
    waiting = queued_order("centro:whatsapp:+525500001111", name="Beto")
    with transaction() as session:  # in the queue for 25 minutes: late (the store's threshold is 20)
        past = clock.now() - timedelta(minutes=25)
        session.execute(update(m.Order).where(m.Order.id == waiting).values(confirmed_at=past))
    log_in(tablet, staff_base)
    expect(card(tablet, "received", "C-001")).to_have_class("card late")
    expect(tablet.locator("#connection")).to_have_text("En vivo")

    paid = queued_order(items=(("TARO-MT", 1),), modifiers={"size": "large", "sugar": "0"}, line_note="bien frío")
    new_card = card(tablet, "received", "C-002")
    expect(new_card).to_be_visible()  # pushed by the server, no reload
    expect(new_card).to_contain_text("Té de taro con leche (grande, sin azúcar)")
    expect(new_card).to_contain_text("bien frío")
    expect(new_card).to_contain_text("Pagado")
    expect(tablet.locator("body")).to_have_attribute("data-chimes", "1")

    new_card.locator("button.bump").tap()
    expect(card(tablet, "preparing", "C-002")).to_be_visible()
    expect(tablet.locator("#flash")).to_contain_text("C-002: En preparación")
    card(tablet, "preparing", "C-002").locator("button.bump").tap()
    expect(card(tablet, "ready", "C-002")).to_be_visible()
    assert order_row(paid).status == "ready"
    assert wait_for(lambda: order_events(receiver, paid) == ["preparing", "ready"], timeout=15)

    board = chromium.new_page(viewport={"width": 1280, "height": 720})
    board_outside = external_requests(board, staff_base)
    board.goto(f"{staff_base}/board/centro")
    expect(board.locator(".ready li")).to_have_text(["C-002"])
    expect(board.locator(".preparing li")).to_have_text(["C-001"])

    tablet.click("#recall")
    expect(card(tablet, "preparing", "C-002")).to_be_visible()
    expect(tablet.locator("#flash")).to_contain_text("C-002 regresó a «Preparando»")
    expect(board.locator(".preparing li")).to_have_text(["C-001", "C-002"])  # the board follows, live
    card(tablet, "preparing", "C-002").locator("button.bump").tap()
    expect(board.locator(".ready li")).to_have_text(["C-002"])
    tablet.screenshot(path=str(SCREENSHOTS / "console-queue-tablet.png"))
    board.screenshot(path=str(SCREENSHOTS / "board.png"))
    card(tablet, "ready", "C-002").locator("button.bump").tap()
    expect(card(tablet, "ready", "C-002")).to_have_count(0)
    expect(board.locator(".ready li")).to_have_count(0)
    told = ["preparing", "ready", "picked_up"]  # ready told once
    assert wait_for(lambda: order_events(receiver, paid) == told, timeout=15)

    tablet.click("#sound button")  # mute: the next order shows, silently
    expect(tablet.locator("#sound")).to_have_attribute("data-sound", "off")
    queued_order("centro:whatsapp:+525500002222", name="Carla")
    expect(card(tablet, "received", "C-003")).to_be_visible()
    expect(tablet.locator("body")).to_have_attribute("data-new-orders", "2")
    expect(tablet.locator("body")).to_have_attribute("data-chimes", "1")
    assert outside == [] and board_outside == [], outside + board_outside
    board.close()


def test_the_queue_fits_a_phone_and_logging_out_ends_the_session(chromium, staff_base):
    context = chromium.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    queued_order(fulfilment="pickup", method="cash", name="Dora")
    log_in(page, staff_base)
    expect(card(page, "received", "C-001")).to_contain_text("Cobrar $36.00")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    page.screenshot(path=str(SCREENSHOTS / "console-queue-phone.png"), full_page=True)
    page.click("#logout")
    expect(page).to_have_url(f"{staff_base}/console/login?lang=es")
    page.goto(f"{staff_base}/console/queue")
    expect(page.locator("#login")).to_be_visible()
    context.close()
