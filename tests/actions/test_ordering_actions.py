"""The ordering actions as the action server runs them: a tracker in (entities as the NLU emits
them), responses and events out, the cart and orders in the database."""

from typing import Any, Dict, List
from zoneinfo import ZoneInfo

from rasa_sdk.events import ActiveLoop, SlotSet
from sqlalchemy import select

from actions.cart import ActionAddItems, ActionAnswerProduct, ActionChangeQuantity, ActionRemoveItems, ActionShowCart
from actions.checkout import (
    ActionAskOrderConfirmed,
    ActionAskPaymentMethod,
    ActionPlaceOrder,
    ActionStartCheckout,
    ActionStopCheckout,
    ValidateCheckoutForm,
)
from actions.orders import ActionCancelOrder, ActionOrderStatus
from actions.payments import ActionAnnounceOrderUpdate, ActionNewPaymentLink
from actions.support import ActionFallback, ActionHandoff
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import orders as orders_service
from tests.helpers.actions import ANA, CARD, answer, domain, line, responses, run, said, tracker
from tests.helpers.stock import set_on_hand


def form_tracker(slots: Dict[str, Any], latest: Dict[str, Any] = None):
    return tracker(latest or said("inform"), slots=slots, loop="checkout_form")


def validate(slot: str, value: Any, slots: Dict[str, Any] = None):
    """The checkout form's answer to ``value`` typed for ``slot``: the slots it set, what it said."""
    return answer(ValidateCheckoutForm(), slot, value, slots)


def test_adding_lines_answers_with_the_cart_and_the_next_step(demo):
    messages, events = run(ActionAddItems(), tracker(said("add_items", line("TACO-PASTOR", 3), line("COCA-600"))))
    assert responses(messages) == ["utter_items_added", "utter_cart_contents", "utter_cart_next"]
    assert messages[0]["items"] == "3 × Taco al pastor y 1 × Coca-Cola 600 ml"
    assert messages[1]["lines"] == "• 3 × Taco al pastor — $66.00\n• 1 × Coca-Cola 600 ml — $30.00"
    assert messages[1]["total"] == "$96.00"
    assert events == [SlotSet("offered_items", None)]


def test_short_stock_offers_what_is_left_and_yes_adds_it(demo):
    set_on_hand("COCA-600", "3")
    messages, events = run(ActionAddItems(), tracker(said("add_items", line("COCA-600", 5))))
    assert responses(messages) == ["utter_only_left"] and messages[0]["items"] == "3 × Coca-Cola 600 ml"
    assert messages[0]["buttons"][0]["title"] == "Sí, agrega 3"
    [offered] = events
    messages, _ = run(ActionAddItems(), tracker(said("affirm"), slots={"offered_items": offered["value"]}))
    assert messages[0]["items"] == "3 × Coca-Cola 600 ml"


def test_an_unknown_product_gets_the_closest_names_or_the_menu(demo):
    messages, _ = run(ActionAddItems(), tracker(said("add_items", text="quiero una horchatta grande")))
    assert responses(messages) == ["utter_product_unknown"]
    assert [b["title"] for b in messages[0]["buttons"]] == ["Agua de horchata (500 ml)"]
    messages, _ = run(ActionAddItems(), tracker(said("add_items", text="quiero una hamburguesa")))
    assert responses(messages) == ["utter_product_unknown_no_match", "utter_menu_categories"]


def test_tacos_at_roma_are_not_sold_there_not_sold_out_and_centro_has_them(demo):
    """Issue 11: "Ya no nos queda Taco al pastor" at Roma sounded sold out; Roma never sells tacos."""
    messages, _ = run(
        ActionAddItems(),
        tracker(
            said("add_items", line("TACO-PASTOR", 2)), sender="roma:whatsapp:+525511112222", slots={"language": "en"}
        ),
    )
    assert responses(messages) == ["utter_not_sold_here_elsewhere"]
    assert (messages[0]["items"], messages[0]["elsewhere"]) == ("Al pastor taco", "Café Esquina Centro")


