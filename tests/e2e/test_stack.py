"""The running stack over its REST channel and HTTP API: menu and FAQ from the database."""

from decimal import Decimal

import requests
from sqlalchemy import select, text

from comanda import models as m
from comanda.db import get_engine, transaction
from tests.helpers.stack import TOKEN, rest
from tests.helpers.stack import say_rest as say


def test_spanish_menu_from_the_database(stack):
    [answer] = rest(stack, "e2e-es", "hola, ¿qué tienen?")
    assert answer["text"].startswith("Esto tenemos hoy en Café Esquina Centro")
    assert [b["title"] for b in answer["buttons"]][:3] == ["Bubble tea", "Café", "Aguas frescas"]
    whole = say(stack, "e2e-es", '/show_menu{"category": "all"}')
    assert "• Té de taro con leche — $75.00" in whole and "• Taco al pastor — $22.00" in whole
    assert "Taro milk tea" not in whole


def test_english_menu_from_the_database(stack):
    [answer] = rest(stack, "e2e-en", "hi, what's on the menu?")
    assert answer["text"].startswith("Here's what we have today at Café Esquina Centro")
    assert "Sodas and water" in [b["title"] for b in answer["buttons"]]


def test_a_price_changed_in_the_database_shows_at_once(stack):
    with transaction() as session:
        session.execute(select(m.Product).where(m.Product.sku == "CONCHA")).scalar_one().price = Decimal("21.50")
    [bakery] = rest(stack, "e2e-price", '/show_menu{"category": "bakery"}')
    assert {
        "title": "Concha",
        "payload": '/add_items{"order_line":{"sku":"CONCHA","quantity":1,"quantity_stated":true}}',
        "description": "$21.50",
    } in bakery["buttons"]


def test_faq_answers_from_the_store_in_the_customers_language(stack):
    assert "Mon–Fri 07:30–21:00" in say(stack, "e2e-faq", "what time do you open?")
    assert "Av. 5 de Mayo 32" in say(stack, "e2e-faq-es", "donde estan ubicados?")


def test_conversations_are_kept_in_the_same_database(stack):
    say(stack, "e2e-tracker", "hola")
    with get_engine().connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM events WHERE sender_id = 'e2e-tracker'")).scalar()
    assert count > 0


def test_http_api_and_rest_channel_need_the_token(stack):
    url = f"{stack.rasa}/conversations/e2e-es/tracker"
    assert requests.get(url, timeout=10).status_code == 401
    for params in ({}, {"token": "not-the-token"}):  # it would speak as any conversation it names
        assert (
            requests.post(
                f"{stack.rasa}/webhooks/rest/webhook",
                json={"sender": "centro:whatsapp:+525500000000", "message": "hola"},
                params=params,
                timeout=10,
            ).status_code
            == 401
        )
    tracker = requests.get(url, params={"token": TOKEN}, timeout=10)
    assert tracker.status_code == 200 and tracker.json()["slots"]["language"] == "es"
