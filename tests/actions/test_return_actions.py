"""The return conversation's actions on a real database: what the first message already says, the form's
answers checked against the policy, the return registered (approved at once or waiting), each later step
announced in the customer's language, and order_status speaking of returns."""

from __future__ import annotations

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.orders import ActionCancelOrder, ActionOrderStatus
from actions.payments import ActionAnnounceOrderUpdate
from actions.returns import (
    ActionAskReturnConfirmed,
    ActionAskReturnLine,
    ActionAskReturnOutcome,
    ActionStartReturn,
    ActionSubmitReturn,
    ValidateReturnForm,
)
from comanda import models as m
from comanda.db import new_session
from tests.helpers.actions import ANA, answer, entity, run, said, text_of, tracker
from tests.helpers.returns import line_of, settle, sold, staff_step

pytestmark = pytest.mark.usefixtures("sandbox_settings")


def slots_of(events) -> dict:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def test_the_first_message_names_the_item_and_its_condition(demo):
    order_id = sold("TAZA")
    sold("CONCHA", 2)  # food of a later order: not offered
    _, events = run(ActionStartReturn(), tracker(said("request_return", text="quiero devolver la taza, no la usé")))
    assert slots_of(events) | {} == {
        "return_possible": True,
        **{name: None for name in ("return_reason", "return_reason_text", "return_outcome", "return_replacement")},
        "return_confirmed": None,
        "return_line": str(line_of(order_id)),
        "return_quantity": "1",
        "return_condition": "unused",
    }


def test_food_is_not_returnable_and_it_is_said_plainly(demo):
    sold("CONCHA", 2)
    messages, events = run(ActionStartReturn(), tracker(said("request_return", text="quiero devolver las conchas")))
    assert events == [SlotSet("return_possible", False)]
    assert messages[0]["response"] == "utter_return_not_returnable"
    assert "no tienen devolución" in text_of(messages[0])


def test_the_form_checks_each_answer(demo):
    order_id = sold("TAZA", 3)
    line = str(line_of(order_id))
    form = ValidateReturnForm()
    assert answer(form, "return_line", "la taza")[0] == {"return_line": line}
    filled, said_back = answer(form, "return_quantity", "5", {"return_line": line})
    assert filled == {"return_quantity": None} and said_back == ["utter_return_exceeds_sale"]
    assert answer(form, "return_quantity", "2", {"return_line": line})[0] == {"return_quantity": "2"}
    typed = answer(form, "return_reason", "se le cayó el asa, venía estrellada", {"return_line": line})[0]
    assert typed["return_reason"] == "defective" and typed["return_reason_text"].startswith("se le cayó")
    assert answer(form, "return_condition", "sin usar", {"return_line": line})[0] == {"return_condition": "unused"}
    assert answer(form, "return_outcome", "saldo a favor", {"return_line": line})[0] == {"return_outcome": "credit"}
    messages, _ = run(ActionAskReturnLine(), tracker(said("request_return")))
    assert messages[0]["buttons"][0]["payload"] == f'/inform{{"return_line":"{line}"}}'
    messages, _ = run(ActionAskReturnOutcome(), tracker(said("inform"), {"return_line": line, "return_quantity": "1"}))
    titles = [b["title"] for b in messages[0]["buttons"]]
    assert titles[:2] == ["Reembolso", "Saldo a favor"]


def test_a_return_within_the_limit_is_approved_and_told_what_to_do_next(demo):
    order_id = sold("TAZA")
    slots = {
        "return_line": str(line_of(order_id)),
        "return_quantity": "1",
        "return_reason": "changed_mind",
        "return_condition": "unused",
        "return_outcome": "refund",
        "return_confirmed": True,
    }
    messages, events = run(ActionSubmitReturn(), tracker(said("affirm"), slots))
    assert messages[0]["response"] == "utter_return_approved_pickup"
    text = text_of(messages[0])
    assert "Av. 5 de Mayo 32" in text and "$150.00" in text and "a tu tarjeta" in text
    assert SlotSet("return_line", None) in events


def test_above_the_limit_it_waits_and_every_later_step_is_announced_in_english(demo):
    order_id = sold("TERMO", 2)
    slots = {
        "language": "en",
        "return_line": str(line_of(order_id)),
        "return_quantity": "2",
        "return_reason": "defective",
        "return_condition": "unused",
        "return_outcome": "refund",
        "return_confirmed": True,
    }
    messages, _ = run(ActionSubmitReturn(), tracker(said("affirm"), slots))
    assert messages[0]["response"] == "utter_return_waiting" and "review it" in text_of(messages[0])
    with new_session() as session:
        return_id = session.execute(select(m.Return.id)).scalar()
    staff_step(return_id, "approve")
    staff_step(return_id, "receive", "good")
    settle(return_id)
    heard = []
    for event in ("return_approved", "return_received", "return_refunded"):
        update = said("EXTERNAL_order_update", entity("order_id", order_id), entity("event", event))
        news, _ = run(ActionAnnounceOrderUpdate(), tracker(update, {"language": "en"}))
        heard.append(text_of(news[0]))
    assert "was approved" in heard[0] and "Bring it to" in heard[0]
    assert "We've received your return" in heard[1]
    assert "We've refunded $640.00 (to your card)" in heard[2]
    status, _ = run(ActionOrderStatus(), tracker(said("order_status"), {"language": "en"}, sender=ANA))
    assert any("refunded ($640.00)" in text_of(m) for m in status)


