"""Orders after checkout in the chat: where is my order, and cancelling it."""

from __future__ import annotations

from typing import List

from rasa_sdk.events import EventType

from actions.base import ComandaAction, Turn
from actions.returns import say_credit_restored, say_return_statuses
from actions.support import hand_over
from comanda.enums import HandoffReason
from comanda.i18n import t
from comanda.money import format_money
from comanda.services import orders


class ActionOrderStatus(ComandaAction):
    def name(self) -> str:
        return "action_order_status"

    def act(self, turn: Turn) -> List[EventType]:
        order = orders.latest_order(turn.session, turn.conversation_id)
        if order is None:
            return [] if say_return_statuses(turn) else turn.say("utter_no_orders")
        turn.say(
            "utter_order_status",
            order=orders.order_number(order),
            total=format_money(order.total),
            status=t(f"order_status.{order.status}", turn.language),
        )
        say_return_statuses(turn)  # "¿ya me devolvieron mi dinero?": returns are asked about here too
        return []


class ActionCancelOrder(ComandaAction):
    """Cancels the latest order under way if the bot may (deciding again if a payment or staff moved it at
    that moment); otherwise a person gets a ticket and the bot waits for them."""

    def name(self) -> str:
        return "action_cancel_order"

    def act(self, turn: Turn) -> List[EventType]:
        order = orders.latest_order(turn.session, turn.conversation_id, open_only=True)
        if order is None:
            return turn.say("utter_no_orders")
        number = orders.order_number(order)
        try:
            orders.cancel_order(turn.session, order, actor=f"conversation:{turn.conversation_id}")
        except orders.CannotCancel:
            turn.say("utter_cannot_cancel", order=number, status=t(f"order_status.{order.status}", turn.language))
            return hand_over(turn, HandoffReason.CANCELLATION, f"cancel order {number}")
        turn.say("utter_order_cancelled", order=number)
        say_credit_restored(turn, order)
        return []
