"""Checkout in the chat: the checkout form's questions and checks, the summary, and placing the order.

Every answer is read by comanda.services.answers and checked by comanda.services.checkout; placing the
order holds the stock (comanda.services.orders). A wrong answer is said plainly and asked again; a
message that is something else (a question, another product, "cancela") is left to Rasa's rules and the
form asks again afterwards; nothing is lost.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.base import ComandaAction, ComandaFormValidation, Turn, utter_checkout_problem
from actions.payments import start_payment
from actions.replies import format_lines
from comanda import models as m
from comanda.db import savepoint
from comanda.enums import CheckoutProblemReason as R
from comanda.enums import Fulfilment, PaymentMethod
from comanda.errors import OutOfStock
from comanda.i18n import join_words, t
from comanda.money import format_money
from comanda.services import answers, carts, checkout, orders, store_credit
from comanda.services.answers import AnswerKind
from comanda.services.checkout import CheckoutDetails, CheckoutProblem

# Slots one checkout fills; placing (or abandoning) the order clears them, the name stays.
CHECKOUT_SLOTS = (
    "fulfilment",
    "delivery_postal_code",
    "delivery_address",
    "payment_method",
    "use_store_credit",
    "order_confirmed",
)


def clear_checkout() -> List[EventType]:
    return [SlotSet(name, None) for name in CHECKOUT_SLOTS]


def located(turn: Turn) -> bool:
    """The customer shared where to deliver: the address question asks only for what a pin does not say."""
    return turn.cart is not None and turn.cart.delivery_latitude is not None


class ActionStartCheckout(ComandaAction):
    """Before the form: nothing to pay for an empty cart (but an order still to pay gets its link); a store
    that does not deliver means pickup; the customer's name is known from earlier orders or WhatsApp."""

    def name(self) -> str:
        return "action_start_checkout"

    def act(self, turn: Turn) -> List[EventType]:
        if turn.cart is None or not turn.cart.lines:
            unpaid = orders.payable_order(turn.session, turn.conversation_id)
            if unpaid is None:
                turn.say("utter_cart_empty")
            else:  # "mándame el link de pago": the order still to pay gets a fresh link
                start_payment(turn, unpaid, fresh_link=True)
            return [SlotSet("cart_empty", True)]
        store, customer = turn.store, turn.session.get(m.Customer, turn.conversation.customer_id)
        events: List[EventType] = [SlotSet("cart_empty", False), *clear_checkout()]
        if not store.delivery_available:
            turn.say("utter_no_delivery", store_name=store.name, address=store.address)
            events.append(SlotSet("fulfilment", Fulfilment.PICKUP.value))
        if not turn.slot("customer_name") and customer.name:
            events.append(SlotSet("customer_name", answers.read_name(customer.name)))
        return events


