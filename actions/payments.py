"""Paying in the chat: the link or the SPEI details once the order is placed, a new link on request,
and telling the customer what happened to their order when the back office announces it."""

from __future__ import annotations

from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.orders import ticket_of
from actions.replies import entity_values
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.errors import ComandaError, OutOfStock
from comanda.money import format_money
from comanda.services import orders, payments
from comanda.services.payments import PaymentInstructions
from integrations.payments import payment_provider

# event → response; "ready" depends on how the order is fulfilled
ANNOUNCEMENTS = {
    "paid": "utter_order_paid",
    "paid_twice": "utter_order_paid_twice",
    "declined": "utter_payment_declined",
    "expired": "utter_order_expired",
    "flagged": "utter_payment_flagged",
    "preparing": "utter_order_preparing",
    "delivered": "utter_order_delivered",
    "picked_up": "utter_order_picked_up",
    "cancelled": "utter_order_cancelled_by_store",
}


def utter_payment(dispatcher: CollectingDispatcher, instructions: PaymentInstructions, timezone: str) -> None:
    """The link as a WhatsApp URL button (text with the link elsewhere), or the SPEI details."""
    until = instructions.expires_at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")
    total = format_money(instructions.amount)
    if instructions.spei is not None:
        spei = instructions.spei
        dispatcher.utter_message(
            response="utter_pay_by_spei",
            total=total,
            until=until,
            clabe=spei.clabe,
            bank=spei.bank,
            beneficiary=spei.beneficiary,
            reference=spei.reference,
        )
    else:
        dispatcher.utter_message(response="utter_pay_by_link", total=total, until=until, url=instructions.link_url)


def start_payment(dispatcher: CollectingDispatcher, order_id: int, fresh_link: bool = False) -> None:
    """Open the order's payment in its own transaction (the order is placed already): a provider
    that fails leaves the order held, and the customer can ask for the link again."""
    try:
        with transaction() as session:
            order = orders.get_order(session, order_id)
            provider = payment_provider()
            instructions = (
                payments.new_link(session, order.id, provider)
                if fresh_link
                else payments.start_payment(session, order, provider)
            )
            timezone = session.get(m.Business, order.business_id).timezone
    except OutOfStock:
        dispatcher.utter_message(response="utter_payment_stock_gone")
        return
    except ComandaError:
        dispatcher.utter_message(response="utter_payment_unavailable")
        return
    utter_payment(dispatcher, instructions, timezone)


def own_order(session: Any, conversation_id: str, order_id: Any) -> Optional[m.Order]:
    """The order an ``order_id`` entity names (a number, or its digits as text), if it is the
    conversation's own; None for anything else, whoever's it is."""
    if not str(order_id if order_id is not None else "").isdigit():
        return None
    order = session.get(m.Order, int(order_id))
    return order if order is not None and order.conversation_id == conversation_id else None


def order_awaiting_payment(session: Any, conversation_id: str, order_id: Any = None) -> Optional[m.Order]:
    """The conversation's order that a new link would pay: the one named (if it is the customer's
    own), else the latest unpaid one waiting or expired."""
    order = (
        own_order(session, conversation_id, order_id)
        if order_id is not None
        else orders.latest_order(session, conversation_id)
    )
    if order is not None and order.payment_status == "unpaid" and order.status in ("pending_payment", "expired"):
        return order
    return None


class ActionNewPaymentLink(Action):
    """ "Mándame el link otra vez": a fresh link (or SPEI details) for the order still to pay."""

    def name(self) -> str:
        return "action_new_payment_link"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        wanted = next(iter(entity_values(tracker.latest_message, "order_id")), None)
        with new_session() as session:
            order = order_awaiting_payment(session, tracker.sender_id, wanted)
            order_id = order.id if order is not None else None
        if order_id is None:
            dispatcher.utter_message(response="utter_nothing_to_pay")
            return []
        start_payment(dispatcher, order_id, fresh_link=True)
        return []


class ActionAnnounceOrderUpdate(Action):
    """What the back office announced (EXTERNAL_order_update), said in the customer's language.

    Only the conversation's own orders are spoken of, whatever order id the event carries."""

    def name(self) -> str:
        return "action_announce_order_update"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        event = next(iter(entity_values(tracker.latest_message, "event")), None)
        order_id = next(iter(entity_values(tracker.latest_message, "order_id")), None)
        with new_session() as session:
            order = own_order(session, tracker.sender_id, order_id)
            if order is None:
                return []
            store = session.get(m.Store, order.store_id)
            response = ANNOUNCEMENTS.get(event)
            if event == "ready":
                response = (
                    "utter_order_ready_delivery" if order.fulfilment == "delivery" else "utter_order_ready_pickup"
                )
            if response is None:
                return []
            dispatcher.utter_message(
                response=response,
                ticket=ticket_of(order),
                total=format_money(order.total),
                address=store.address,
                order_id=order.id,
            )
        return []
