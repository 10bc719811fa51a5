"""The one way actions run (actions/base.py): one transaction per turn, off the event loop, the per-turn
context read once, the one error table, each step of a turn done once; and the bugs issue 12 named."""

import asyncio
import re
import threading
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import yaml
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import event, select, update

from actions.base import ERROR_REPLIES, ComandaAction, Turn
from actions.cart import ActionAddItems
from actions.checkout import ActionPlaceOrder, ValidateCheckoutForm
from actions.orders import ActionCancelOrder
from comanda import clock
from comanda import models as m
from comanda.db import get_engine, new_session, transaction
from comanda.errors import ComandaError, ConfigError, OutOfStock
from comanda.services import action_runs, orders
from comanda.services.action_runs import RunKey
from comanda.services.carts import Wanted, add_items
from comanda.services.checkout import CheckoutProblem
from comanda.services.orders import EmptyCart, StatusConflict
from tests.helpers.actions import ANA, CARD, CASH, answer, line, responses, run, said, tracker, user_event


class AddThenFail(ComandaAction):
    """Writes (a cart with a line), then fails the way the core fails."""

    def __init__(self, error: ComandaError) -> None:
        self.error = error
        self.threads: List[int] = []

    def name(self) -> str:
        return "action_test_add_then_fail"

    def act(self, turn: Turn) -> List[dict]:
        self.threads.append(threading.get_ident())
        add_items(turn.session, turn.open_cart(), [Wanted("CONCHA", 2)], turn.language)
        turn.say("utter_items_added", items="2 × Concha")
        raise self.error


def carts() -> list:
    with new_session() as session:
        return session.execute(select(m.Cart)).scalars().all()


def test_a_failed_turn_writes_nothing_says_nothing_of_its_work_and_answers_by_the_error_table(demo):
    action = AddThenFail(OutOfStock("centro", {"CONCHA": 0}))
    messages, events = run(action, tracker(said("add_items")))
    assert carts() == [] and events == []  # rolled back: no cart, no line
    assert responses(messages) == ["utter_out_of_stock_now"]  # not "utter_items_added": that work did not happen
    messages, _ = run(AddThenFail(ConfigError("the CSD is missing")), tracker(said("add_items")))
    assert responses(messages) == ["utter_something_failed"]  # any other ComandaError


def test_the_error_table_is_the_one_place_errors_become_messages():
    assert ERROR_REPLIES[ComandaError] and ERROR_REPLIES[EmptyCart] and ERROR_REPLIES[CheckoutProblem]
    assert StatusConflict in ERROR_REPLIES and OutOfStock in ERROR_REPLIES


def test_the_work_runs_off_the_event_loop(demo):
    action = AddThenFail(OutOfStock("centro", {"CONCHA": 0}))

    async def serve() -> int:
        await action.run(CollectingDispatcher(), tracker(said("x")), {})
        return threading.get_ident()

    loop_thread = asyncio.run(serve())
    assert action.threads and action.threads[0] != loop_thread


def test_a_turn_commits_once(demo):
    commits: List[bool] = []
    listener = lambda conn: commits.append(True)  # noqa: E731 - the database's COMMITs, savepoints aside
    event.listen(get_engine(), "commit", listener)
    try:
        run(ActionAddItems(), tracker(said("add_items", line("TACO-PASTOR", 2), line("COCA-600"))))
    finally:
        event.remove(get_engine(), "commit", listener)
    assert len(commits) == 1


# --- each step once -----------------------------------------------------------------------------------------


def confirmation(message_id: str = "wamid.confirm", extra_actions: int = 0):
    latest = said("affirm", text="sí", message_id=message_id)
    events = [user_event(latest, message_id)] + [{"event": "action", "name": "checkout_form"}] * extra_actions
    return tracker(latest, slots=CARD, events=events)


