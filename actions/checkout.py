"""Checkout in the chat: the checkout form's questions and checks, the summary, and placing the order.

Every answer is read and checked by comanda.services.checkout; placing the order holds the stock
(comanda.services.orders). A wrong answer is said plainly and asked again; nothing is lost.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import conversation, language
from actions.faq import faq_topic
from actions.payments import order_awaiting_payment, start_payment
from actions.replies import format_lines
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.errors import OutOfStock
from comanda.i18n import join_words, t
from comanda.money import format_money, money
from comanda.services import carts, checkout, orders
from comanda.services.checkout import CheckoutDetails, CheckoutProblem
from comanda.services.faq import faq_response
from comanda.services.stores import get_store

# Slots one checkout fills; placing (or abandoning) the order clears them, the name stays.
CHECKOUT_SLOTS = ("fulfilment", "delivery_postal_code", "delivery_address", "payment_method", "order_confirmed")
MIN_ADDRESS_LENGTH = 8
PROBLEM_RESPONSES = {
    "no_delivery": "utter_no_delivery",
    "postal_code_not_served": "utter_postal_code_not_served",
    "too_far": "utter_too_far",
    "below_minimum": "utter_below_minimum",
    "no_delivery_place": "utter_ask_delivery_postal_code",
    "payment_not_offered": "utter_invalid_payment_method",
    "name_missing": "utter_ask_customer_name",
}


def clear_checkout() -> List[EventType]:
    return [SlotSet(name, None) for name in CHECKOUT_SLOTS]


def utter_problem(dispatcher: CollectingDispatcher, problem: CheckoutProblem, store: m.Store, lang: str) -> None:
    """Why the order cannot go as asked, with what the customer needs to change it."""
    params = problem.params
    dispatcher.utter_message(
        response=PROBLEM_RESPONSES[problem.reason],
        store_name=store.name,
        address=store.address,
        postal_codes=join_words([c.postal_code for c in store.delivery_postal_codes], lang),
        postal_code=params.get("postal_code"),
        distance=params.get("distance_km"),
        radius=format((store.delivery_radius_km or 0).normalize(), "f"),
        minimum=format_money(params.get("minimum", 0)),
        missing=format_money(params.get("missing", 0)),
    )


class ActionStartCheckout(Action):
    """Before the form: nothing to pay for an empty cart; a store that does not deliver means pickup;
    the customer's name is known from earlier orders or their WhatsApp profile."""

    def name(self) -> str:
        return "action_start_checkout"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        with transaction() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            if cart.lines:
                return self._start(dispatcher, tracker, session, cart)
            unpaid = order_awaiting_payment(session, tracker.sender_id)
            unpaid_id = unpaid.id if unpaid is not None else None
        if unpaid_id is None:
            dispatcher.utter_message(response="utter_cart_empty")
        else:  # "mándame el link de pago": the order still to pay gets a fresh link
            start_payment(dispatcher, unpaid_id, fresh_link=True)
        return [SlotSet("cart_empty", True)]

    @staticmethod
    def _start(dispatcher: CollectingDispatcher, tracker: Tracker, session: Any, cart: m.Cart) -> List[EventType]:
        store = get_store(session, cart.store_id)
        customer = session.get(m.Customer, cart.customer_id)
        events: List[EventType] = [SlotSet("cart_empty", False), *clear_checkout()]
        if not store.delivery_available:
            dispatcher.utter_message(response="utter_no_delivery", store_name=store.name, address=store.address)
            events.append(SlotSet("fulfilment", "pickup"))
        if not tracker.get_slot("customer_name") and customer.name:
            events.append(SlotSet("customer_name", checkout.read_name(customer.name)))
        return events


def asks_a_question(tracker: Tracker) -> bool:
    """A frequent question is never a name or an address, whatever its words."""
    return (tracker.latest_message.get("intent") or {}).get("name") == "faq"


def not_an_answer(dispatcher: CollectingDispatcher, tracker: Tracker, response: str) -> None:
    """An answer the form cannot use: a frequent question gets its answer (the form then asks
    again); anything else is told what the form expects."""
    topic = faq_topic(tracker) if asks_a_question(tracker) else ""
    if not topic:
        dispatcher.utter_message(response=response)
        return
    with new_session() as session:
        dispatcher.utter_message(**faq_response(session, conversation(tracker).store_id, topic, language(tracker)))