def test_sold_out_here_points_to_the_branch_that_has_it(demo):
    set_on_hand("COCA-600", "0")
    messages, _ = run(ActionAddItems(), tracker(said("add_items", line("COCA-600", 2))))
    assert responses(messages)[0] == "utter_out_of_stock_elsewhere"
    assert (messages[0]["items"], messages[0]["elsewhere"]) == ("Coca-Cola 600 ml", "Café Esquina Roma")


def test_remove_and_change_quantity(demo):
    run(ActionAddItems(), tracker(said("add_items", line("TACO-PASTOR", 3), line("COCA-600", 2))))
    messages, _ = run(
        ActionRemoveItems(), tracker(said("remove_items", line("COCA-600", 1, stated=False), text="quita la coca"))
    )
    assert responses(messages) == ["utter_items_removed", "utter_cart_contents"]
    assert messages[1]["lines"] == "• 3 × Taco al pastor — $66.00"
    messages, _ = run(ActionChangeQuantity(), tracker(said("change_quantity", line("TACO-PASTOR", 5))))
    assert responses(messages) == ["utter_quantity_set", "utter_cart_contents"]
    assert messages[-1]["lines"] == "• 5 × Taco al pastor — $110.00"
    messages, _ = run(ActionRemoveItems(), tracker(said("remove_items", line("CHURROS"), text="quita los churros")))
    assert responses(messages) == ["utter_not_in_cart", "utter_cart_contents"]
    assert responses(run(ActionRemoveItems(), tracker(said("remove_items")))[0]) == ["utter_remove_what"]


def test_a_product_question_gives_price_options_and_an_offer(demo):
    latest = said("product_question", {"entity": "product", "value": "MATCHA-LT"}, text="¿tienen matcha?")
    messages, events = run(ActionAnswerProduct(), tracker(latest))
    assert responses(messages) == ["utter_product_info", "utter_product_details_by_staff"]
    assert messages[0]["price"] == "$70.00"
    assert messages[0]["options"] == " Lo puedes pedir chico, mediano (+$10.00) o grande (+$20.00)."
    assert events == [SlotSet("offered_items", [{"sku": "MATCHA-LT", "quantity": 1}])]


def test_checkout_form_reads_and_checks_every_answer(demo):
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA", 2))))
    assert validate("fulfilment", "paso a recoger") == ({"fulfilment": "pickup"}, [])
    assert validate("fulfilment", "azul") == ({"fulfilment": None}, ["utter_invalid_fulfilment"])
    assert validate("fulfilment", "delivery") == ({"fulfilment": None}, ["utter_below_minimum"])  # $36 < $150
    run(ActionAddItems(), tracker(said("add_items", line("CAFE-GRANO-250"))))
    assert validate("fulfilment", "a domicilio") == ({"fulfilment": "delivery"}, [])
    delivery = {"fulfilment": "delivery"}
    assert validate("delivery_postal_code", "cp 06010", delivery) == ({"delivery_postal_code": "06010"}, [])
    assert validate("delivery_postal_code", "06700", delivery) == (
        {"delivery_postal_code": None},
        ["utter_postal_code_not_served"],
    )
    assert validate("delivery_postal_code", "mejor paso a recoger", delivery) == (
        {"fulfilment": "pickup", "delivery_postal_code": None},
        [],
    )
    assert validate("delivery_address", "Madero 25, depto 3", {**delivery, "delivery_postal_code": "06010"}) == (
        {"delivery_address": "Madero 25, depto 3"},
        [],
    )
    assert validate("delivery_address", "ahí", {**delivery, "delivery_postal_code": "06010"})[1] == [
        "utter_invalid_address"
    ]
    assert validate("customer_name", "a nombre de Ana López") == ({"customer_name": "Ana López"}, [])
    assert validate("customer_name", "06010") == ({"customer_name": None}, ["utter_invalid_name"])
    assert validate("payment_method", "con tarjeta", {"fulfilment": "delivery"}) == ({"payment_method": "card"}, [])
    assert validate("payment_method", "efectivo", {"fulfilment": "delivery"}) == (
        {"payment_method": None},
        ["utter_invalid_payment_method"],
    )


