"""Conversations, reading an order (issue 11 item 3): typos, chat shorthand, notes for the kitchen,
several extras on one taco, ingredients left out, and words the catalog cannot place said back — never a
part of the order dropped in silence. New phrasings, not the training data's."""

from __future__ import annotations

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.simulator import Chat


def cart(chat: Chat):
    with new_session() as session:
        found = session.execute(select(m.Cart).where(m.Cart.conversation_id == chat.id, m.Cart.status == "open"))
        return [(cl.product.sku, cl.quantity, cl.note) for c in found.scalars() for cl in c.lines]


def test_a_misspelt_order_with_a_note_keeps_every_line(stack):
    """ "kiero 2 tacos d pastr y un orchata bien fria xfa" added only the horchata."""
    chat = Chat(stack)
    chat.says("kiero 2 tacos d pastr y un orchata bien fria xfa").shows(
        "2 × Taco al pastor", "1 × Agua de horchata (500 ml) — nota: bien fria"
    )
    assert cart(chat) == [("TACO-PASTOR", 2, None), ("HORCHATA", 1, "bien fria")]


def test_two_extras_on_the_same_tacos(stack):
    chat = Chat(stack)
    chat.says("me regalas 3 de pastor sin cebolla y con piña?").shows("3 × Taco al pastor (sin cebolla, con piña)")


def test_bien_picosos_reaches_the_kitchen(stack):
    chat = Chat(stack)
    chat.says("4 de suadero bien picosos porfavor").shows("4 × Taco de suadero (con salsa extra)")


def test_an_unknown_dish_beside_a_known_one_is_said_back(stack):
    chat = Chat(stack)
    chat.says("quiero 2 pozoles y una coca").shows("1 × Coca-Cola 600 ml", "No encontré «pozoles» en nuestro menú")
    assert cart(chat) == [("COCA-600", 1, None)]


def test_a_word_close_to_a_product_is_offered_and_tapping_adds_it(stack):
    chat = Chat(stack)
    reply = chat.says("quiero pastr")
    reply.shows("No encontré «pastr»: ¿quisiste decir Taco al pastor?")
    assert "Taco al pastor" in reply.buttons()
    chat.taps("Taco al pastor").shows("✅ Agregué: 1 × Taco al pastor")


def test_a_question_about_a_dish_the_shop_lacks(stack):
    chat = Chat(stack)
    chat.says("oigan ¿tienen pozole?").shows("No encontré «pozole»")


def test_english_options_left_out_reserve_less(stack):
    chat = Chat(stack, name="Sam")
    chat.says("hi! one taro milk tea, no pearls and less sugar").shows(
        "1 × Taro milk tea (medium, half sugar, no boba)"
    )


def test_an_english_note_the_menu_has_no_option_for(stack):
    chat = Chat(stack, name="Sam")
    chat.says("could I get an americano, no ice, extra hot?").shows("note: no ice, extra hot")


def test_a_self_correction_replaces_the_quantity(stack):
    chat = Chat(stack)
    chat.says("dame 2 cocas, no, mejor 4").shows("4 × Coca-Cola 600 ml")
    assert cart(chat) == [("COCA-600", 4, None)]


def test_sound_alike_spelling_of_a_dish(stack):
    chat = Chat(stack)
    chat.says("me das 2 kesadíyas?").shows("2 × Quesadilla de queso")


def test_one_each_for_the_group(stack):
    chat = Chat(stack)
    chat.says("somos tres, una torta pa cada uno").shows("3 × Torta de milanesa")


def test_spanglish_with_an_oat_milk_latte(stack):
    chat = Chat(stack)
    chat.says("porfa un latte large con oat milk").shows("Café latte (grande, leche de avena)")