class ValidateCheckoutForm(FormValidationAction):
    def name(self) -> str:
        return "validate_checkout_form"

    async def required_slots(
        self, domain_slots: List[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[str]:
        """Delivery questions only for a delivery; no postal code when the customer shared a location."""
        if tracker.get_slot("fulfilment") != "delivery":
            return [s for s in domain_slots if s not in ("delivery_postal_code", "delivery_address")]
        with new_session() as session:
            located = carts.open_cart(session, tracker.sender_id).delivery_latitude is not None
        return [s for s in domain_slots if not (located and s == "delivery_postal_code")]

    def validate_fulfilment(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        lang = language(tracker)
        chosen = value if value in checkout.FULFILMENTS else checkout.read_fulfilment(str(value))
        if chosen is None:
            not_an_answer(dispatcher, tracker, "utter_invalid_fulfilment")
            return {"fulfilment": None}
        if chosen == "pickup":
            return {"fulfilment": "pickup"}
        with new_session() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            store = get_store(session, cart.store_id)
            problem = checkout.delivery_problem(session, store, cart, place=False)
            if problem is not None and problem.reason in ("no_delivery", "below_minimum"):
                utter_problem(dispatcher, problem, store, lang)
                return {"fulfilment": "pickup" if problem.reason == "no_delivery" else None}
        return {"fulfilment": "delivery"}

    def validate_delivery_postal_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        if checkout.read_fulfilment(str(value)) == "pickup":
            return {"fulfilment": "pickup", "delivery_postal_code": None}
        code = checkout.read_postal_code(str(value))
        if code is None:
            not_an_answer(dispatcher, tracker, "utter_invalid_postal_code")
            return {"delivery_postal_code": None}
        with new_session() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            store = get_store(session, cart.store_id)
            problem = checkout.delivery_problem(session, store, cart, code)
            if problem is not None:
                utter_problem(dispatcher, problem, store, language(tracker))
                return {
                    "delivery_postal_code": None,
                    **({"fulfilment": None} if problem.reason == "below_minimum" else {}),
                }
        return {"delivery_postal_code": code}

    def validate_delivery_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        text = " ".join(str(value).split())
        if checkout.read_fulfilment(text) == "pickup":
            return {"fulfilment": "pickup", "delivery_address": None, "delivery_postal_code": None}
        if len(text) < MIN_ADDRESS_LENGTH or asks_a_question(tracker):
            not_an_answer(dispatcher, tracker, "utter_invalid_address")
            return {"delivery_address": None}
        with new_session() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            store = get_store(session, cart.store_id)
            problem = checkout.delivery_problem(session, store, cart, tracker.get_slot("delivery_postal_code"))
            if problem is not None:
                utter_problem(dispatcher, problem, store, language(tracker))
                return {"delivery_address": None, "fulfilment": None, "delivery_postal_code": None}
        return {"delivery_address": text}

    def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        name = None if asks_a_question(tracker) else checkout.read_name(str(value))
        if name is None:
            not_an_answer(dispatcher, tracker, "utter_invalid_name")
        return {"customer_name": name}

    def validate_payment_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        method = value if value in checkout.PAYMENT_METHODS else checkout.read_payment_method(str(value))
        with new_session() as session:
            store = get_store(session, carts.open_cart(session, tracker.sender_id).store_id)
            offered = checkout.payment_choices(store, tracker.get_slot("fulfilment"))
        if method not in offered:
            not_an_answer(dispatcher, tracker, "utter_invalid_payment_method")
            return {"payment_method": None}
        return {"payment_method": method}


class ActionAskPaymentMethod(Action):
    """The business's payment methods that fit this order, as buttons (a list past three)."""

    def name(self) -> str:
        return "action_ask_payment_method"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        lang = language(tracker)
        with new_session() as session:
            store = get_store(session, carts.open_cart(session, tracker.sender_id).store_id)
            offered = checkout.payment_choices(store, tracker.get_slot("fulfilment"))
        dispatcher.utter_message(
            response="utter_ask_payment_method",
            buttons=[
                {
                    "title": t(f"payment_method.short.{code}", lang),
                    "payload": f'/inform{{"payment_method":"{code}"}}',
                    "description": t(f"payment_method.{code}", lang),
                }
                for code in offered
            ],
        )
        return []


class ActionAskOrderConfirmed(Action):
    """The summary to confirm: lines, how it is fulfilled, the name, the payment, the total."""

    def name(self) -> str:
        return "action_ask_order_confirmed"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        lang, slot = language(tracker), tracker.get_slot
        with new_session() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            store = get_store(session, cart.store_id)
            lines, subtotal = carts.cart_view(session, cart, lang)
            delivery = slot("fulfilment") == "delivery"
            fee = money(store.delivery_fee or 0) if delivery else money(0)
            if not delivery:
                details = [t("checkout.pickup", lang, address=store.address)]
            elif slot("delivery_postal_code"):
                details = [
                    t(
                        "checkout.delivery",
                        lang,
                        address=slot("delivery_address"),
                        postal_code=slot("delivery_postal_code"),
                        fee=format_money(fee),
                    )
                ]
            else:
                details = [
                    t("checkout.delivery_location", lang, address=slot("delivery_address"), fee=format_money(fee))
                ]
        details += [
            t("checkout.name", lang, name=slot("customer_name")),
            t("checkout.payment", lang, method=t(f"payment_method.{slot('payment_method')}", lang)),
        ]
        dispatcher.utter_message(
            response="utter_ask_order_confirmed",
            store_name=store.name,
            lines=format_lines(lines),
            details="\n".join(details),
            total=format_money(subtotal + fee),
        )
        return []


class ActionPlaceOrder(Action):
    """After the form: a "no" keeps the cart; a "yes" places the order, its stock held."""

    def name(self) -> str:
        return "action_place_order"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        lang, slot = language(tracker), tracker.get_slot
        if not slot("order_confirmed"):
            dispatcher.utter_message(response="utter_checkout_changed_mind")
            return clear_checkout()
        details = CheckoutDetails(
            fulfilment=slot("fulfilment"),
            customer_name=slot("customer_name"),
            payment_method=slot("payment_method"),
            postal_code=slot("delivery_postal_code"),
            address=slot("delivery_address"),
        )
        try:
            with transaction() as session:
                order = orders.place_order(
                    session, tracker.sender_id, details, actor=f"conversation:{tracker.sender_id}"
                )
                store = get_store(session, order.store_id)
                order_id, ticket, total, address = order.id, order.ticket_code, format_money(order.total), store.address
        except OutOfStock as short:
            self._fit_cart(dispatcher, tracker, short, lang)
            return clear_checkout()
        except CheckoutProblem as problem:
            with new_session() as session:
                utter_problem(
                    dispatcher, problem, get_store(session, carts.open_cart(session, tracker.sender_id).store_id), lang
                )
            return clear_checkout()
        except orders.EmptyCart:
            dispatcher.utter_message(response="utter_cart_empty")
            return clear_checkout()
        if details.payment_method == "cash":
            dispatcher.utter_message(response="utter_order_received_cash", ticket=ticket, total=total, address=address)
        else:
            start_payment(dispatcher, order_id)
        return clear_checkout()

    @staticmethod
    def _fit_cart(dispatcher: CollectingDispatcher, tracker: Tracker, short: OutOfStock, lang: str) -> None:
        """Someone bought the last ones while this customer checked out: the cart keeps what is left."""
        with transaction() as session:
            cart = carts.open_cart(session, tracker.sender_id)
            names = carts.fit_to_stock(session, cart, short.available, lang)
            lines, total = carts.cart_view(session, cart, lang)
        dispatcher.utter_message(response="utter_order_out_of_stock", items=join_words(names, lang))
        if lines:
            dispatcher.utter_message(
                response="utter_cart_contents", lines=format_lines(lines), total=format_money(total)
            )


class ActionStopCheckout(Action):
    """Leaving checkout ("ya no", "luego pago"): the form stops, the cart stays."""

    def name(self) -> str:
        return "action_stop_checkout"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        intent: Optional[str] = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "cancel_order":
            dispatcher.utter_message(response="utter_checkout_stopped")
        return [ActiveLoop(None), SlotSet("requested_slot", None), *clear_checkout()]