def next_question(slot: str, value: Any, slots: Dict[str, Any] = None) -> Any:
    """The slot the checkout form asks for after this answer (when the form keeps the domain's order,
    rasa-sdk leaves the choice to Rasa: the first empty slot)."""
    filled, said_back = answer(ValidateCheckoutForm(), slot, value, slots, requested=True)
    if "requested_slot" in filled:
        return filled["requested_slot"]
    known = {**(slots or {}), **filled}
    return next(s for s in domain()["forms"]["checkout_form"]["required_slots"] if known.get(s) is None)


def test_required_slots_follow_the_fulfilment_and_the_shared_location(demo):
    run(ActionAddItems(), tracker(said("add_items", line("CAFE-GRANO-250"))))
    assert next_question("fulfilment", "paso a recoger") == "customer_name"
    assert next_question("fulfilment", "a domicilio") == "delivery_postal_code"
    assert next_question("delivery_postal_code", "06010", {"fulfilment": "delivery"}) == "delivery_address"
    with transaction() as session:
        from comanda.services.carts import open_cart, set_delivery_location

        set_delivery_location(session, open_cart(session, ANA), 19.4326, -99.1332)
    assert next_question("fulfilment", "a domicilio") == "delivery_address"  # the pin says where: no postal code


def test_start_checkout_knows_an_empty_cart_a_store_without_delivery_and_the_name(demo):
    _, events = run(ActionStartCheckout(), tracker(said("checkout")))
    assert events == [SlotSet("cart_empty", True)]
    roma = "roma:whatsapp:+525511112222"
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA")), sender=roma))
    with transaction() as session:
        conversation = session.get(m.Conversation, roma)
        session.get(m.Customer, conversation.customer_id).name = "Ana 🌸"
    messages, events = run(ActionStartCheckout(), tracker(said("checkout"), sender=roma))
    assert responses(messages) == ["utter_no_delivery"]
    assert SlotSet("cart_empty", False) in events and SlotSet("fulfilment", "pickup") in events
    assert SlotSet("customer_name", "Ana 🌸") in events


