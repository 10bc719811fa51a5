"""No part of an order is dropped in silence (issue 11 item 3): product words the order reader could not
place (``unplaced`` entities) are said back, with the products they may mean as buttons; and a removal
the NLU itself doubts (``intent_conflict``) is asked about, never done."""

from sqlalchemy import select

from actions.cart import ActionAddItems, ActionAnswerProduct, ActionChangeQuantity, ActionClearCart, ActionRemoveItems
from comanda import models as m
from comanda.db import new_session
from tests.helpers.actions import entity, line, responses, run, said, text_of, tracker


def unplaced(text: str, *suggestions: str, asked: bool = False):
    return entity("unplaced", {"text": text, "suggestions": list(suggestions), "asked": asked})


def cart_lines():
    with new_session() as session:
        return [(cl.product.sku, cl.quantity) for cl in session.execute(select(m.CartLine)).scalars()]


def test_an_unknown_word_beside_an_order_is_said_back_not_dropped(demo):
    """ "quiero 2 pozoles y una coca" added the coke and said nothing of the pozoles."""
    latest = said("add_items", line("COCA-600"), unplaced("pozoles"), text="quiero 2 pozoles y una coca")
    messages, _ = run(ActionAddItems(), tracker(latest))
    assert responses(messages) == ["utter_items_added", "utter_unplaced", "utter_cart_contents", "utter_cart_next"]
    assert text_of(messages[1]) == "No encontré «pozoles» en nuestro menú 🤔."
    assert cart_lines() == [("COCA-600", 1)]


def test_a_misspelt_product_is_offered_as_a_button_that_adds_it(demo):
    latest = said("add_items", unplaced("pastr", "TACO-PASTOR"), text="quiero pastr")
    messages, _ = run(ActionAddItems(), tracker(latest))
    assert responses(messages) == ["utter_unplaced_guess"]
    assert text_of(messages[0]) == "No encontré «pastr»: ¿quisiste decir Taco al pastor?"
    [button] = messages[0]["buttons"]
    assert button["title"] == "Taco al pastor" and button["payload"].startswith("/add_items")
    assert '"sku":"TACO-PASTOR"' in button["payload"]
    assert cart_lines() == []  # nothing guessed into the cart


def test_several_words_make_at_most_two_messages_in_english(demo):
    latest = said(
        "add_items",
        line("CAFE-LATTE"),
        unplaced("pastr", "TACO-PASTOR"),
        unplaced("orchta", "HORCHATA", "TACO-PASTOR"),
        unplaced("gringas"),
        unplaced("pozoles"),
        unplaced("pozoles"),
        text="a latte, pastr, orchta, gringas and pozoles",
    )
    messages, _ = run(ActionAddItems(), tracker(latest, slots={"language": "en"}))
    assert responses(messages) == [
        "utter_items_added",
        "utter_unplaced_guess",
        "utter_unplaced",
        "utter_cart_contents",
        "utter_cart_next",
    ]
    assert text_of(messages[1]) == (
        "I couldn't find “pastr” and “orchta”: did you mean Al pastor taco or Horchata (500 ml)?"
    )
    assert [b["title"] for b in messages[1]["buttons"]] == ["Al pastor taco", "Horchata (500 ml)"]
    assert text_of(messages[2]) == "I couldn't find “gringas” and “pozoles” on our menu 🤔."


def test_nothing_close_shows_what_there_is(demo):
    messages, _ = run(ActionAddItems(), tracker(said("add_items", unplaced("pozoles"), text="2 pozoles")))
    assert responses(messages) == ["utter_unplaced", "utter_menu_categories"]


def test_a_question_about_a_product_the_shop_lacks_names_it(demo):
    latest = said("product_question", unplaced("pozole", asked=True), text="¿tienen pozole?")
    messages, _ = run(ActionAnswerProduct(), tracker(latest))
    assert responses(messages) == ["utter_unplaced", "utter_menu_categories"]
    assert text_of(messages[0]) == "No encontré «pozole» en nuestro menú 🤔."


def test_a_question_about_two_products_answers_one_and_names_the_other(demo):
    latest = said(
        "product_question",
        entity("product", "TARO-MT"),
        unplaced("pozole", asked=True),
        text="¿tienen taro y pozole?",
    )
    messages, _ = run(ActionAnswerProduct(), tracker(latest))
    assert responses(messages) == ["utter_product_info", "utter_unplaced", "utter_product_details_by_staff"]


def test_a_quantity_change_of_an_unknown_product_says_so(demo):
    latest = said("change_quantity", unplaced("pozoles"), text="mejor que sean 3 pozoles")
    messages, _ = run(ActionChangeQuantity(), tracker(latest))
    assert responses(messages) == ["utter_unplaced"]


def test_a_removal_the_nlu_doubts_is_asked_even_with_a_removal_word(demo):
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA", 2))))
    conflict = entity("intent_conflict", {"intent": "remove_items", "reading": "add_items"})
    latest = said("remove_items", line("CONCHA"), conflict, text="sin la concha? otra")
    messages, _ = run(ActionRemoveItems(), tracker(latest))
    assert responses(messages) == ["utter_remove_or_add"]
    latest = said("clear_cart", entity("intent_conflict", {"intent": "clear_cart", "reading": None}), text="de nuevo")
    messages, _ = run(ActionClearCart(), tracker(latest))
    assert responses(messages) == ["utter_confirm_clear_cart"]
    assert cart_lines() == [("CONCHA", 2)]
