"""/console/review in a real browser (Debian's Chromium through Playwright), on a laptop and a phone: an owner
confirms one reading, fixes an order with the word the catalog missed (which becomes a synonym at once),
and the inbox empties; nothing is loaded from outside the back office. Screenshots in reports/screenshots/."""

from __future__ import annotations

from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from comanda.db import new_session, transaction
from comanda.services import review
from tests.helpers.browser import PHONE, TABLET, external_requests
from tests.helpers.console import PASSWORD, add_staff
from tests.helpers.paths import SCREENSHOTS
from tests.helpers.review import parse, project_copy


@pytest.fixture
def base(demo, offices, tmp_path) -> str:
    add_staff("dueno@cafe.mx", role="owner")
    for conversation, said, message_id, reading in [
        (
            "centro:whatsapp:+525500000001",
            "dame 2 pambazos",
            "m1",
            dict(intent="add_items", confidence=0.86, unplaced=["pambazos"]),
        ),
        (
            "roma:whatsapp:+525500000002",
            "ps nomas eso gracias",
            "m2",
            dict(intent="thank", confidence=0.41, ranking=[("thank", 0.41), ("goodbye", 0.33)]),
        ),
    ]:
        with transaction() as session:
            review.collect(session, conversation, review.Said(said, message_id, parse(**reading)))
    return offices.start(COMANDA_HOME=str(project_copy(tmp_path)))


@pytest.fixture
def laptop(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport=TABLET, locale="es-MX")
    yield context.new_page()
    context.close()


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console/login?next=/console/review")
    page.fill("#email", "dueno@cafe.mx")
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page).to_have_url(f"{base}/console/review")


def test_an_owner_reviews_in_the_browser(chromium, laptop, base):
    outside = external_requests(laptop, base)
    log_in(laptop, base)
    items = laptop.locator(".review-item")
    expect(items).to_have_count(2)
    expect(laptop.locator(".sections a[aria-current=page]")).to_have_text("Revisión")
    laptop.screenshot(path=str(SCREENSHOTS / "console-review.png"), full_page=True)

    thanks = laptop.locator(".review-item", has_text="ps nomas eso gracias")
    expect(thanks).to_contain_text("Agradecer")
    expect(thanks).to_contain_text("luego Despedida")
    thanks.get_by_role("button", name="✓ Estaba bien").click()
    expect(laptop.locator("#flash")).to_contain_text("Guardado como ejemplo")
    expect(items).to_have_count(1)

    order = laptop.locator(".review-item", has_text="dame 2 pambazos")
    order.locator("summary", has_text="Arreglar el pedido").click()
    order.locator("select[name=sku]").first.select_option("TORTA-MILA")
    order.locator("input[name=quantity]").first.fill("2")
    expect(order.locator("input[name=word]")).to_have_value("pambazos")
    order.locator("select[name=means]").select_option("TORTA-MILA")
    order.locator("button[value=order]").click()
    expect(laptop.locator("#flash")).to_contain_text("Pedido arreglado")
    expect(laptop.locator("#nothing")).to_be_visible()
    with new_session() as session:
        synonyms = session.execute(text("SELECT text FROM product_synonyms WHERE text = 'pambazos'")).scalars().all()
    assert synonyms == ["pambazos"]
    assert outside == []


def test_the_review_page_fits_a_phone(chromium, base):
    context = chromium.new_context(viewport=PHONE, has_touch=True, is_mobile=True, locale="es-MX")
    phone = context.new_page()
    log_in(phone, base)
    item = phone.locator(".review-item", has_text="dame 2 pambazos")
    item.locator("summary", has_text="Arreglar el pedido").tap()
    expect(item.locator("select[name=sku]").first).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    phone.screenshot(path=str(SCREENSHOTS / "console-review-phone.png"), full_page=True)
    context.close()
