"""What real customers do to the forms and the cart (issue 11): free-text answers whatever the NLU thought
they were, shared locations, removals never guessed, one message per kind of note, handoffs that pause
the bot, and the small defects."""

from typing import Any, Dict

import pytest
import yaml
from rasa_sdk.events import ActiveLoop, ConversationPaused, SlotSet
from sqlalchemy import select

from actions.cart import ActionAddItems, ActionClearCart, ActionRemoveItems
from actions.channel_inputs import ActionReceivedMedia, ActionReceiveLocation
from actions.checkout import ActionAskDeliveryAddress, ActionAskOrderConfirmed, ActionPlaceOrder, ValidateCheckoutForm
from actions.invoices import ValidateInvoiceForm
from actions.orders import ActionOrderStatus
from actions.payments import ActionAnnounceOrderUpdate
from actions.support import ActionHandoff, ActionHandoffKeepWaiting, ActionHandoffUnanswered
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import orders
from comanda.services.answers import NO_EMAIL, NO_REFERENCES, AnswerKind, Said, is_answer
from comanda.services.cfdi import invoicing
from integrations.cfdi import issuer
from tests.helpers.actions import (
    ANA,
    CARD,
    answer,
    entity,
    line,
    paid_order,
    responses,
    run,
    said,
    text_of,
    tracker,
)
from tests.helpers.cfdi import COMPANY
from tests.helpers.paths import ROOT
from tests.helpers.stock import set_on_hand

DELIVERY = {"fulfilment": "delivery", "delivery_postal_code": "06010"}
# What the simulator's NLU made of the customers' answers in issue 11.
ADDRESSES = [
    ("Calle Motolinía 20, depto 3, entre Madero y 16 de Septiembre", "change_quantity"),
    ("Donceles 45 interior 2", "add_items"),
    ("Isabel la Católica 30, departamento 4", "cancel_order"),
    ("Donceles 45 interior 2, entre Brasil y Argentina", "faq"),
]


def delivery_cart() -> None:
    run(ActionAddItems(), tracker(said("add_items", line("CAFE-GRANO-250"), line("CONCHA", 2))))


@pytest.mark.parametrize("address, intent", ADDRESSES)
def test_an_address_is_taken_whatever_the_nlu_thought_it_was(demo, address, intent):
    delivery_cart()
    filled, said_back = answer(
        ValidateCheckoutForm(), "delivery_address", address, DELIVERY, said(intent, text=address)
    )
    assert filled == {"delivery_address": address} and said_back == []


