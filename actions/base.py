"""One way to write an action: a turn's work in one transaction, off the event loop, done once.

Every custom action subclasses ``ComandaAction`` (``act(turn)``) or, for a form's validation,
``ComandaFormValidation`` (rasa-sdk's FormValidationAction with the same turn). For each run:

- the work runs in a worker thread (``comanda.concurrency.in_thread``), so the action server's event
  loop keeps serving other conversations while this one waits on the database or a provider;
- it runs in one database transaction, committed once at the end and rolled back on any error; what the
  action said is only sent when the work committed;
- ``Turn`` holds what the run knows, each part loaded when first asked: the store, the conversation,
  the open cart (read only; ``turn.open_cart()`` creates one), the language, the latest intent;
- the answer (events and messages) is stored with the work, keyed by the conversation, the inbound
  message, the action and its position in the turn (comanda.services.action_runs): Rasa calling it again
  for the same step gets the stored answer and nothing is done twice;
- a ``ComandaError`` that escapes the work becomes the customer's message through ``ERROR_REPLIES``, the
  one table that maps the core's errors to what the customer reads.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Type

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.concurrency import in_thread
from comanda.conversations import ConversationRef, parse_conversation_id
from comanda.db import new_session, transaction
from comanda.enums import CheckoutProblemReason as R
from comanda.errors import ComandaError, OutOfStock
from comanda.i18n import join_words, language_or_default
from comanda.money import format_money
from comanda.services import action_runs, carts
from comanda.services.action_runs import RunKey
from comanda.services.answers import AnswerKind, Said, is_answer, stops
from comanda.services.cfdi.problems import InvoiceRefused, PacUnavailable, Problem
from comanda.services.checkout import CheckoutProblem
from comanda.services.customers import conversation_for
from comanda.services.orders import EmptyCart, StatusConflict
from comanda.services.payment_provider import ProviderError
from comanda.services.payments import NotPayable
from comanda.services.stores import get_store

log = logging.getLogger(__name__)


class Turn:
    """What one action run knows about the conversation, each part loaded from the tracker or the database
    when first asked, and what it says (kept until the work commits)."""

    def __init__(self, tracker: Tracker, domain: DomainDict, session: Session) -> None:
        self.tracker, self.domain, self.session = tracker, domain, session
        self.dispatcher = CollectingDispatcher()

    # --- who, where, in which language
    @property
    def conversation_id(self) -> str:
        return self.tracker.sender_id

    @cached_property
    def ref(self) -> ConversationRef:
        return parse_conversation_id(self.tracker.sender_id)

    @cached_property
    def conversation(self) -> m.Conversation:
        return conversation_for(self.session, self.conversation_id)

    @cached_property
    def store(self) -> m.Store:
        return get_store(self.session, self.ref.store_id)

    @cached_property
    def language(self) -> str:
        return language_or_default(self.tracker.get_slot("language"))

    # --- what the customer said
    @cached_property
    def intent(self) -> Optional[str]:
        """The latest message's intent, by rasa-sdk's helper (intents from the channel or the back office
        carry no ranking: their name is taken as it is)."""
        return self.tracker.get_intent_of_latest_message(skip_fallback_intent=False) or (
            self.tracker.latest_message.get("intent") or {}
        ).get("name")

    @property
    def text(self) -> str:
        return str(self.tracker.latest_message.get("text") or "")

    def entity(self, name: str) -> Any:
        return next(self.tracker.get_latest_entity_values(name), None)

    def entities(self, name: str) -> List[Any]:
        return [e.get("value") for e in self.tracker.latest_message.get("entities") or [] if e.get("entity") == name]

    @cached_property
    def said(self) -> Said:
        return Said(self.text, self.intent, order_lines=bool(self.entities("order_line")))

    def slot(self, name: str) -> Any:
        return self.tracker.get_slot(name)

    def in_form(self, name: Optional[str] = None) -> bool:
        return self.tracker.active_loop_name == name if name else self.tracker.active_loop_name is not None

    # --- the cart
    @cached_property
    def cart(self) -> Optional[m.Cart]:
        """The conversation's open cart, read once per turn; None when there is none."""
        return carts.find_open_cart(self.session, self.conversation_id)

    def open_cart(self) -> m.Cart:
        """The open cart, created (and an idle one left behind) when there is none: this turn writes."""
        if self.cart is None:
            self.__dict__["cart"] = carts.open_cart(self.session, self.conversation_id)
        assert self.cart is not None
        return self.cart

    # --- saying
    def say(self, response: str, **params: Any) -> List[EventType]:
        """Say a domain response (in the customer's language, by the ``language`` slot); returns no events,
        so an action can end with ``return turn.say(...)``. The message carries its language for the
        channel's own words around it (a list's button), which must not wait for the tracker to be saved."""
        self.dispatcher.utter_message(response=response, language=self.language, **params)
        return []

    def send(self, message: Dict[str, Any]) -> None:
        """A channel message Rasa passes on as it is (a WhatsApp document)."""
        self.dispatcher.utter_message(json_message=message)


