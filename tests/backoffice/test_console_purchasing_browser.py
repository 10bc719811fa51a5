"""Purchasing and customers in a real browser (Debian's Chromium through Playwright): the owner reviews the
draft that low coffee stock made and sends it (the PDF reaches a local SMTP server), staff receive it on a phone
at the back door in two deliveries, the stock goes up; a stock count; a customer's profile with a tag and a
note. Nothing is loaded from outside the back office. Screenshots go to reports/screenshots/."""

from __future__ import annotations

from typing import Iterator, List

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.helpers.browser import PHONE, external_requests
from tests.helpers.console import PASSWORD, add_staff
from tests.helpers.paths import SCREENSHOTS
from tests.helpers.payments import place
from tests.helpers.purchasing import on_hand, purchase_orders, sell_coffee_down_to_the_reorder_points

DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def base(demo, smtp, offices) -> str:
    add_staff("duena@cafe.mx", role="owner")
    add_staff("ana@cafe.mx", stores=["centro"])
    return offices.start()


@pytest.fixture
def context_for(chromium: Browser) -> Iterator:
    opened: List = []

    def make(viewport: dict, mobile: bool = False):
        context = chromium.new_context(viewport=viewport, has_touch=mobile, is_mobile=mobile, locale="es-MX")
        opened.append(context)
        return context.new_page()

    yield make
    for context in opened:
        context.close()


def log_in(page: Page, base: str, email: str, next_path: str) -> List[str]:
    outside = external_requests(page, base)
    page.goto(f"{base}/console/login?next={next_path}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page).to_have_url(f"{base}{next_path}")
    return outside


def test_the_owner_sends_the_coffee_order_and_staff_receive_it_on_a_phone(base, smtp, context_for):
    sell_coffee_down_to_the_reorder_points()
    [po] = purchase_orders()
    owner = context_for(DESKTOP)
    outside = log_in(owner, base, "duena@cafe.mx", "/console/purchasing")
    draft = owner.locator(f"#po-{po.id}")
    expect(draft).to_contain_text("Cafetaleros de Chiapas")
    expect(draft).to_contain_text("Borrador")
    owner.fill(f"#po-{po.id} input[name^=line-] >> nth=0", "4000")
    owner.click(f"#po-{po.id} button[type=submit] >> text=Guardar cantidades")
    expect(owner.locator("#flash")).to_have_text("Cantidades guardadas.")
    owner.screenshot(path=str(SCREENSHOTS / "console-purchasing-draft.png"), full_page=True)
    owner.click(f"#send-{po.id}")
    expect(owner.locator("#flash")).to_contain_text("enviada a ventas@cafetaleros.example")
    assert len(smtp.messages) == 1
    owner.screenshot(path=str(SCREENSHOTS / "console-purchasing.png"), full_page=True)

    phone = context_for(PHONE, mobile=True)
    outside += log_in(phone, base, "ana@cafe.mx", "/console/purchasing")
    card = phone.locator(f"#po-{po.id}")
    expect(card).to_contain_text("Enviada")
    expect(card.locator(f"#send-{po.id}")).to_have_count(0)  # staff receive; they do not send
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    before = on_hand("coffee_beans"), on_hand("CAFE-GRANO-250")
    card.locator("input[name^=line-] >> nth=0").fill("2500")
    phone.tap(f"#receive-{po.id}")
    expect(phone.locator("#flash")).to_contain_text("Recibida en parte")
    assert on_hand("coffee_beans") == before[0] + 2500
    phone.screenshot(path=str(SCREENSHOTS / "console-purchasing-phone.png"), full_page=True)
    phone.tap(f"#receive-all-{po.id}")
    expect(phone.locator("#flash")).to_contain_text("Recibida.")
    assert (on_hand("coffee_beans"), on_hand("CAFE-GRANO-250")) == (before[0] + 4000, before[1] + 20)
    assert purchase_orders()[0].status == "received"

    phone.goto(f"{base}/console/stock/count")
    phone.locator("input[aria-label='Contado CONCHA']").fill("29")
    phone.locator("select[aria-label='Motivo de la diferencia CONCHA']").select_option("breakage")
    phone.tap("#save-count")
    expect(phone.locator("#flash")).to_contain_text("1 artículos ajustados de 1 contados")
    phone.screenshot(path=str(SCREENSHOTS / "console-stock-count-phone.png"), full_page=True)
    assert outside == [], outside


def test_a_customer_profile_with_tags_notes_and_consent(base, context_for):
    place("centro:whatsapp:+525512340000", method="cash", sku="CAFE-LATTE", quantity=2)
    place("centro:whatsapp:+525512340000", method="cash", sku="CONCHA", quantity=3)
    page = context_for(DESKTOP)
    outside = log_in(page, base, "duena@cafe.mx", "/console/customers")
    page.fill("input[name=q]", "1234 0000")
    page.press("input[name=q]", "Enter")
    page.click("#customers a >> nth=0")
    expect(page.locator("#order-count")).to_have_text("2")
    expect(page.locator("#favourites")).to_contain_text("Concha × 3")
    page.fill("input[name=tag]", "vip")
    page.click("#tags button >> text=Agregar etiqueta")
    expect(page.locator("#tags .tag")).to_contain_text("vip")
    page.fill("input[name=body]", "Siempre pide su latte con leche de avena")
    page.click("#tags button >> text=Agregar nota")
    expect(page.locator("#notes")).to_contain_text("leche de avena")
    page.click("#consent button >> text=Registrar que acepta")
    expect(page.locator("#consent")).to_contain_text("(console)")
    page.screenshot(path=str(SCREENSHOTS / "console-customer-profile.png"), full_page=True)
    assert outside == [], outside
