"""The chat page in a real browser (Debian's Chromium through Playwright): a developer chats as a customer."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any, Callable, Dict, Iterator
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.graph import TOKEN, value_of, verified
from tests.helpers.paths import SCREENSHOTS
from tests.helpers.simulator import CENTRO, ROMA

WA_ID = "5215522223333"
PNG = base64.b64decode(  # a 1×1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


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
    # The browser's clock is far from Mexico City's: every time shown must still be the business's.
    page = browser.new_page(viewport={"width": 1100, "height": 760}, timezone_id="Asia/Tokyo")
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
    assert value_of(verified(post))["metadata"]["phone_number_id"] == CENTRO
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
    message = value_of(verified(post))["messages"][0]
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
    message = value_of(verified(post))["messages"][0]
    assert message["interactive"]["list_reply"] == {"id": "TARO", "title": "Té de taro", "description": "$75.00"}
    assert message["context"]["id"] == menu_id
    expect(page.locator(".bubble.out .ticks.read").first).to_be_visible()

    page.click("#share-location summary")
    page.click("#send-location")
    [post] = receiver.wait_for(from_customer(lambda m: m["type"] == "location"))
    location = value_of(verified(post))["messages"][0]["location"]
    assert (location["latitude"], location["longitude"]) == (19.4326, -99.1332)
    expect(page.locator(".bubble.in")).to_have_count(4)
    screenshot(page, "simulator-chat")


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def bot_text(graph, body: str) -> str:
    """The bot sends a text through the fake Graph API; its message id."""
    sent = graph.send({"messaging_product": "whatsapp", "to": WA_ID, "type": "text", "text": {"body": body}})
    assert sent.status_code == 200, sent.text
    return sent.json()["messages"][0]["id"]


def test_whatsapp_formatting_is_rendered_not_shown_as_markers(page, graph):
    bot_text(
        graph, "*Pedido C-001* listo\n_Total:_ ~$120.00~ *$97.00*\nTicket ```C-001``` · `ref_42` · snake_case 2*3*4"
    )
    bubble = page.locator(".bubble.out").last
    expect(bubble.locator("strong").first).to_have_text("Pedido C-001")
    expect(bubble.locator("em")).to_have_text("Total:")
    expect(bubble.locator("s")).to_have_text("$120.00")
    expect(bubble.locator("strong").nth(1)).to_have_text("$97.00")
    expect(bubble.locator("code.mono")).to_have_text("C-001")
    expect(bubble.locator("code:not(.mono)")).to_have_text("ref_42")
    text = bubble.inner_text()
    assert "*" not in text.replace("2*3*4", "") and "~" not in text and "```" not in text
    assert "snake_case 2*3*4" in text  # markers inside words stay as typed


def test_every_time_is_the_businesss_and_says_so(page, graph, backoffice):
    message_id = bot_text(graph, "¿Algo más?")
    expect(page.locator("#zone")).to_have_text("times: Mexico City (America/Mexico_City)")
    [record] = [
        r
        for r in requests.get(f"{backoffice}/simulator/api/sent", timeout=5).json()["messages"]
        if r["id"] == message_id
    ]
    shown = datetime.fromtimestamp(record["timestamp"], ZoneInfo("America/Mexico_City")).strftime("%H:%M")
    time = page.locator(".bubble.out").last.locator("time")
    expect(time).to_have_text(shown)
    assert "CST" in time.get_attribute("title") or "GMT-6" in time.get_attribute("title")


def fetched_like_the_connector(graph, media_id: str) -> bytes:
    """What the connector does with an incoming media id: ask Graph for the URL, then download it."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    info = requests.get(f"{graph.base}/{media_id}", headers=auth, timeout=5)
    assert info.status_code == 200, info.text
    return requests.get(info.json()["url"], headers=auth, timeout=5).content