@dataclass
class Answer:
    events: List[EventType] = field(default_factory=list)
    responses: List[Dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> Dict[str, Any]:
        return {"events": self.events, "responses": self.responses}


Work = Callable[[Turn], List[EventType]]
_current_turn: ContextVar[Turn] = ContextVar("turn")


def run_key(tracker: Tracker, action_name: str) -> Optional[RunKey]:
    """This step's key: the inbound message the turn answers (its id, or the time Rasa logged it for
    intents without one) and how many actions ran since it. None before any message."""
    position = 0
    for event in reversed(tracker.events):
        if event.get("event") == "action":
            position += 1
        elif event.get("event") == "user":
            message = event.get("message_id") or (f"at:{event['timestamp']}" if event.get("timestamp") else None)
            return RunKey(tracker.sender_id, str(message)[:200], action_name, position) if message else None
    return None


async def run_turn(
    action_name: str, work: Work, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> List[EventType]:
    """Do the work once for this step of the turn (see the module's docstring) and pass on what it said."""
    answer = await in_thread(_answer, run_key(tracker, action_name), work, tracker, domain)
    dispatcher.messages.extend(answer.responses)
    return answer.events


class _AnsweredMeanwhile(Exception):
    """Another run of the same step committed first: this run's work is rolled back."""


def _answer(key: Optional[RunKey], work: Work, tracker: Tracker, domain: DomainDict) -> Answer:
    try:
        with transaction() as session:
            if key is not None and (kept := action_runs.stored(session, key)) is not None:
                return Answer(**kept)
            answer = _work(work, Turn(tracker, domain, session))
            if key is not None and not action_runs.record(session, key, answer.as_json()):
                raise _AnsweredMeanwhile()
            return answer
    except _AnsweredMeanwhile:
        assert key is not None
        with new_session() as session:
            kept = action_runs.stored(session, key)
        assert kept is not None
        return Answer(**kept)
    except ComandaError as error:  # the work is rolled back; the customer hears why, once
        with transaction() as session:
            turn = Turn(tracker, domain, session)
            reply_to_error(error, turn)
            answer = Answer([], turn.dispatcher.messages)
            if key is not None:
                action_runs.record(session, key, answer.as_json())
            return answer


def _work(work: Work, turn: Turn) -> Answer:
    token = _current_turn.set(turn)
    try:
        events = work(turn)
    finally:
        _current_turn.reset(token)
    return Answer(list(events or []), turn.dispatcher.messages)


class ComandaAction(Action, ABC):
    """A custom action: ``act`` reads the turn, does the work through comanda services and says what
    happened; it runs as described in this module's docstring. (Abstract: rasa-sdk registers only its
    concrete subclasses.)"""

    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def act(self, turn: Turn) -> List[EventType]: ...

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        return await run_turn(self.name(), self.act, dispatcher, tracker, domain)


class ComandaFormValidation(FormValidationAction):
    """A form's validation (rasa-sdk's FormValidationAction, run in a turn like every action).

    ``ANSWERS`` names the kind of answer each free-text slot takes. Whether the customer's message is
    that answer or something else they want now is decided once, here, for every form
    (comanda.services.answers): "cancela" in so many words ends the form; something else Rasa has a rule
    for during the form (``STEPS_ASIDE_FOR``: a question, another product, a person) clears the slot and
    rejects the form's execution, so the rule handles it and the form asks again afterwards; anything
    else is judged as the answer. Validators (``validate_<slot>``) and ``required_slots`` use
    ``self.turn``."""

    ANSWERS: Dict[str, AnswerKind] = {}
    # The intents Rasa has a rule for while this form runs (data/rules/): what the form steps aside for.
    STEPS_ASIDE_FOR: FrozenSet[str] = frozenset()
    STOPPED = ""  # what the customer reads when they leave the form in words ("cancela")

    @abstractmethod
    def name(self) -> str: ...

    @property
    def turn(self) -> Turn:
        return _current_turn.get()

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        return await run_turn(self.name(), self._validate, dispatcher, tracker, domain)

    def answer_kind(self, turn: Turn, slot: str) -> Optional[AnswerKind]:
        """The kind of answer a slot takes (by ``ANSWERS``; a form may decide by what it knows)."""
        return self.ANSWERS.get(slot)

    def _validate(self, turn: Turn) -> List[EventType]:
        requested = turn.slot("requested_slot")
        kind = self.answer_kind(turn, requested) if requested else None
        if kind is not None and requested in turn.tracker.slots_to_validate():
            if stops(kind, turn.said):  # the form ends here; its "done" action then does nothing
                turn.say(self.STOPPED)
                return [SlotSet(requested, None), SlotSet("requested_slot", None), ActiveLoop(None)]
            if not is_answer(kind, turn.said, self.STEPS_ASIDE_FOR):
                return [SlotSet(requested, None), ActionExecutionRejected(self.form_name())]
        return asyncio.run(FormValidationAction.run(self, turn.dispatcher, turn.tracker, turn.domain))


# --- the one table from the core's errors to what the customer reads ------------------------------------------


def _say(response: str) -> Callable[[ComandaError, Turn], None]:
    def reply(_error: ComandaError, turn: Turn) -> None:
        turn.say(response)

    return reply


# CheckoutProblem.reason → what the customer reads (and, for the last three, the question asked again)
CHECKOUT_PROBLEMS: Dict[str, str] = {
    R.NO_DELIVERY: "utter_no_delivery",
    R.POSTAL_CODE_NOT_SERVED: "utter_postal_code_not_served",
    R.TOO_FAR: "utter_too_far",
    R.BELOW_MINIMUM: "utter_below_minimum",
    R.NO_DELIVERY_PLACE: "utter_ask_delivery_postal_code",
    R.PAYMENT_NOT_OFFERED: "utter_invalid_payment_method",
    R.NAME_MISSING: "utter_ask_customer_name",
}


def utter_checkout_problem(problem: CheckoutProblem, turn: Turn) -> None:
    """Why the order cannot go as asked, with what the customer needs to change it."""
    store, params = turn.store, problem.params
    turn.say(
        CHECKOUT_PROBLEMS[problem.reason],
        store_name=store.name,
        address=store.address,
        postal_codes=join_words([c.postal_code for c in store.delivery_postal_codes], turn.language),
        postal_code=params.get("postal_code"),
        distance=str(params.get("distance_km")),  # a Decimal: the kept answer is JSON
        radius=format(Decimal(store.delivery_radius_km or 0).normalize(), "f"),
        minimum=format_money(params.get("minimum", 0)),
        missing=format_money(params.get("missing", 0)),
    )


def utter_invoice_problems(problems: List[Problem], turn: Turn) -> None:
    """Each problem's explanation (domain responses ``utter_cfdi_<code>``), with a button for a suggested name."""
    for problem in problems:
        turn.say(f"utter_cfdi_{problem.code}", **problem.params)
        if problem.code == "name_capital_regime" and problem.params.get("suggestion"):
            turn.say("utter_invoice_use_suggested_name", suggestion=problem.params["suggestion"])


def _something_failed(error: ComandaError, turn: Turn) -> None:
    log.error("%s: %s (%s)", turn.conversation_id, error.message, type(error).__name__)
    turn.say("utter_something_failed")


ERROR_REPLIES: Dict[Type[ComandaError], Callable[[Any, Turn], None]] = {
    EmptyCart: _say("utter_cart_empty"),
    OutOfStock: _say("utter_out_of_stock_now"),
    CheckoutProblem: utter_checkout_problem,
    StatusConflict: _say("utter_order_changed_meanwhile"),
    NotPayable: _say("utter_nothing_to_pay"),
    ProviderError: _say("utter_payment_unavailable"),
    InvoiceRefused: lambda error, turn: utter_invoice_problems(list(error.problems), turn),
    PacUnavailable: _say("utter_cfdi_pac_unavailable"),
    ComandaError: _something_failed,
}


def reply_to_error(error: ComandaError, turn: Turn) -> None:
    """Say what went wrong, by the nearest class of the error in ERROR_REPLIES."""
    reply = next(ERROR_REPLIES[cls] for cls in type(error).__mro__ if cls in ERROR_REPLIES)
    reply(error, turn)