def test_checkout_retried_after_a_crash_places_one_order_and_gives_its_link_again(demo):
    """Issue 10 item 7: the action server died after placing the order and before answering; Rasa calls
    action_place_order again for the same step: the stored answer is replayed, nothing is done twice."""
    run(ActionAddItems(), tracker(said("add_items", line("COCA-600", 2))))
    first, events = run(ActionPlaceOrder(), confirmation())  # committed; imagine the answer never left
    again, events_again = run(ActionPlaceOrder(), confirmation())
    assert responses(first) == responses(again) == ["utter_pay_by_link"]
    assert again == first and events_again == events
    with new_session() as session:
        assert len(session.execute(select(m.Order)).scalars().all()) == 1
        assert len(session.execute(select(m.Payment)).scalars().all()) == 1


def test_the_turn_replayed_from_scratch_still_finds_the_order_it_placed(demo):
    """The whole turn again (another step position, or a Rasa that lost the tracker): the cart is already
    an order, so the confirmation gets that order's payment link, not "your cart is empty"."""
    run(ActionAddItems(), tracker(said("add_items", line("COCA-600", 2))))
    [first], _ = run(ActionPlaceOrder(), confirmation())
    [again], _ = run(ActionPlaceOrder(), confirmation(extra_actions=1))
    assert again["response"] == "utter_pay_by_link" and again["url"] == first["url"]
    with new_session() as session:
        assert len(session.execute(select(m.Order)).scalars().all()) == 1


def test_another_message_is_another_turn(demo):
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    latest = said("add_items", line("CONCHA"), message_id="wamid.2")
    run(ActionAddItems(), tracker(latest, events=[user_event(latest, "wamid.2")]))
    run(ActionAddItems(), tracker(latest, events=[user_event(latest, "wamid.2")]))  # a retry of wamid.2
    latest = said("add_items", line("CONCHA"), message_id="wamid.3")
    run(ActionAddItems(), tracker(latest, events=[user_event(latest, "wamid.3")]))
    with new_session() as session:
        assert session.execute(select(m.CartLine.quantity)).scalar_one() == 3


def test_a_step_recorded_twice_keeps_the_first_answer(demo):
    key = RunKey(ANA, "wamid.1", "action_place_order", 0)
    with transaction() as session:
        assert action_runs.record(session, key, {"events": [], "responses": [{"text": "first"}]})
    with transaction() as session:
        assert not action_runs.record(session, key, {"events": [], "responses": [{"text": "second"}]})
    with new_session() as session:
        assert action_runs.stored(session, key) == {"events": [], "responses": [{"text": "first"}]}


# --- the bugs issue 12 named ------------------------------------------------------------------------------------


