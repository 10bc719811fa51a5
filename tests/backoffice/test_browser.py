"""The chat page in a real browser (Debian's Chromium through Playwright): a developer chats as a customer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.backoffice.conftest import CENTRO, value_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path("/tmp/simulator.png")
WA_ID = "5215522223333"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `apt-get install -y chromium`", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, backoffice) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1100, "height": 720})
    page.goto(f"{backoffice}/simulator")
    page.select_option("#store", CENTRO)
    page.fill("#phone", "+52 1 55 2222 3333")
    page.fill("#name", "Ana")
    yield page
    page.close()


def from_customer(check: Callable[[Dict[str, Any]], bool]) -> Callable[[Dict[str, Any]], bool]:
    return lambda p: any(m["from"] == WA_ID and check(m) for m in value_of(p).get("messages", []))


def test_chat_as_a_customer(page, graph, receiver):
    page.fill("#text", "hola")
    page.click("#send")
    [post] = receiver.wait_for(from_customer(lambda m: m.get("text") == {"body": "hola"}))
    assert value_of(post.verified())["metadata"]["phone_number_id"] == CENTRO
    expect(page.locator(".bubble.in").first).to_contain_text("hola")

    question = graph.send(
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": WA_ID,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "¿Confirmas tu pedido?\nTotal: $97.00"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "order_confirm", "title": "Sí, confirmar"}},
                        {"type": "reply", "reply": {"id": "order_change", "title": "Cambiar"}},
                    ]
                },
            },
        }
    )
    question_id = question.json()["messages"][0]["id"]
    expect(page.locator("button.reply")).to_have_count(2)
    expect(page.locator(".bubble.out").last).to_contain_text("Total: $97.00")
    page.click("button.reply >> text=Sí, confirmar")
    [post] = receiver.wait_for(from_customer(lambda m: m.get("interactive", {}).get("type") == "button_reply"))
    message = value_of(post.verified())["messages"][0]
    assert message["interactive"]["button_reply"] == {"id": "order_confirm", "title": "Sí, confirmar"}
    assert message["context"]["id"] == question_id

    menu = graph.send(
        {
            "messaging_product": "whatsapp",
            "to": WA_ID,
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": "¿Qué se te antoja?"},
                "action": {
                    "button": "Ver menú",
                    "sections": [
                        {
                            "title": "Bebidas",
                            "rows": [
                                {"id": "LATTE", "title": "Latte", "description": "$55.00"},
                                {"id": "TARO", "title": "Té de taro", "description": "$75.00"},
                            ],
                        }
                    ],
                },
            },
        }
    )
    menu_id = menu.json()["messages"][0]["id"]
    page.click("button.menu >> text=Ver menú")
    page.click(".rows button >> text=Té de taro")
    [post] = receiver.wait_for(from_customer(lambda m: m.get("interactive", {}).get("type") == "list_reply"))
    message = value_of(post.verified())["messages"][0]
    assert message["interactive"]["list_reply"] == {"id": "TARO", "title": "Té de taro", "description": "$75.00"}
    assert message["context"]["id"] == menu_id
    expect(page.locator(".bubble.out .ticks.read").first).to_be_visible()

    page.click("#share-location summary")
    page.click("#send-location")
    [post] = receiver.wait_for(from_customer(lambda m: m["type"] == "location"))
    location = value_of(post.verified())["messages"][0]["location"]
    assert (location["latitude"], location["longitude"]) == (19.4326, -99.1332)
    expect(page.locator(".bubble.in")).to_have_count(4)
    page.screenshot(path=str(SCREENSHOT))
