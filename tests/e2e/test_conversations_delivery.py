"""Conversations, delivery (issue 11 item 1): real Mexico City addresses typed as customers type them,
postal codes, shared locations, questions and changes of mind in the middle of the form, in both
languages, against the trained model and the action server through the WhatsApp simulator."""

from __future__ import annotations

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.simulator import Chat

# Inside Centro's 2.5 km (Palacio de Bellas Artes) and well outside it (Coyoacán).
NEAR, FAR = (19.4352, -99.1412), (19.3500, -99.1620)


def to_delivery(chat: Chat, order: str = "hola, me das 2 chilaquiles y un latte grande porfa") -> None:
    chat.says(order).shows("✅ Agregué")
    chat.says("ya es todo").shows("¿Pasas a recoger tu pedido o te lo llevamos?")
    chat.taps("Envío a domicilio").shows("código postal")


def test_motolinia_between_two_streets(stack):
    chat = Chat(stack, name="Lupita")
    to_delivery(chat)
    chat.says("06000").shows("¿A qué dirección?")
    chat.says("Calle Motolinía 20, depto 3, entre Madero y 16 de Septiembre").shows("¿Cómo quieres pagar?")
    chat.taps("Tarjeta").shows(
        "🛵 Envío a Calle Motolinía 20, depto 3, entre Madero y 16 de Septiembre, CP 06000 ($35.00)",
        "👤 A nombre de Lupita",
    )


def test_isabel_la_catolica_with_an_apartment(stack):
    chat = Chat(stack)
    to_delivery(chat, "quiero 3 tacos de suadero, 2 quesadillas y 2 horchatas")
    chat.says("06050").shows("¿A qué dirección?")
    chat.says("Isabel la Católica 30, departamento 4").shows("¿Cómo quieres pagar?")
    chat.taps("Transferencia SPEI").shows("🛵 Envío a Isabel la Católica 30, departamento 4, CP 06050")


def test_a_question_about_the_fee_in_the_middle_of_the_address(stack):
    chat = Chat(stack)
    to_delivery(chat)
    chat.says("06010").shows("¿A qué dirección?")
    chat.says("¿cuánto cuesta el envío?").shows("$35", "¿A qué dirección?")  # answered, then asked again
    chat.says("Donceles 45 interior 2").shows("¿Cómo quieres pagar?")
    chat.taps("Tarjeta").shows("🛵 Envío a Donceles 45 interior 2, CP 06010 ($35.00)")


def test_the_address_given_when_the_postal_code_was_asked_is_kept(stack):
    chat = Chat(stack)
    to_delivery(chat)
    chat.says("República de Cuba 12, depto 5").never("¿A qué dirección?")
    chat.says("06010").shows("¿Cómo quieres pagar?")
    chat.taps("Tarjeta").shows("🛵 Envío a República de Cuba 12, depto 5, CP 06010")


def test_a_shared_location_asks_only_for_the_interior_and_references(stack):
    chat = Chat(stack)
    to_delivery(chat)
    chat.shares_location(*NEAR).shows("Ya tengo tu ubicación").never("¿A qué dirección?", "código postal")
    chat.says("depto 3, timbre 2, portón negro").shows("¿Cómo quieres pagar?")
    chat.taps("Tarjeta").shows("🛵 Envío a tu ubicación: depto 3, timbre 2, portón negro ($35.00)")
    with new_session() as session:
        cart = session.execute(select(m.Cart).where(m.Cart.conversation_id == chat.id)).scalar_one()
    assert (str(cart.delivery_latitude), str(cart.delivery_longitude)) == ("19.435200", "-99.141200")


def test_a_location_too_far_away_is_said_when_shared(stack):
    """It was "📍 ¡Listo! Entregamos en esa ubicación", and the order failed at its confirmation."""
    chat = Chat(stack)
    to_delivery(chat)
    chat.shares_location(*FAR).shows("Tu ubicación está a 9.6 km y solo entregamos hasta 2.5 km").never("¡Listo!")
    chat.says("06010").shows("¿A qué dirección?")  # asked where, again


def test_a_postal_code_outside_the_area_names_the_ones_served(stack):
    chat = Chat(stack)
    to_delivery(chat)
    chat.says("06700").shows("no llegamos al 06700", "06010")
    chat.says("06020").shows("¿A qué dirección?")


def test_an_address_without_a_number_is_asked_again_with_why(stack):
    chat = Chat(stack)
    to_delivery(chat)
    chat.says("06010")
    chat.says("por la catedral, la casa azul").shows("calle y número")
    chat.says("Tacuba 15, casa azul").shows("¿Cómo quieres pagar?")


def test_cancela_during_the_address_leaves_checkout_and_keeps_the_cart(stack):
    chat = Chat(stack)
    to_delivery(chat)
    chat.says("06010")
    chat.says("cancela, mejor luego").shows("Tu carrito sigue guardado")
    chat.says("ver mi carrito").shows("2 × Chilaquiles verdes")


def test_a_small_order_is_told_the_delivery_minimum(stack):
    chat = Chat(stack)
    chat.says("una concha porfa").shows("1 × Concha")
    chat.says("es todo")
    chat.taps("Envío a domicilio").shows("El pedido mínimo para envío es $150.00; te faltan $132.00")
    chat.taps("Paso a recoger").shows("¿Cómo quieres pagar?")


def test_an_english_delivery_to_donceles(stack):
    chat = Chat(stack, name="Kim")
    chat.says("hey, can I get 2 green chilaquiles and a large latte?").shows("✅ Added")
    chat.says("that's it").shows("Will you pick up your order, or shall we deliver it?")
    chat.taps("Deliver it").shows("postal code")
    chat.says("06010").shows("What's the address?")
    chat.says("Donceles 45 apt 2, between Brasil and Argentina").shows("How would you like to pay?")
    chat.taps("Card").shows("🛵 Delivery to Donceles 45 apt 2, between Brasil and Argentina, postal code 06010")
