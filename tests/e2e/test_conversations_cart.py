"""Conversations, changing the cart (issue 11 item 4 and 7): removals only in so many words, an ordinal or
"otro" always adds, emptying asks unless said plainly, quantity changes, and emoji answers."""

from __future__ import annotations

from tests.helpers.simulator import Chat


def test_a_third_latte_adds_one_more_never_removes(stack):
    """With a latte in the cart, "a 3rd latte pls" answered "Removed: Latte." and emptied it."""
    chat = Chat(stack, name="Sam")
    chat.says("hi, two lattes please").shows("2 × Latte (medium)")
    chat.says("a 3rd latte pls").shows("✅ Added: 1 × Latte (medium)", "3 × Latte (medium)").never("Removed")


def test_otro_in_spanish_adds_one_more(stack):
    chat = Chat(stack)
    chat.says("un taro porfa").shows("1 × Té de taro con leche (mediano)")
    chat.says("otro taro").shows("2 × Té de taro con leche (mediano)").never("Quité")


def test_remove_in_so_many_words(stack):
    chat = Chat(stack, name="Sam")
    chat.says("a latte and two conchas").shows("1 × Latte (medium)")
    chat.says("actually remove the latte").shows("Removed: Latte").never("1 × Latte")


def test_take_one_out_of_three(stack):
    chat = Chat(stack)
    chat.says("3 cocas y una concha").shows("3 × Coca-Cola 600 ml")
    chat.says("quítame una coca").shows("2 × Coca-Cola 600 ml")


def test_an_unclear_no_more_never_empties_the_cart(stack):
    chat = Chat(stack)
    chat.says("2 conchas porfa").shows("2 × Concha")
    chat.says("ya no").never("vacié", "Quité")
    chat.says("ver mi carrito").shows("2 × Concha")


def test_emptying_said_shortly_asks_first(stack):
    chat = Chat(stack)
    chat.says("2 conchas y 2 churros").shows("2 × Concha")
    chat.says("bórralo").never("vacié", "Quité")
    chat.says("ver mi carrito").shows("2 × Concha", "2 × Churros")


def test_emptying_in_so_many_words(stack):
    chat = Chat(stack)
    chat.says("2 conchas y un americano").shows("2 × Concha")
    chat.says("vacía el carrito, empiezo de nuevo").shows("vacié tu carrito")
    chat.says("ver carrito").shows("Tu carrito está vacío")


def test_make_it_four(stack):
    chat = Chat(stack)
    chat.says("2 de pastor").shows("2 × Taco al pastor")
    chat.says("mejor que sean 4 de pastor").shows("4 × Taco al pastor").never("6 × Taco al pastor")


def test_thumbs_up_takes_the_offer(stack):
    chat = Chat(stack)
    chat.says("¿tienen matcha?").shows("Sí tenemos Matcha latte", "¿Te lo agrego?")
    chat.says("👍").shows("✅ Agregué: 1 × Matcha latte")


def test_thumbs_down_declines_it(stack):
    chat = Chat(stack, name="Sam")
    chat.says("do you have thai tea?").shows("Yes, we have Thai tea")
    chat.says("👎").shows("OK 👌. Anything else?")