def test_free_text_slots_take_what_was_typed_whatever_the_intent():
    """The domain maps every requested free-text slot from the text with no intent filter: the form's
    validation decides (issue 11: not_intent lists threw addresses and e-mails to other rules)."""
    for path in (ROOT / "domain").glob("*.yml"):
        for slot, spec in ((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("slots") or {}).items():
            for mapping in spec.get("mappings", []):
                if mapping.get("type") == "from_text":
                    assert "not_intent" not in mapping and "intent" not in mapping, (path.name, slot)


@pytest.mark.parametrize(
    "text, intent",
    [
        ("¿cuánto cuesta el envío?", "faq"),
        ("/show_cart", "show_cart"),
        ("agrega una coca", "add_items"),
        ("quiero hablar con alguien", "human_handoff"),
    ],
)
def test_what_is_unmistakably_something_else_is_left_to_the_rules(demo, text, intent):
    delivery_cart()
    latest = said(intent, text=text)
    assert answer(ValidateCheckoutForm(), "delivery_address", text, DELIVERY, latest) == (
        {"delivery_address": None, "rejected": True},
        [],
    )


@pytest.mark.parametrize("intent", ["cancel_order", "checkout", "nlu_fallback"])
def test_cancela_in_so_many_words_ends_the_form_whatever_the_intent(demo, intent):
    """An intent the form could not step aside for (no rule for it during the form) must not leave the
    customer with the fallback: stopping in words ends the form."""
    delivery_cart()
    latest = said(intent, text="actually cancel that, I'll pay later")
    filled, said_back = answer(
        ValidateCheckoutForm(), "delivery_address", latest["text"], DELIVERY, latest, requested=True
    )
    assert filled == {"delivery_address": None, "requested_slot": None} and said_back == ["utter_checkout_stopped"]
    assert run(ActionPlaceOrder(), tracker(said(intent), slots={"order_confirmed": None}))[0] == []  # said once


def test_with_nowhere_else_to_go_the_text_is_judged_as_the_answer(demo):
    delivery_cart()
    latest = said("checkout", text="/checkout")  # the cart's "that's all" button, tapped again
    assert answer(ValidateCheckoutForm(), "delivery_address", "/checkout", DELIVERY, latest) == (
        {"delivery_address": None},
        ["utter_invalid_address"],
    )


def test_an_address_without_a_number_is_asked_again_with_why(demo):
    delivery_cart()
    assert answer(ValidateCheckoutForm(), "delivery_address", "en mi casa", DELIVERY) == (
        {"delivery_address": None},
        ["utter_invalid_address"],
    )


def test_an_address_given_for_the_postal_code_is_kept(demo):
    delivery_cart()
    address = "Donceles 45 interior 2, entre Brasil y Argentina"
    filled, said_back = answer(
        ValidateCheckoutForm(),
        "delivery_postal_code",
        address,
        {"fulfilment": "delivery"},
        said("add_items", text=address),
    )
    assert filled == {"delivery_postal_code": None, "delivery_address": address}
    assert said_back == ["utter_address_kept"]


@pytest.mark.parametrize(
    "email, intent", [("compras@xenon.example.com", "show_cart"), ("facturas@xenon.mx", "nlu_fallback")]
)
def test_the_invoice_email_is_taken_whatever_the_nlu_thought_it_was(demo, email, intent):
    filled, said_back = answer(
        ValidateInvoiceForm(), "invoice_email", email, {"invoice_order": "1"}, said(intent, text=email)
    )
    assert filled["invoice_email"] == email and said_back == []
    filled, _ = answer(ValidateInvoiceForm(), "invoice_email", "no", {"invoice_order": "1"}, said("deny", text="no"))
    assert filled["invoice_email"] == NO_EMAIL


@pytest.mark.parametrize(
    "kind, text, intent, expected",
    [
        (AnswerKind.NAME, "Isabel la Católica", "cancel_order", True),
        (AnswerKind.NAME, "Ana", "greet", True),
        (AnswerKind.NAME, "hola", "greet", False),
        (AnswerKind.NAME, "quiero hablar con alguien", "human_handoff", False),
        (AnswerKind.NAME, "¿tienen estacionamiento?", "faq", False),
        (AnswerKind.NAME, "¿tienen estacionamiento?", "out_of_scope", True),  # no rule for it: the form judges
        (AnswerKind.FISCAL_NAME, "XENON INDUSTRIAL ARTICLES", "add_items", True),
        (AnswerKind.RFC, "XIA190128J61", "faq", True),
        (AnswerKind.EMAIL, "ana@", "inform", True),  # an answer, a wrong one: the form says why
        (AnswerKind.EMAIL, "compras@xenon.example.com", "show_cart", True),
        (AnswerKind.POSTAL_CODE, "06010", "change_quantity", True),
        (AnswerKind.ADDRESS, "agrega 2 cocas", "add_items", False),
        (AnswerKind.ADDRESS, "Donceles 45 interior 2", "add_items", True),
        (AnswerKind.ADDRESS, "/add_items{}", "add_items", False),
        (AnswerKind.ADDRESS, "/inform{}", "inform", True),
    ],
)
def test_one_rule_per_kind_of_answer(kind, text, intent, expected):
    everything = frozenset(
        {"add_items", "cancel_order", "greet", "human_handoff", "faq", "show_cart", "change_quantity"}
    )
    order_lines = text == "agrega 2 cocas"
    assert is_answer(kind, Said(text, intent, order_lines=order_lines), everything) is expected


def test_a_shared_location_asks_only_for_the_interior_and_references(demo):
    delivery_cart()
    messages, _ = run(ActionAskDeliveryAddress(), tracker(said("inform"), slots={"fulfilment": "delivery"}))
    assert responses(messages) == ["utter_ask_delivery_address"]
    location = said("share_location", entity("latitude", 19.4326), entity("longitude", -99.1332))
    [saved], _ = run(ActionReceiveLocation(), tracker(location, slots={"fulfilment": "delivery"}, loop="checkout_form"))
    assert saved["response"] == "utter_location_saved"
    messages, _ = run(ActionAskDeliveryAddress(), tracker(said("inform"), slots={"fulfilment": "delivery"}))
    assert responses(messages) == ["utter_ask_delivery_references"]
    slots = {"fulfilment": "delivery"}
    assert answer(ValidateCheckoutForm(), "delivery_address", "depto 3, timbre 2", slots)[0] == {
        "delivery_address": "depto 3, timbre 2"
    }
    assert answer(ValidateCheckoutForm(), "delivery_address", "no", slots, said("deny", text="no"))[0] == {
        "delivery_address": NO_REFERENCES
    }
    summary_slots = {**slots, "delivery_address": NO_REFERENCES, "customer_name": "Ana", "payment_method": "card"}
    [summary], _ = run(ActionAskOrderConfirmed(), tracker(said("inform"), slots=summary_slots))
    assert summary["details"].startswith("🛵 Envío a tu ubicación ($35.00)")
    messages, _ = run(ActionPlaceOrder(), tracker(said("affirm"), slots={**summary_slots, "order_confirmed": True}))
    with new_session() as session:
        order = session.execute(select(m.Order)).scalar_one()
    assert order.delivery_address is None and str(order.delivery_latitude) == "19.432600"
    assert order.total == order.subtotal + 35 and messages[0]["total"] == f"${order.total}"  # the summary's total


def test_a_location_outside_checkout_is_kept_for_later(demo):
    """Issue 11: sharing a location outside checkout said "We'll deliver your order to that location"."""
    location = said("share_location", entity("latitude", 19.4326), entity("longitude", -99.1332))
    [kept], _ = run(ActionReceiveLocation(), tracker(location, slots={"language": "en"}))
    assert kept["response"] == "utter_location_kept"
    assert text_of(kept) == "📍 I've saved your location. When you order for delivery, I'll use it."


# --- removals are never guessed -------------------------------------------------------------------------------


def test_a_third_latte_read_as_a_removal_asks_instead_of_emptying_the_cart(demo):
    """Issue 11: with one latte in the cart, "a 3rd latte pls" answered "Removed: Latte." and emptied it."""
    run(ActionAddItems(), tracker(said("add_items", line("CAFE-LATTE"))))
    misread = said("remove_items", line("CAFE-LATTE", 3), text="a 3rd latte pls")
    messages, _ = run(ActionRemoveItems(), tracker(misread, slots={"language": "en"}))
    assert responses(messages) == ["utter_remove_or_add"]
    remove, add = messages[0]["buttons"]
    assert remove["payload"].startswith("/remove_items") and add["payload"].startswith("/add_items")
    with new_session() as session:
        assert session.execute(select(m.CartLine.quantity)).scalar_one() == 1  # nothing removed
    tapped = said("remove_items", line("CAFE-LATTE", 1), text=remove["payload"])
    assert responses(run(ActionRemoveItems(), tracker(tapped))[0])[0] == "utter_items_removed"


def test_clearing_needs_words_that_say_so(demo):
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    messages, _ = run(ActionClearCart(), tracker(said("clear_cart", text="ya no")))
    assert responses(messages) == ["utter_confirm_clear_cart"]
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/clear_cart", "/show_cart"]
    messages, _ = run(ActionClearCart(), tracker(said("clear_cart", line("CONCHA"), text="la concha no")))
    assert responses(messages) == ["utter_remove_or_add"]
    with new_session() as session:
        assert session.execute(select(m.CartLine)).scalars().all() != []
    messages, _ = run(ActionClearCart(), tracker(said("clear_cart", text="vacía mi carrito")))
    assert responses(messages) == ["utter_cart_cleared"]
    with new_session() as session:
        assert session.execute(select(m.CartLine)).scalars().all() == []


# --- bounded answers --------------------------------------------------------------------------------------------


def test_many_lines_that_cannot_be_filled_make_one_message_per_kind(demo):
    """Issue 10 item 5: each out-of-stock mention got its own message (23 for 540 characters)."""
    sold_out = ["COCA-600", "AGUA-1L", "CONCHA", "CHURROS", "TORTA-MILA"]
    for sku in sold_out:
        set_on_hand(sku, "0")
    set_on_hand("CAFE-GRANO-250", "1")
    set_on_hand("TAZA", "1")
    wanted = [line(sku, 2) for sku in sold_out] + [line("CAFE-GRANO-250", 3), line("TAZA", 4), line("TACO-PASTOR")]
    messages, events = run(ActionAddItems(), tracker(said("add_items", *wanted)))
    assert responses(messages) == [
        "utter_items_added",
        "utter_only_left",
        "utter_out_of_stock_elsewhere",  # what Roma still has
        "utter_out_of_stock",  # what neither branch has
        "utter_offer_alternatives",
        "utter_cart_contents",
    ]
    assert (messages[2]["items"], messages[2]["elsewhere"]) == (
        "Coca-Cola 600 ml, Agua natural 1 L, Concha y Churros (3 piezas)",
        "Café Esquina Roma",
    )
    assert messages[3]["items"] == "Torta de milanesa"
    assert messages[1]["items"] == "1 × Café en grano Chiapas 250 g y 1 × Taza de cerámica Café Esquina"
    assert [b["payload"] for b in messages[1]["buttons"]] == ["/affirm", "/deny"]  # "sí" adds what is left
    [offered] = [e for e in events if e["name"] == "offered_items"]
    assert [o["sku"] for o in offered["value"]] == ["CAFE-GRANO-250", "TAZA"]


def test_a_message_cut_at_the_readers_cap_is_said(demo):
    latest = said("add_items", line("CONCHA"), line("CHURROS"), entity("order_lines_truncated", True))
    messages, _ = run(ActionAddItems(), tracker(latest))
    assert "utter_order_lines_truncated" in responses(messages)
    assert messages[responses(messages).index("utter_order_lines_truncated")]["read"] == 2


# --- handoff: the bot is quiet while a person has the conversation ---------------------------------------------


def tickets() -> list:
    with new_session() as session:
        return [
            (t.reason, t.status)
            for t in session.execute(select(m.HandoffTicket).order_by(m.HandoffTicket.id)).scalars()
        ]


def test_a_handoff_pauses_the_bot_and_each_kind_of_request_is_its_own_ticket(demo):
    [msg], events = run(ActionHandoff(), tracker(said("privacy_request", text="borren mis datos")))
    assert msg["response"] == "utter_privacy_by_staff" and events == [ConversationPaused()]
    run(ActionHandoff(), tracker(said("complaint", text="el café llegó frío")))
    run(ActionHandoff(), tracker(said("complaint", text="y sin azúcar")))
    assert tickets() == [("privacy", "waiting"), ("complaint", "waiting")]
    with new_session() as session:
        summaries = session.execute(select(m.HandoffTicket.summary).order_by(m.HandoffTicket.id)).scalars().all()
    assert summaries == ["borren mis datos", "el café llegó frío · y sin azúcar"]


def test_a_handoff_in_a_form_stops_the_form(demo):
    _, events = run(ActionHandoff(), tracker(said("human_handoff"), loop="checkout_form"))
    assert events == [ActiveLoop(None), SlotSet("requested_slot", None), ConversationPaused()]
    _, events = run(ActionReceivedMedia(), tracker(said("received_media", entity("media_type", "image"))))
    assert events == [ConversationPaused()] and ("media", "waiting") in tickets()


def test_nobody_answered_in_time_the_customer_chooses(demo):
    run(ActionHandoff(), tracker(said("human_handoff")))
    [offer], _ = run(ActionHandoffUnanswered(), tracker(said("EXTERNAL_handoff_unanswered"), slots={"language": "en"}))
    assert offer["response"] == "utter_handoff_unanswered" and offer["minutes"] == 10
    assert [b["payload"] for b in offer["buttons"]] == ["/handoff_keep_waiting", "/handoff_carry_on"]
    [wait], events = run(ActionHandoffKeepWaiting(), tracker(said("handoff_keep_waiting")))
    assert wait["response"] == "utter_handoff_keep_waiting" and events == [ConversationPaused()]
    with transaction() as session:
        for ticket in session.execute(select(m.HandoffTicket)).scalars():
            ticket.status = "resolved"
    assert run(ActionHandoffUnanswered(), tracker(said("EXTERNAL_handoff_unanswered")))[0] == []
    [closed], events = run(ActionHandoffKeepWaiting(), tracker(said("handoff_keep_waiting")))
    assert closed["response"] == "utter_handoff_closed_meanwhile" and events == []


# --- small defects ----------------------------------------------------------------------------------------------


def place_card_order() -> int:
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    run(ActionPlaceOrder(), tracker(said("affirm"), slots=CARD))
    with new_session() as session:
        return session.execute(select(m.Order.id)).scalar_one()


def test_an_order_is_known_by_one_number_everywhere(demo):
    """Issue 11: "Pedido 1", "pedido #3" and "C-001": the ticket once it has one, its number before."""
    order_id = place_card_order()
    [status], _ = run(ActionOrderStatus(), tracker(said("order_status")))
    assert status["order"] == str(order_id) and text_of(status).startswith(f"Tu pedido {order_id} de $18.00")
    with transaction() as session:
        order = session.get(m.Order, order_id)
        order.payment_status = "paid"
        orders.enter_queue(session, order, "test")
    [status], _ = run(ActionOrderStatus(), tracker(said("order_status")))
    assert status["order"] == "C-001"


def announce(order_id: int, event: str, language: str = "es") -> Dict[str, Any]:
    latest = said("EXTERNAL_order_update", entity("order_id", order_id), entity("event", event))
    [message], _ = run(ActionAnnounceOrderUpdate(), tracker(latest, slots={"language": language}))
    return message


def test_the_delivered_message_invites_an_invoice_only_when_one_can_still_be_made(demo):
    """Issue 11: the delivered message invited an invoice that was already issued."""
    order_id = paid_order()
    assert announce(order_id, "picked_up")["response"] == "utter_order_picked_up_invoice"
    invoicing.issue_invoice(order_id, COMPANY, issuer=issuer(), actor="test")
    message = announce(order_id, "picked_up", "en")
    assert message["response"] == "utter_order_picked_up" and "invoice" not in text_of(message)


def test_every_message_carries_its_language_for_the_channel(demo):
    """Issue 11: the first English list read "Ver opciones": the channel looked the language up before the
    turn that changed it was saved. Each message now says its own language."""
    messages, _ = run(ActionAddItems(), tracker(said("add_items", text="something weird"), slots={"language": "en"}))
    assert messages and all(message["language"] == "en" for message in messages)


def test_a_flagged_payment_pauses_the_bot_while_a_person_checks(demo):
    order_id = place_card_order()
    with transaction() as session:
        from comanda.services.handoff import open_ticket

        open_ticket(session, ANA, "payment_flag", "amount mismatch")
    latest = said("EXTERNAL_order_update", entity("order_id", order_id), entity("event", "flagged"))
    [message], events = run(ActionAnnounceOrderUpdate(), tracker(latest))
    assert message["response"] == "utter_order_flagged" and events == [ConversationPaused()]