def test_store_credit_is_offered_at_checkout_and_when_short_the_rest_is_asked_for(demo):
    from actions.cart import ActionAddItems
    from actions.checkout import ActionAskOrderConfirmed, ActionAskPaymentMethod, ActionPlaceOrder, ValidateCheckoutForm
    from tests.helpers.actions import CARD
    from tests.helpers.actions import line as order_line
    from tests.helpers.returns import ask

    return_id = ask(sold("TERMO"), outcome="credit", declared_condition="unused")  # $320 of credit
    staff_step(return_id, "receive", "good")
    settle(return_id)
    run(ActionAddItems(), tracker(said("add_items", order_line("TAZA", 2))))  # $300
    [question], _ = run(ActionAskPaymentMethod(), tracker(said("inform"), {"fulfilment": "pickup"}))
    offered = {b["title"]: b["description"] for b in question["buttons"]}
    assert offered["Saldo a favor"] == "tu saldo a favor ($320.00)"
    chosen = answer(ValidateCheckoutForm(), "payment_method", "store_credit", {"fulfilment": "pickup"})[0]
    assert chosen == {"payment_method": "store_credit"}

    run(ActionAddItems(), tracker(said("add_items", order_line("TAZA", 1))))  # $450 now: the credit pays a part
    [question], _ = run(ActionAskPaymentMethod(), tracker(said("inform"), {"fulfilment": "pickup"}))
    assert "Saldo a favor" in [b["title"] for b in question["buttons"]]
    chosen = answer(ValidateCheckoutForm(), "payment_method", "store_credit", {"fulfilment": "pickup"})[0]
    assert chosen == {"payment_method": None, "use_store_credit": True}  # asked again, for the rest
    split = {"fulfilment": "pickup", "use_store_credit": True}
    [question], _ = run(ActionAskPaymentMethod(), tracker(said("inform"), split))
    assert question["response"] == "utter_ask_rest_payment_method"
    assert "¿Cómo pagas los $130.00 que faltan?" in text_of(question)
    assert "Saldo a favor" not in [b["title"] for b in question["buttons"]]
    assert answer(ValidateCheckoutForm(), "payment_method", "store_credit", split)[0] == {"payment_method": None}
    assert answer(ValidateCheckoutForm(), "payment_method", "card", split)[0] == {"payment_method": "card"}

    slots = {**CARD, "use_store_credit": True}
    [summary], _ = run(ActionAskOrderConfirmed(), tracker(said("inform"), slots))
    assert "$320.00 de tu saldo a favor + $130.00, tarjeta" in text_of(summary)
    messages, _ = run(ActionPlaceOrder(), tracker(said("affirm"), slots))
    assert [m["response"] for m in messages] == ["utter_order_credit_applied", "utter_pay_by_link"]
    assert "quedan $130.00 por pagar" in text_of(messages[0]) and "$130.00" in text_of(messages[1])
    cancelled, _ = run(ActionCancelOrder(), tracker(said("cancel_order")))
    assert [m["response"] for m in cancelled] == ["utter_order_cancelled", "utter_store_credit_restored"]
    assert "Los $320.00 de saldo a favor que usaste en ese pedido vuelven a tu saldo ($320.00)" in text_of(cancelled[1])


def test_an_exchange_offers_every_replacement_in_stock_with_its_difference_and_the_link_comes_after_receipt(demo):
    from actions.returns import ActionAskReturnReplacement

    order_id = sold("TAZA")
    line = str(line_of(order_id))
    asked = {"return_line": line, "return_quantity": "1", "return_outcome": "exchange"}
    [question], _ = run(ActionAskReturnReplacement(), tracker(said("inform"), asked))
    offered = {b["payload"].split('"')[-2]: b["description"] for b in question["buttons"]}
    assert offered["TERMO"] == "pagas $170.00 más" and offered["CAFE-GRANO-250"] == "pagas $30.00 más"
    assert offered["TAPIOCA-1KG"] == "te reembolsamos $10.00" and "TAZA" not in offered
    slots = {**asked, "return_reason": "changed_mind", "return_condition": "unused", "return_replacement": "TERMO"}
    [summary], _ = run(ActionAskReturnConfirmed(), tracker(said("inform"), slots))
    assert "a cambio de un cambio por Termo de acero (pagas $170.00 más)" in text_of(summary)
    [approved], _ = run(ActionSubmitReturn(), tracker(said("affirm"), {**slots, "return_confirmed": True}))
    assert "te mando el link para pagar la diferencia de $170.00" in text_of(approved)
    with new_session() as session:
        return_id = session.execute(select(m.Return.id)).scalar()
    staff_step(return_id, "receive", "good")
    settle(return_id)
    with new_session() as session:
        new_order = session.get(m.Return, return_id).exchange_order_id
    heard = {}
    for order, event in ((order_id, "return_received"), (new_order, "return_exchange_due")):
        update = said("EXTERNAL_order_update", entity("order_id", order), entity("event", event))
        heard[event], _ = run(ActionAnnounceOrderUpdate(), tracker(update, {"language": "en"}))
    assert "I'm sending you the link to pay your exchange's difference now" in text_of(heard["return_received"][0])
    due, link = heard["return_exchange_due"]
    assert "(1 × Steel tumbler) costs $170.00 more" in text_of(due)
    assert (link["response"], link["total"]) == ("utter_pay_by_link", "$170.00")
