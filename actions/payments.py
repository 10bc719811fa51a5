"""Paying in the chat: the link or the SPEI details once the order is placed, a new link on request, and
telling the customer what happened to their order when the back office announces it."""

from __future__ import annotations

from typing import List
from zoneinfo import ZoneInfo

from rasa_sdk.events import ConversationPaused, EventType

from actions.base import ComandaAction, Turn
from actions.returns import announce_return, say_credit_restored
from comanda import models as m
from comanda.db import savepoint
from comanda.enums import NotificationEvent, OrderStatus
from comanda.errors import ComandaError, OutOfStock
from comanda.money import format_money
from comanda.services import handoff, orders, payments, returns
from comanda.services.announcements import announcement
from comanda.services.payments import PaymentInstructions
from integrations.payments import payment_provider


def utter_payment(turn: Turn, instructions: PaymentInstructions, timezone: str) -> None:
    """The link as a WhatsApp URL button (text with the link elsewhere), or the SPEI details."""
    until = instructions.expires_at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")
    total = format_money(instructions.amount)
    if instructions.spei is not None:
        spei = instructions.spei
        turn.say(
            "utter_pay_by_spei",
            total=total,
            until=until,
            clabe=spei.clabe,
            bank=spei.bank,
            beneficiary=spei.beneficiary,
            reference=spei.reference,
        )
    else:
        turn.say("utter_pay_by_link", total=total, until=until, url=instructions.link_url)


def start_payment(turn: Turn, order: m.Order, fresh_link: bool = False) -> None:
    """Open the order's payment (the open one again, if it has one; a new link with ``fresh_link``). It is
    a part of the turn of its own: a provider that fails leaves the order placed and held, and the
    customer can ask for the link again."""
    try:
        with savepoint(turn.session):
            provider = payment_provider()
            instructions = (
                payments.new_link(turn.session, order.id, provider)
                if fresh_link
                else payments.start_payment(turn.session, order, provider)
            )
    except OutOfStock:
        turn.say("utter_payment_stock_gone")
        return
    except ComandaError:
        turn.say("utter_payment_unavailable")
        return
    utter_payment(turn, instructions, turn.session.get(m.Business, order.business_id).timezone)


class ActionNewPaymentLink(ComandaAction):
    """ "Mándame el link otra vez": a fresh link (or SPEI details) for the order still to pay."""

    def name(self) -> str:
        return "action_new_payment_link"

    def act(self, turn: Turn) -> List[EventType]:
        order = orders.payable_order(turn.session, turn.conversation_id, turn.entity("order_id"))
        if order is None:
            return turn.say("utter_nothing_to_pay")
        start_payment(turn, order, fresh_link=True)
        return []


class ActionAnnounceOrderUpdate(ComandaAction):
    """What the back office announced (EXTERNAL_order_update), said in the customer's language; only the
    conversation's own orders are spoken of. A flagged payment has a person looking: the bot waits."""

    def name(self) -> str:
        return "action_announce_order_update"

    def act(self, turn: Turn) -> List[EventType]:
        event = turn.entity("event")
        if event == NotificationEvent.RETURN_EXCHANGE_DUE:
            announce_exchange_due(turn, turn.entity("order_id"))
            return []
        if str(event).startswith("return_"):
            announce_return(turn, turn.entity("order_id"), str(event))
            return []
        news = announcement(turn.session, turn.conversation_id, turn.entity("order_id"), event)
        if news is None:
            return []
        turn.say(
            f"utter_order_{news.news}",
            order=news.order,
            total=format_money(news.total),
            address=news.address,
            order_id=news.order_id,
        )
        if news.news in (NotificationEvent.EXPIRED, "cancelled_by_store"):
            say_credit_restored(turn, turn.session.get(m.Order, news.order_id))
        if news.news == NotificationEvent.FLAGGED and handoff.has_open_ticket(turn.session, turn.conversation_id):
            return [ConversationPaused()]
        return []


def announce_exchange_due(turn: Turn, order_id: object) -> None:
    """An exchange's replacement costs more than what came back: what it is, and the link (or SPEI details) for
    the difference, opened like any order's."""
    order = orders.own_order(turn.session, turn.conversation_id, order_id)
    returned = returns.exchanged_for(turn.session, order.id) if order is not None else None
    if order is None or returned is None or order.status != OrderStatus.PENDING_PAYMENT:
        return
    turn.say(
        "utter_order_return_exchange_due",
        return_id=returned.id,
        items=", ".join(
            f"{line.quantity} × {orders.line_name(turn.session, line, turn.language)}" for line in order.lines
        ),
        difference=format_money(returns.difference(returned)),
    )
    start_payment(turn, order)
