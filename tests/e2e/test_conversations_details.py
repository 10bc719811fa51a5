"""Conversations, the smaller defects of issue 11 item 7 and the forms' free-text answers: the Roma branch
never offers tacos, English lists are English, one order number everywhere, a cancelled order's
payment page, a location outside checkout, names with accents, the summary's "no"."""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.simulator import ROMA, Chat

NEAR = (19.4352, -99.1412)


def test_the_roma_greeting_never_suggests_tacos_and_says_roma_does_not_sell_them(stack):
    chat = Chat(stack, phone_number_id=ROMA)
    chat.says("hola buenas tardes").shows("Café Esquina Roma").never("pastor", "taco")
    chat.says("me das 2 de pastor").shows(
        "En Café Esquina Roma no vendemos Taco al pastor; en Café Esquina Centro sí lo tenemos."
    ).never("Ya no nos queda")


def test_an_english_menu_is_english_down_to_the_list_button(stack):
    chat = Chat(stack, name="Sam")
    [menu] = chat.says("hello! could you show me the menu")
    assert menu["message"]["interactive"]["action"]["button"] == "See options"
    chat.taps("Bubble tea").never("Ver opciones")


def test_one_order_number_in_every_message(stack):
    chat = Chat(stack)
    chat.says("2 conchas y un americano chico").shows("2 × Concha")
    chat.says("es todo")
    chat.taps("Paso a recoger")
    chat.taps("Efectivo al recoger")
    placed = chat.taps("Confirmar").shows("¡Pedido confirmado! Tu número es *C-")
    ticket = re.search(r"\*(C-\d{3})\*", placed.text).group(1)
    chat.says("¿ya está mi pedido?").shows(f"Tu pedido {ticket} de $76.00").never("#", "Pedido 1")


def test_a_cancelled_orders_payment_page_says_cancelled_not_expired(stack):
    chat = Chat(stack)
    chat.says("un taro grande porfa").shows("Té de taro con leche (grande)")
    chat.says("eso es todo")
    chat.taps("Paso a recoger")
    chat.taps("Tarjeta")
    [link] = chat.taps("Confirmar")
    url = link["message"]["interactive"]["action"]["parameters"]["url"]
    with new_session() as session:
        order = session.execute(select(m.Order).where(m.Order.conversation_id == chat.id)).scalar_one()
    chat.says("cancela mi pedido porfa").shows(f"cancelé tu pedido {order.id}", "No se te cobró nada")
    page = requests.get(url, timeout=30)
    assert "Este pedido se canceló" in page.text and "venció" not in page.text


def test_a_location_outside_checkout_is_kept_not_promised_a_delivery(stack):
    chat = Chat(stack, name="Sam")
    chat.says("hi there").shows("Hi!")
    chat.shares_location(*NEAR).shows("I've saved your location").never("We'll deliver your order")


def test_a_name_with_accents_when_whatsapp_gives_none(stack):
    chat = Chat(stack, name="")
    chat.says("un americano grande porfa").shows("1 × Café americano (grande)")
    chat.says("listo")
    chat.taps("Paso a recoger").shows("¿A nombre de quién va el pedido?")
    chat.says("José Ángel Núñez").shows("¿Cómo quieres pagar?")
    chat.taps("Efectivo al recoger").shows("👤 A nombre de José Ángel Núñez")


def test_a_name_with_digits_is_asked_again(stack):
    chat = Chat(stack, name="")
    chat.says("un americano porfa").shows("1 × Café americano")
    chat.says("es todo")
    chat.taps("Paso a recoger")
    chat.says("5512345678").shows("Solo necesito un nombre")
    chat.says("Ximena").shows("¿Cómo quieres pagar?")


def test_no_at_the_summary_keeps_the_cart(stack):
    chat = Chat(stack)
    chat.says("3 churros porfa").shows("3 × Churros (3 piezas)")
    chat.says("ya es todo")
    chat.taps("Paso a recoger")
    chat.taps("Efectivo al recoger").shows("¿Lo confirmo?")
    chat.taps("Cambiar algo").shows("no confirmé nada", "Tu carrito sigue guardado")
    chat.says("ver carrito").shows("3 × Churros (3 piezas)")
