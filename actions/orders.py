"""Orders after checkout in the chat: where is my order, and cancelling it."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.context import language
from comanda import models as m
from comanda.db import transaction
from comanda.i18n import t
from comanda.money import format_money
from comanda.services import orders
from comanda.services.handoff import open_ticket


def ticket_of(order: m.Order) -> str:
    """The ticket the customer knows the order by; before it has one, its number."""
    return order.ticket_code or f"#{order.id}"


class ActionOrderStatus(Action):
    def name(self) -> str:
        return "action_order_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        lang = language(tracker)
        with transaction() as session:
            order = orders.latest_order(session, tracker.sender_id)
            if order is None:
                dispatcher.utter_message(response="utter_no_orders")
                return []
            dispatcher.utter_message(
                response="utter_order_status",
                ticket=ticket_of(order),
                total=format_money(order.total),
                status=t(f"order_status.{order.status}", lang),
            )
        return []


class ActionCancelOrder(Action):
    """Cancels the latest order under way if the bot may; otherwise a person gets a ticket."""

    def name(self) -> str:
        return "action_cancel_order"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        lang = language(tracker)
        with transaction() as session:
            order = orders.latest_order(session, tracker.sender_id, open_only=True)
            if order is None:
                dispatcher.utter_message(response="utter_no_orders")
                return []
            try:
                orders.cancel_order(session, order, actor=f"conversation:{tracker.sender_id}")
            except orders.CannotCancel:
                open_ticket(session, tracker.sender_id, "cancellation", summary=f"cancel order {ticket_of(order)}")
                dispatcher.utter_message(
                    response="utter_cannot_cancel",
                    ticket=ticket_of(order),
                    status=t(f"order_status.{order.status}", lang),
                )
                return []
            dispatcher.utter_message(response="utter_order_cancelled", ticket=ticket_of(order))
        return []
