"""The handoff inbox end to end: the stack as `make run` starts it (Rasa, actions, back office with the
WhatsApp simulator as Meta) and two staff members in two Chromium contexts. A simulated WhatsApp customer
asks for a person; the inbox chimes; one member claims the chat and the other sees it claimed; the
customer's next message shows up live while the bot stays silent; the reply reaches the simulator's Graph
API; after resolve the customer is told and the bot answers again. Another store's staff get 404.
Screenshots of the inbox and the conversation go to reports/screenshots/."""

from __future__ import annotations

from typing import Iterator, Tuple

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import staff
from comanda.services.audit import Actor
from tests.helpers.console import PASSWORD
from tests.helpers.paths import SCREENSHOTS
from tests.helpers.simulator import answered_and_sent, bot_messages, customer_says, new_wa_id, texts, wait_replies
from tests.helpers.waiting import wait_for

LAPTOP = {"width": 1280, "height": 860}


@pytest.fixture(scope="module")
def accounts(stack) -> None:
    with transaction() as session:
        for email, name, store in (
            ("lupita@cafe-esquina.example", "Lupita Ramos", "centro"),
            ("beto@cafe-esquina.example", "Beto Cruz", "centro"),
            ("rosa@cafe-esquina.example", "Rosa Díaz", "roma"),
        ):
            staff.add_staff(session, Actor("e2e"), email, name, "staff", [store], password=PASSWORD)


def logged_in(
    browser: Browser, base: str, email: str, next_path: str, notifications: bool = False
) -> Tuple[BrowserContext, Page]:
    context = browser.new_context(
        viewport=LAPTOP, locale="es-MX", permissions=["notifications"] if notifications else []
    )
    page = context.new_page()
    page.goto(f"{base}/console/login?next={next_path}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page).to_have_url(f"{base}{next_path}")
    return context, page


@pytest.fixture
def two_people(chromium, stack, accounts) -> Iterator[Tuple[Page, Page]]:  # noqa: F811 - the fixture above
    lupita_context, lupita = logged_in(chromium, stack.backoffice, "lupita@cafe-esquina.example", "/console/inbox")
    beto_context, beto = logged_in(
        chromium, stack.backoffice, "beto@cafe-esquina.example", "/console/inbox", notifications=True
    )
    yield lupita, beto
    lupita_context.close()
    beto_context.close()


def ticket_of(wa_id: str) -> int:
    with new_session() as session:
        return session.execute(
            select(m.HandoffTicket.id).where(m.HandoffTicket.conversation_id == f"centro:whatsapp:+52{wa_id[3:]}")
        ).scalar_one()


def test_staff_take_over_a_whatsapp_chat_and_give_it_back_to_the_bot(stack, two_people, chromium):  # noqa: F811
    lupita, beto = two_people
    base = stack.backoffice
    wa_id = new_wa_id()
    customer_says(stack, wa_id, "quiero hablar con una persona", name="Ana Torres")
    handed = len(wait_replies(stack, wa_id))
    ticket = wait_for(lambda: ticket_of(wa_id) if answered_and_sent([wa_id]) else None)
    assert ticket

    # Both see it arrive, live; each page chimes once; a browser notification for whoever allowed them.
    row = f'[data-ticket="{ticket}"]'
    for page in (lupita, beto):
        expect(page.locator(row)).to_be_visible()
        expect(page.locator(row)).to_contain_text("Ana Torres")
        expect(page.locator(row)).to_contain_text("Pidió una persona")
        expect(page.locator("body")).to_have_attribute("data-new-chats", "1")
    expect(beto.locator("body")).to_have_attribute("data-notifications", "1")  # he allowed notifications
    expect(beto.locator("#notify")).to_be_hidden()  # allowed already: the page does not offer it again
    beto.screenshot(path=str(SCREENSHOTS / "console-inbox.png"))

    # Lupita claims it; Beto's waiting list drops it, and his "open" tab says who has it.
    lupita.click(f"{row} a")
    lupita.click("#claim")
    expect(lupita.locator("#assignee")).to_contain_text("Lupita Ramos")
    expect(beto.locator(row)).to_have_count(0)
    beto.goto(f"{base}/console/inbox?status=open")
    expect(beto.locator(row)).to_contain_text("La atiende Lupita Ramos")
    beto.goto(f"{base}/console/inbox/{ticket}")
    expect(beto.locator("#claim")).to_have_count(0)
    expect(beto.locator("#send")).to_have_count(0)

    # The customer writes again: it shows up live on Lupita's page, and the bot says nothing.
    for text in ("¿sigues ahí? es sobre mi pedido", "/restart", "quiero 2 de pastor"):
        customer_says(stack, wa_id, text, name="Ana Torres")
    expect(lupita.locator("#messages")).to_contain_text("¿sigues ahí? es sobre mi pedido")
    expect(lupita.locator("#messages")).to_contain_text("quiero 2 de pastor")
    assert wait_for(lambda: answered_and_sent([wa_id]), timeout=60)
    assert len(bot_messages(stack, wa_id)) == handed

    # Her reply goes out through WhatsApp (the simulator's Graph API received it), delivered and read.
    lupita.fill("#reply-text", "¡Hola Ana! Soy Lupita, ya reviso tu pedido.")
    lupita.click("#send")
    expect(lupita.locator("#flash")).to_contain_text("Mensaje en camino")
    got = wait_replies(stack, wa_id, count=handed + 1)
    assert texts(got)[-1] == "¡Hola Ana! Soy Lupita, ya reviso tu pedido."
    staff_message = lupita.locator(".message.from-staff").last
    expect(staff_message).to_contain_text("Lupita Ramos")
    expect(staff_message).to_have_attribute("data-status", "read", timeout=20000)
    lupita.screenshot(path=str(SCREENSHOTS / "console-conversation.png"), full_page=True)

    # A private note is kept for staff only.
    lupita.fill("#note-text", "Cliente frecuente: revisar el pedido de ayer.")
    lupita.click("#add-note")
    expect(lupita.locator("#notes")).to_contain_text("revisar el pedido de ayer")

    # Resolve: the customer is told, in Spanish, and the bot answers the next message again.
    lupita.click("#resolve")
    expect(lupita.locator("#ticket-status")).to_contain_text("Resuelta")
    told = wait_replies(stack, wa_id, count=handed + 2)
    assert "el equipo cerró esta conversación" in texts(told)[-1]
    customer_says(stack, wa_id, "¿a qué hora abren?", name="Ana Torres")
    answered = wait_replies(stack, wa_id, count=handed + 3)
    assert len(answered) > handed + 2 and texts(answered)[-1]
    with new_session() as session:
        row_ = session.get(m.HandoffTicket, ticket)
        assert row_.status == "resolved" and row_.first_response_at and row_.resolved_at and row_.resolved_by

    # Roma's staff never see it.
    rosa_context, rosa = logged_in(chromium, base, "rosa@cafe-esquina.example", "/console/inbox")
    try:
        expect(rosa.locator(row)).to_have_count(0)
        assert rosa.goto(f"{base}/console/inbox/{ticket}").status == 404
    finally:
        rosa_context.close()