class ValidateCheckoutForm(ComandaFormValidation):
    STEPS_ASIDE_FOR = frozenset(
        {
            "cancel_order",
            "add_items",
            "remove_items",
            "change_quantity",
            "show_cart",
            "clear_cart",
            "product_question",
            "show_menu",
            "faq",
            "human_handoff",
        }
    )  # data/rules/checkout.yml
    STOPPED = "utter_checkout_stopped"
    ANSWERS = {
        "fulfilment": AnswerKind.FULFILMENT,
        "delivery_postal_code": AnswerKind.POSTAL_CODE,
        "delivery_address": AnswerKind.ADDRESS,
        "customer_name": AnswerKind.NAME,
        "payment_method": AnswerKind.PAYMENT_METHOD,
    }

    def name(self) -> str:
        return "validate_checkout_form"

    def answer_kind(self, turn: Turn, slot: str) -> Optional[AnswerKind]:
        """With a shared location, the address question takes references ("depto 3", "no")."""
        if slot == "delivery_address" and located(turn):
            return AnswerKind.REFERENCES
        return super().answer_kind(turn, slot)

    async def required_slots(
        self, domain_slots: List[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[str]:
        """Delivery questions only for a delivery; no postal code when the customer shared a location."""
        if tracker.get_slot("fulfilment") != Fulfilment.DELIVERY:
            return [s for s in domain_slots if s not in ("delivery_postal_code", "delivery_address")]
        return [s for s in domain_slots if not (located(self.turn) and s == "delivery_postal_code")]

    def validate_fulfilment(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        turn = self.turn
        chosen = value if value in checkout.FULFILMENTS else answers.read_fulfilment(str(value))
        if chosen is None:
            turn.say("utter_invalid_fulfilment")
            return {"fulfilment": None}
        if chosen == Fulfilment.PICKUP:
            return {"fulfilment": Fulfilment.PICKUP.value}
        problem = checkout.delivery_problem(turn.session, turn.store, turn.cart, place=False) if turn.cart else None
        if problem is not None and problem.reason in (R.NO_DELIVERY, R.BELOW_MINIMUM):
            utter_checkout_problem(problem, turn)
            return {"fulfilment": Fulfilment.PICKUP.value if problem.reason == R.NO_DELIVERY else None}
        return {"fulfilment": Fulfilment.DELIVERY.value}

    def validate_delivery_postal_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        turn, text = self.turn, str(value)
        if answers.read_fulfilment(text) == Fulfilment.PICKUP:
            return {"fulfilment": Fulfilment.PICKUP.value, "delivery_postal_code": None}
        code, address = answers.read_postal_code(text), answers.read_address(text)
        if code is None:
            if address is not None:  # the address first: it is kept, the postal code is asked for
                turn.say("utter_address_kept")
                return {"delivery_postal_code": None, "delivery_address": address}
            turn.say("utter_invalid_postal_code")
            return {"delivery_postal_code": None}
        problem = checkout.delivery_problem(turn.session, turn.store, turn.cart, code) if turn.cart else None
        if problem is not None:
            utter_checkout_problem(problem, turn)
            return {"delivery_postal_code": None, **({"fulfilment": None} if problem.reason == R.BELOW_MINIMUM else {})}
        return {"delivery_postal_code": code, **({"delivery_address": address} if address else {})}

    def validate_delivery_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        turn, text = self.turn, str(value)
        if answers.read_fulfilment(text) == Fulfilment.PICKUP and answers.read_address(text) is None:
            return {"fulfilment": Fulfilment.PICKUP.value, "delivery_address": None, "delivery_postal_code": None}
        if located(turn):
            return {"delivery_address": answers.read_references(text)}
        address = answers.read_address(text)
        if address is None:
            turn.say("utter_invalid_address")
            return {"delivery_address": None}
        problem = (
            checkout.delivery_problem(turn.session, turn.store, turn.cart, turn.slot("delivery_postal_code"))
            if turn.cart
            else None
        )
        if problem is not None:
            utter_checkout_problem(problem, turn)
            return {"delivery_address": None, "fulfilment": None, "delivery_postal_code": None}
        return {"delivery_address": address}

    def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        name = answers.read_name(str(value))
        if name is None:
            self.turn.say("utter_invalid_name")
        return {"customer_name": name}

    def validate_payment_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Store credit that does not cover the total is kept and the question asked again, for the rest."""
        turn = self.turn
        method = value if value in checkout.PAYMENT_METHODS else answers.read_payment_method(str(value))
        offered = checkout.payment_choices(turn.store, turn.slot("fulfilment")) + credit_choice(turn)
        if method not in offered:
            turn.say("utter_invalid_payment_method")
            return {"payment_method": None}
        if method == PaymentMethod.STORE_CREDIT:
            balance, total = credit_balance(turn) or Decimal(0), cart_total(turn)
            if balance < total:
                return {"payment_method": None, "use_store_credit": True}
        return {"payment_method": method}


class ActionAskDeliveryAddress(ComandaAction):
    """The street and number; after a shared location, only the interior and references."""

    def name(self) -> str:
        return "action_ask_delivery_address"

    def act(self, turn: Turn) -> List[EventType]:
        return turn.say("utter_ask_delivery_references" if located(turn) else "utter_ask_delivery_address")


class ActionAskPaymentMethod(ComandaAction):
    """The business's payment methods that fit this order, as buttons (a list past three), store credit among
    them while there is a balance; once the credit is taken and does not cover the total, how to pay the rest."""

    def name(self) -> str:
        return "action_ask_payment_method"

    def act(self, turn: Turn) -> List[EventType]:
        lang = turn.language
        balance = credit_balance(turn)
        if turn.slot("use_store_credit") and balance is not None:
            return turn.say(
                "utter_ask_rest_payment_method",
                credit=format_money(balance),
                rest=format_money(cart_total(turn) - balance),
                buttons=[
                    {
                        "title": t(f"payment_method.short.{code}", lang),
                        "payload": f'/inform{{"payment_method":"{code}"}}',
                        "description": t(f"payment_method.{code}", lang),
                    }
                    for code in checkout.payment_choices(turn.store, turn.slot("fulfilment"))
                ],
            )
        return turn.say(
            "utter_ask_payment_method",
            buttons=[
                {
                    "title": t(f"payment_method.short.{code}", lang),
                    "payload": f'/inform{{"payment_method":"{code}"}}',
                    "description": t(f"payment_method.{code}", lang, balance=format_money(balance or Decimal(0))),
                }
                for code in checkout.payment_choices(turn.store, turn.slot("fulfilment")) + credit_choice(turn)
            ],
        )


def cart_total(turn: Turn) -> Decimal:
    """What the open cart costs as it would be ordered now (nothing without one)."""
    cart = turn.cart
    if cart is None:
        return Decimal(0)
    return checkout.quote(turn.session, turn.store, cart, turn.slot("fulfilment"), turn.language).total


def credit_balance(turn: Turn) -> Optional[Decimal]:
    """The customer's store credit, when there is some and a cart to spend it on (it is offered as a way to
    pay, for all of the total or a part)."""
    cart = turn.cart
    if cart is None or not cart.lines:
        return None
    found = store_credit.balance(turn.session, turn.store.business_id, cart.customer_id)
    return found if found > 0 else None


def credit_choice(turn: Turn) -> List[str]:
    """Store credit among the choices, unless it was taken already and the question is for the rest."""
    return (
        [PaymentMethod.STORE_CREDIT] if credit_balance(turn) is not None and not turn.slot("use_store_credit") else []
    )


class ActionAskOrderConfirmed(ComandaAction):
    """The summary to confirm: lines, how it is fulfilled, the name, the payment, the total (the same
    quote the order will be placed at)."""

    def name(self) -> str:
        return "action_ask_order_confirmed"

    def act(self, turn: Turn) -> List[EventType]:
        lang, slot, store, cart = turn.language, turn.slot, turn.store, turn.cart
        if cart is None or not cart.lines:
            return turn.say("utter_cart_empty")
        quote = checkout.quote(turn.session, store, cart, slot("fulfilment"), lang)
        fee = format_money(quote.delivery_fee)
        address = slot("delivery_address")
        if slot("fulfilment") != Fulfilment.DELIVERY:
            details = [t("checkout.pickup", lang, address=store.address)]
        elif slot("delivery_postal_code"):
            details = [t("checkout.delivery", lang, address=address, postal_code=slot("delivery_postal_code"), fee=fee)]
        elif address and address != answers.NO_REFERENCES:
            details = [t("checkout.delivery_location", lang, address=address, fee=fee)]
        else:
            details = [t("checkout.delivery_pin", lang, fee=fee)]
        balance = credit_balance(turn)
        method = t(f"payment_method.{slot('payment_method')}", lang, balance=format_money(balance or Decimal(0)))
        if slot("use_store_credit") and balance is not None and balance < quote.total:
            paying = t(
                "checkout.payment_split",
                lang,
                credit=format_money(balance),
                rest=format_money(quote.total - balance),
                method=method,
            )
        else:
            paying = t("checkout.payment", lang, method=method)
        details += [t("checkout.name", lang, name=slot("customer_name")), paying]
        return turn.say(
            "utter_ask_order_confirmed",
            store_name=store.name,
            lines=format_lines(quote.lines),
            details="\n".join(details),
            total=format_money(quote.total),
        )


class ActionPlaceOrder(ComandaAction):
    """After the form: a "no" keeps the cart; a "yes" places the order, its stock held, and opens its
    payment. Run again for the same confirmation (the action server died after placing it), the order
    already placed gets its payment link: an order is never placed twice."""

    def name(self) -> str:
        return "action_place_order"

    def act(self, turn: Turn) -> List[EventType]:
        slot = turn.slot
        if slot("order_confirmed") is None:  # the customer left the form ("cancela"): it said so
            return clear_checkout()
        if not slot("order_confirmed"):
            turn.say("utter_checkout_changed_mind")
            return clear_checkout()
        address = slot("delivery_address")
        details = CheckoutDetails(
            fulfilment=slot("fulfilment"),
            customer_name=slot("customer_name"),
            payment_method=slot("payment_method"),
            postal_code=slot("delivery_postal_code"),
            address=None if address == answers.NO_REFERENCES else address,
            use_store_credit=bool(slot("use_store_credit")),
        )
        try:
            with savepoint(turn.session):
                order = orders.place_order(
                    turn.session, turn.conversation_id, details, actor=f"conversation:{turn.conversation_id}"
                )
        except OutOfStock as short:
            fit_cart(turn, short)
            return clear_checkout()
        except CheckoutProblem as problem:
            utter_checkout_problem(problem, turn)
            return clear_checkout()
        except orders.EmptyCart:
            placed = orders.placed_from_latest_cart(turn.session, turn.conversation_id)
            if placed is None:
                turn.say("utter_cart_empty")
            else:
                announce_placed(turn, placed)
            return clear_checkout()
        announce_placed(turn, order)
        return clear_checkout()


def announce_placed(turn: Turn, order: Any) -> None:
    """Cash on pickup: the ticket; store credit: paid, the ticket; anything else: how to pay. Store credit that
    paid a part is said first; what is left to pay is the rest."""
    credit = store_credit.spent_on(turn.session, order.id)
    if order.payment_method == PaymentMethod.STORE_CREDIT:
        turn.say(
            "utter_order_paid_with_credit",
            order=orders.order_number(order),
            total=format_money(order.total),
            balance=format_money(store_credit.balance(turn.session, order.business_id, order.customer_id)),
        )
        return
    if credit > 0:
        turn.say(
            "utter_order_credit_applied",
            credit=format_money(credit),
            rest=format_money(orders.amount_due(turn.session, order)),
        )
    if order.payment_method == PaymentMethod.CASH:
        turn.say(
            "utter_order_received_cash",
            order=orders.order_number(order),
            total=format_money(orders.amount_due(turn.session, order)),
            address=turn.store.address,
        )
    else:
        start_payment(turn, order)


def fit_cart(turn: Turn, short: OutOfStock) -> None:
    """Someone bought the last ones while this customer checked out: the cart keeps what is left."""
    cart = turn.open_cart()
    names = carts.fit_to_stock(turn.session, cart, short.available, turn.language)
    lines, total = carts.cart_view(turn.session, cart, turn.language)
    turn.say("utter_order_out_of_stock", items=join_words(names, turn.language))
    if lines:
        turn.say("utter_cart_contents", lines=format_lines(lines), total=format_money(total))


class ActionStopCheckout(ComandaAction):
    """Leaving checkout ("ya no", "luego pago"): the form stops, the cart stays."""

    def name(self) -> str:
        return "action_stop_checkout"

    def act(self, turn: Turn) -> List[EventType]:
        intent: Optional[str] = turn.intent
        if intent == "cancel_order":
            turn.say("utter_checkout_stopped")
        return [ActiveLoop(None), SlotSet("requested_slot", None), *clear_checkout()]