@pytest.mark.parametrize(
    ("file", "kind", "expected"),
    [
        (("menu.png", "image/png", PNG), "auto", {"type": "image", "mime_type": "image/png", "caption": "así"}),
        (("nota.ogg", "audio/ogg", b"OggS\0voice"), "auto", {"type": "audio", "voice": True}),
        (("song.mp3", "audio/mpeg", b"ID3\3song"), "audio", {"type": "audio", "voice": False}),
        (
            ("constancia.pdf", "application/pdf", b"%PDF-1.4\n%fake"),
            "auto",
            {"type": "document", "filename": "constancia.pdf", "caption": "así"},
        ),
    ],
    ids=["photo", "voice note", "audio file", "document"],
)
def test_media_sent_from_the_page_reach_the_connector_which_can_fetch_them(page, graph, receiver, file, kind, expected):
    name, mime_type, data = file
    page.click("#attach summary")
    page.set_input_files("#media-file", files=[{"name": name, "mimeType": mime_type, "buffer": data}])
    page.select_option("#media-kind", kind)
    page.fill("#media-caption", "así")
    page.click("#send-media")
    [post] = receiver.wait_for(
        from_customer(
            lambda m: (
                m["type"] == expected["type"]
                and m.get(m["type"], {}).get("sha256") == base64.b64encode(hashlib.sha256(data).digest()).decode()
            )
        )
    )
    message = value_of(verified(post))["messages"][0]
    content = message[message["type"]]
    for key, value in expected.items():
        assert (message if key == "type" else content).get(key) == value, (key, content)
    if expected["type"] == "audio":
        assert "caption" not in content
    assert fetched_like_the_connector(graph, content["id"]) == data
    bubble = page.locator(".bubble.in").last
    if expected["type"] == "image":
        expect(bubble.locator("img")).to_be_visible()
        screenshot(page, "simulator-media")
    elif expected["type"] == "audio":
        expect(bubble.locator("audio")).to_have_count(1)
        expect(bubble).to_contain_text("Voice note" if expected["voice"] else "Audio")
    else:
        expect(bubble.locator("a.file")).to_contain_text("constancia.pdf")


def test_reset_clears_this_phones_chats_with_every_store(page, graph, backoffice):
    bot_text(graph, "hola desde Centro")
    graph.send({"messaging_product": "whatsapp", "to": WA_ID, "type": "text", "text": {"body": "hola"}}, ROMA)
    other = graph.send({"messaging_product": "whatsapp", "to": "5215500001111", "type": "text", "text": {"body": "x"}})
    expect(page.locator(".bubble")).not_to_have_count(0)
    page.click("#reset")
    expect(page.locator(".bubble")).to_have_count(0)
    expect(page.locator(".notice")).to_have_text("Cleared the chats of +5215522223333")

    def chat(store: str, wa_id: str) -> list:
        query = {"phone_number_id": store, "wa_id": wa_id}
        return requests.get(f"{backoffice}/simulator/api/messages", params=query, timeout=5).json()["messages"]

    assert chat(CENTRO, WA_ID) == [] and chat(ROMA, WA_ID) == []
    assert [r["id"] for r in chat(CENTRO, "5215500001111")] == [other.json()["messages"][0]["id"]]
    bot_text(graph, "de nuevo")
    expect(page.locator(".bubble.out")).to_have_count(1)


def test_the_profile_name_phone_and_store_survive_a_reload(page, receiver):
    page.fill("#name", "Beatriz Ñúñez")
    page.select_option("#store", ROMA)
    page.reload()
    expect(page.locator("#name")).to_have_value("Beatriz Ñúñez")
    expect(page.locator("#phone")).to_have_value("+52 1 55 2222 3333")
    expect(page.locator("#store")).to_have_value(ROMA)
    page.fill("#text", "¿sigo siendo yo?")
    page.click("#send")
    [post] = receiver.wait_for(from_customer(lambda m: m.get("text") == {"body": "¿sigo siendo yo?"}))
    value = value_of(verified(post))
    assert value["contacts"][0]["profile"]["name"] == "Beatriz Ñúñez" and value["metadata"]["phone_number_id"] == ROMA