def test_summary_then_placing_a_cash_order(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_SPEI_CLABE", "012180001234567897")
    run(ActionAddItems(), tracker(said("add_items", line("TACO-PASTOR", 2, taco_extras="with_pineapple"))))
    slots = {"fulfilment": "pickup", "customer_name": "Ana", "payment_method": "cash", "order_confirmed": True}
    messages, _ = run(ActionAskPaymentMethod(), form_tracker({"fulfilment": "pickup"}))
    assert [b["title"] for b in messages[0]["buttons"]] == [
        "Tarjeta",
        "Efectivo en OXXO",
        "Transferencia SPEI",
        "Efectivo al recoger",
    ]
    [summary], _ = run(ActionAskOrderConfirmed(), form_tracker(slots))
    assert summary["lines"] == "• 2 × Taco al pastor (con piña) — $44.00" and summary["total"] == "$44.00"
    assert summary["details"] == (
        "🏪 Recoges en Av. 5 de Mayo 32, Centro Histórico, CDMX\n👤 A nombre de Ana\n💳 Pago: efectivo al recoger"
    )
    messages, events = run(ActionPlaceOrder(), tracker(said("affirm"), slots=slots))
    assert responses(messages) == ["utter_order_received_cash"] and messages[0]["order"] == "C-001"
    assert SlotSet("fulfilment", None) in events and SlotSet("order_confirmed", None) in events
    [status], _ = run(ActionOrderStatus(), tracker(said("order_status")))
    assert (status["order"], status["status"]) == ("C-001", "recibido, en la fila para prepararse")
    [cancelled], _ = run(ActionCancelOrder(), tracker(said("cancel_order")))
    assert cancelled["response"] == "utter_order_cancelled"
    assert responses(run(ActionCancelOrder(), tracker(said("cancel_order")))[0]) == ["utter_no_orders"]


def test_a_no_at_the_summary_keeps_the_cart_and_a_sold_out_line_is_cut(demo):
    run(ActionAddItems(), tracker(said("add_items", line("COCA-600", 3), line("CONCHA"))))
    messages, _ = run(ActionPlaceOrder(), tracker(said("deny"), slots={"order_confirmed": False}))
    assert responses(messages) == ["utter_checkout_changed_mind"]
    set_on_hand("COCA-600", "1")
    slots = {"fulfilment": "pickup", "customer_name": "Ana", "payment_method": "cash", "order_confirmed": True}
    messages, _ = run(ActionPlaceOrder(), tracker(said("affirm"), slots=slots))
    assert responses(messages) == ["utter_order_out_of_stock", "utter_cart_contents"]
    assert messages[1]["lines"] == "• 1 × Coca-Cola 600 ml — $30.00\n• 1 × Concha — $18.00"
    with new_session() as session:
        assert session.execute(select(m.Order)).first() is None


def test_stopping_checkout_keeps_the_cart(demo):
    messages, events = run(ActionStopCheckout(), form_tracker({}, said("cancel_order")))
    assert responses(messages) == ["utter_checkout_stopped"]
    assert events[:2] == [ActiveLoop(None), SlotSet("requested_slot", None)]


def test_cancelling_an_order_the_kitchen_started_goes_to_a_person(demo):
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    run(
        ActionPlaceOrder(),
        tracker(
            said("affirm"),
            slots={"fulfilment": "pickup", "customer_name": "Ana", "payment_method": "cash", "order_confirmed": True},
        ),
    )
    with transaction() as session:
        from comanda.services.orders import latest_order, set_status

        set_status(session, latest_order(session, ANA), "preparing", "staff:1")
    [msg], _ = run(ActionCancelOrder(), tracker(said("cancel_order"), slots={"language": "en"}))
    assert msg["response"] == "utter_cannot_cancel" and msg["status"] == "being prepared"
    with new_session() as session:
        [ticket] = session.execute(select(m.HandoffTicket)).scalars().all()
        assert ticket.reason == "cancellation"


def fallback_events(count: int) -> List[Dict[str, Any]]:
    return [{"event": "user", "parse_data": {"intent": {"name": "greet"}}, "message_id": "m0"}] + [
        event
        for n in range(1, count + 1)
        for event in (
            {"event": "user", "parse_data": {"intent": {"name": "nlu_fallback"}}, "message_id": f"m{n}"},
            {"event": "bot"},
        )
    ]


def test_two_fallbacks_in_a_row_open_a_handoff_ticket(demo):
    [msg], _ = run(ActionFallback(), tracker(said("nlu_fallback"), events=fallback_events(1)))
    assert msg["response"] == "utter_please_rephrase"
    [msg], _ = run(ActionFallback(), tracker(said("nlu_fallback", text="asdf qwer"), events=fallback_events(2)))
    assert msg["response"] == "utter_fallback_handoff"
    [msg], _ = run(ActionHandoff(), tracker(said("complaint", text="mi café llegó frío")))
    assert msg["response"] == "utter_complaint"
    with new_session() as session:
        tickets = session.execute(select(m.HandoffTicket).order_by(m.HandoffTicket.id)).scalars().all()
        # Issue 11: each kind of request is its own ticket; a complaint does not hide in the fallback's
        assert [(t.reason, t.summary) for t in tickets] == [
            ("fallback", "asdf qwer"),
            ("complaint", "mi café llegó frío"),
        ]


def test_show_cart_when_empty(demo):
    assert responses(run(ActionShowCart(), tracker(said("show_cart")))[0]) == ["utter_cart_empty"]
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    messages, _ = run(ActionShowCart(), tracker(said("show_cart"), loop="checkout_form"))
    assert responses(messages) == ["utter_cart_contents"] and messages[0]["total"] == "$18.00"


def test_a_frequent_question_during_checkout_is_answered_not_taken_as_an_answer(demo):
    """The form steps aside (rejects its execution): the FAQ rule answers, then the form asks again."""
    faq = {
        **said("faq", text="¿a qué hora cierran?"),
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/hours"}}},
    }
    form = ValidateCheckoutForm()
    for slot in ("customer_name", "fulfilment"):
        assert answer(form, slot, "¿a qué hora cierran?", latest=faq) == ({slot: None, "rejected": True}, [])


def test_a_card_order_gets_a_link_held_until_the_stock_hold_ends(demo):
    run(ActionAddItems(), tracker(said("add_items", line("COCA-600", 2))))
    messages, _ = run(ActionPlaceOrder(), tracker(said("affirm"), slots=CARD))
    assert responses(messages) == ["utter_pay_by_link"]
    assert messages[0]["total"] == "$60.00" and "/pay/" in messages[0]["url"]
    with new_session() as session:
        order = session.execute(select(m.Order)).scalar_one()
        payment = session.execute(select(m.Payment)).scalar_one()
        assert (order.status, payment.status, payment.link_url) == ("pending_payment", "pending", messages[0]["url"])
        until = payment.expires_at.astimezone(ZoneInfo("America/Mexico_City")).strftime("%H:%M")
    assert messages[0]["until"] == until
    [again], _ = run(ActionStartCheckout(), tracker(said("checkout", text="mándame el link otra vez")))
    assert again["response"] == "utter_pay_by_link" and again["url"] != messages[0]["url"]


def test_spei_gives_the_reference_and_the_clabe(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_SPEI_CLABE", "012180001234567897")
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA", 3))))
    [msg], _ = run(ActionPlaceOrder(), tracker(said("affirm"), slots={**CARD, "payment_method": "spei"}))
    assert msg["response"] == "utter_pay_by_spei" and msg["clabe"] == "012180001234567897"
    assert msg["total"] == "$54.00" and msg["reference"].isdigit()


def test_announcements_speak_only_of_the_conversations_own_orders(demo):
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    run(ActionPlaceOrder(), tracker(said("affirm"), slots=CARD))
    with transaction() as session:
        order = session.execute(select(m.Order)).scalar_one()
        orders_service.enter_queue(session, order, "test")
        order_id, ticket = order.id, order.ticket_code

    def announce(event, sender=ANA):
        latest = said(
            "EXTERNAL_order_update", {"entity": "order_id", "value": order_id}, {"entity": "event", "value": event}
        )
        return run(ActionAnnounceOrderUpdate(), tracker(latest, sender=sender))[0]

    [paid] = announce("paid")
    assert (paid["response"], paid["order"], paid["total"]) == ("utter_order_paid", ticket, "$18.00")
    assert announce("ready")[0]["response"] == "utter_order_ready_pickup"
    assert announce("nonsense") == []
    assert announce("paid", sender="centro:whatsapp:+525599990000") == []  # someone else's order: nothing said
    messages, _ = run(
        ActionNewPaymentLink(), tracker(said("request_payment_link", {"entity": "order_id", "value": order_id}))
    )
    assert responses(messages) == ["utter_nothing_to_pay"]  # paid already


def test_a_new_link_for_an_order_id_that_is_no_number_is_nothing_to_pay(demo):
    """A customer can type "/request_payment_link{...}" with anything in it: it names no order of theirs."""
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    run(ActionPlaceOrder(), tracker(said("affirm"), slots=CARD))
    for wanted in ("abc", "-1", {"id": 1}):
        messages, _ = run(
            ActionNewPaymentLink(), tracker(said("request_payment_link", {"entity": "order_id", "value": wanted}))
        )
        assert responses(messages) == ["utter_nothing_to_pay"], wanted
    with new_session() as session:
        order_id = session.execute(select(m.Order.id)).scalar_one()
    messages, _ = run(
        ActionNewPaymentLink(), tracker(said("request_payment_link", {"entity": "order_id", "value": str(order_id)}))
    )
    assert responses(messages) == ["utter_pay_by_link"]