@contextmanager
def lost_writes() -> Iterator[List[str]]:
    """Statements that changed rows in a transaction that was then rolled back instead of committed:
    writes silently lost (savepoints rolled back on purpose are not counted)."""
    written: Dict[int, List[str]] = {}
    lost: List[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            written.setdefault(id(conn), []).append(statement)

    def on_commit(conn):
        written.pop(id(conn), None)

    def on_rollback(conn):
        lost.extend(written.pop(id(conn), []))

    engine = get_engine()
    listeners = [("before_cursor_execute", on_execute), ("commit", on_commit), ("rollback", on_rollback)]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield lost
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


def test_the_checkout_form_never_writes_where_nothing_commits(demo):
    """Issue 12: open_cart (which leaves an idle cart behind and creates a new one) ran inside read-only
    sessions in the checkout form, so those writes were silently rolled back."""
    run(ActionAddItems(), tracker(said("add_items", line("CAFE-GRANO-250"), line("CONCHA", 2))))
    with transaction() as session:
        session.execute(update(m.Cart).values(updated_at=clock.now() - timedelta(hours=30)))  # idle
    with lost_writes() as lost:
        answer(ValidateCheckoutForm(), "fulfilment", "a domicilio")
        answer(ValidateCheckoutForm(), "delivery_postal_code", "06010", {"fulfilment": "delivery"})
    assert lost == []


@contextmanager
def cart_reads() -> Iterator[List[str]]:
    found: List[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and re.search(r"\bFROM carts\b", statement):
            found.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_checkout_form_reads_the_cart_once_per_turn(demo):
    """Issue 12: the form loaded the cart 3-4 times per turn (required_slots three times, the validator)."""
    run(ActionAddItems(), tracker(said("add_items", line("CAFE-GRANO-250"), line("CONCHA", 2))))
    with cart_reads() as reads:
        filled, _ = answer(ValidateCheckoutForm(), "delivery_postal_code", "06010", {"fulfilment": "delivery"})
    assert filled == {"delivery_postal_code": "06010"} and len(reads) == 1


def test_cancelling_while_a_payment_moves_the_order_decides_again(demo):
    """Issue 12: ActionCancelOrder did not handle StatusConflict: a payment webhook that moves the order at
    the same moment made the action fail and the customer hear nothing. Now it decides on the order as it
    is: paid, so a person takes the cancellation."""
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    run(ActionPlaceOrder(), tracker(said("affirm"), slots=CARD))
    with new_session() as session:
        order_id = session.execute(select(m.Order.id)).scalar_one()
    paid_meanwhile = []

    def webhook_first(conn, cursor, statement, parameters, context, executemany):
        if not paid_meanwhile and statement.lstrip().upper().startswith("UPDATE ORDERS SET STATUS"):
            paid_meanwhile.append(True)
            with transaction() as other:  # another connection: the payment webhook
                order = other.get(m.Order, order_id)
                order.payment_status = "paid"
                orders.enter_queue(other, order, "payment:sandbox")

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", webhook_first)
    try:
        messages, events = run(ActionCancelOrder(), tracker(said("cancel_order", text="cancela mi pedido")))
    finally:
        event.remove(engine, "before_cursor_execute", webhook_first)
    assert paid_meanwhile and responses(messages) == ["utter_cannot_cancel"]
    with new_session() as session:
        assert session.get(m.Order, order_id).status == "received"
        [ticket] = session.execute(select(m.HandoffTicket)).scalars().all()
        assert ticket.reason == "cancellation"


def test_a_cash_order_confirmed_twice_is_one_order(demo):
    run(ActionAddItems(), tracker(said("add_items", line("CONCHA"))))
    latest = said("affirm", message_id="wamid.cash")
    trk = tracker(latest, slots=CASH, events=[user_event(latest, "wamid.cash")])
    [first], events = run(ActionPlaceOrder(), trk)
    [again], _ = run(ActionPlaceOrder(), tracker(latest, slots=CASH, events=[user_event(latest, "wamid.cash")]))
    assert first == again and first["order"] == "C-001" and SlotSet("order_confirmed", None) in events


@pytest.mark.parametrize("error", [EmptyCart("empty"), StatusConflict("moved")])
def test_known_errors_reach_the_customer_in_their_language(demo, error):
    messages, _ = run(AddThenFail(error), tracker(said("x"), slots={"language": "en"}))
    assert len(messages) == 1 and messages[0]["language"] == "en"


def test_the_action_server_serves_every_action_of_the_domain():
    """What rasa-sdk registers at start-up: every concrete Action of the package (the bases are abstract)."""
    import importlib
    import inspect
    import pkgutil

    from rasa_sdk import Action

    import actions

    for module in pkgutil.iter_modules(actions.__path__):
        importlib.import_module(f"actions.{module.name}")
    served, stack = set(), [Action]
    while stack:
        for cls in stack.pop().__subclasses__():
            stack.append(cls)
            if cls.__module__.startswith("actions.") and not inspect.isabstract(cls):
                served.add(cls().name())
    declared = set()
    for path in (Path(__file__).resolve().parents[2] / "domain").glob("*.yml"):
        declared |= set((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("actions") or [])
    assert declared == served
