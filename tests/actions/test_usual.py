""" "Lo de siempre": the last order at this store back in the cart as the store can sell it now, saying what ran
out since and what changed in price; nothing to repeat for a new customer or at another branch."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import update

from actions.usual import ActionRepeatLastOrder
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import carts
from tests.helpers.actions import ANA, ROMA_ANA, responses, run, said, tracker
from tests.helpers.console import queued_order
from tests.helpers.stock import set_on_hand


def cart_lines(conversation: str = ANA):
    with new_session() as session:
        cart = carts.find_open_cart(session, conversation)
        return [(line.product.sku, line.quantity, line.modifiers) for line in cart.lines] if cart else []


def test_the_usual_rebuilds_the_cart_and_says_what_ran_out_and_what_costs_more(demo):
    queued_order(ANA, items=(("CONCHA", 2), ("TACO-PASTOR", 3), ("COCA-600", 1)), method="cash")
    set_on_hand("CONCHA", "0")  # ran out since
    with transaction() as session:
        session.execute(update(m.Product).where(m.Product.sku == "COCA-600").values(price=Decimal("32.00")))
    messages, events = run(ActionRepeatLastOrder(), tracker(said("repeat_last_order", text="lo de siempre")))
    assert responses(messages) == [
        "utter_usual_found",
        "utter_usual_price_up",
        "utter_items_added",
        "utter_out_of_stock_elsewhere",  # Roma still has conchas
        "utter_offer_alternatives",
        "utter_cart_contents",
        "utter_cart_next",
    ]
    assert messages[0]["ticket"].startswith("C-")
    assert (messages[1]["item"], messages[1]["before"], messages[1]["now"]) == ("Coca-Cola 600 ml", "$30.00", "$32.00")
    assert messages[2]["items"] == "3 × Taco al pastor y 1 × Coca-Cola 600 ml"
    assert messages[3]["items"] == "Concha"
    assert [sku for sku, _, _ in cart_lines()] == ["TACO-PASTOR", "COCA-600"]


def test_the_usual_keeps_options_and_leaves_out_what_is_no_longer_sold(demo):
    queued_order(
        ANA, items=(("CAFE-LATTE", 1), ("CHURROS", 1)), method="cash", modifiers={"size": "large", "milk": "oat"}
    )
    with transaction() as session:
        session.execute(update(m.Product).where(m.Product.sku == "CHURROS").values(active=False))
    messages, _ = run(
        ActionRepeatLastOrder(), tracker(said("repeat_last_order", text="the usual"), slots={"language": "en"})
    )
    assert "utter_usual_gone" in responses(messages)
    [(sku, quantity, modifiers)] = cart_lines()
    assert (sku, quantity, modifiers["size"], modifiers["milk"]) == ("CAFE-LATTE", 1, "large", "oat")


def test_nothing_to_repeat_for_a_new_customer_nor_at_another_branch(demo):
    messages, events = run(ActionRepeatLastOrder(), tracker(said("repeat_last_order")))
    assert responses(messages) == ["utter_usual_none"] and cart_lines() == []
    queued_order(ANA, items=(("CONCHA", 1),), method="cash")
    messages, _ = run(ActionRepeatLastOrder(), tracker(said("repeat_last_order"), sender=ROMA_ANA))
    assert responses(messages) == ["utter_usual_none"]
