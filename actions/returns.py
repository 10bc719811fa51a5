"""Returns in the chat: what comes back (the customer's own orders at this store), how many, why, in what
condition when the product's policy asks, and refund / store credit / exchange; then the return is registered by
comanda.services.returns, which approves it at once when the business's policy allows. Later steps (approved,
rejected, received, refunded, credited, exchanged, the credit note) are announced here too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import select

from actions.base import ComandaAction, ComandaFormValidation, Turn
from comanda import models as m
from comanda.db import savepoint
from comanda.enums import (
    Fulfilment,
    ItemCondition,
    NotificationEvent,
    OrderPaymentStatus,
    PaymentMethod,
    ReturnOutcome,
    ReturnProblem,
    ReturnReason,
    ReturnStatus,
)
from comanda.i18n import t
from comanda.money import format_money
from comanda.services import orders, returns, store_credit
from comanda.services.answers import AnswerKind, read_choice
from comanda.services.cfdi.links import invoice_document_messages
from comanda.services.payments.common import MANUAL_PROVIDERS
from comanda.services.products import fold
from comanda.services.stock import available_by_item

FORM = "return_form"
SLOTS = (
    "return_line",
    "return_quantity",
    "return_reason",
    "return_reason_text",
    "return_condition",
    "return_outcome",
    "return_replacement",
    "return_confirmed",
)
OUTCOME_WORDS = {
    ReturnOutcome.REFUND: ("reembolso", "reembolsen", "mi dinero", "refund", "money back"),
    ReturnOutcome.CREDIT: ("saldo", "credito", "credit"),
    ReturnOutcome.EXCHANGE: ("cambio", "cambiar", "otra talla", "otro color", "exchange", "swap"),
}


def clear_return() -> List[EventType]:
    return [SlotSet(slot, None) for slot in SLOTS]


def candidates(turn: Turn) -> List[returns.Returnable]:
    return returns.returnable_lines(turn.session, turn.conversation.customer_id, turn.ref.store_id)


def chosen(turn: Turn, value: Any = None) -> Optional[returns.Returnable]:
    wanted = str(value if value is not None else turn.slot("return_line") or "")
    return next((c for c in candidates(turn) if str(c.order_line_id) == wanted), None)


def product_of(turn: Turn, line: returns.Returnable) -> m.Product:
    return turn.session.get(m.Product, turn.session.get(m.OrderLine, line.order_line_id).product_id)


def item_name(turn: Turn, line: returns.Returnable) -> str:
    """The line as the customer reads it: the product's name in their language, with its variant."""
    sold = turn.session.get(m.OrderLine, line.order_line_id)
    product = turn.session.get(m.Product, sold.product_id)
    variant = turn.session.get(m.ProductVariant, sold.variant_id) if sold.variant_id else None
    if variant is None:
        return product.name(turn.language)
    labels = [_axis_label(product, axis, value, turn.language) for axis, value in variant.attributes.items()]
    return f"{product.name(turn.language)} ({', '.join(labels)})"


def replacements(turn: Turn, line: returns.Returnable) -> List[Dict[str, str]]:
    """What an exchange may take instead, in stock here for the units coming back: the product's other variants,
    then other returnable products, each with its difference in price (paid, refunded, or none)."""
    product = product_of(turn, line)
    sold = turn.session.get(m.OrderLine, line.order_line_id)
    available = available_by_item(turn.session, turn.ref.store_id)
    lang, units = turn.language, int(turn.slot("return_quantity") or 1)
    found: List[Dict[str, str]] = []
    for variant in product.variants:
        if variant.active and variant.id != sold.variant_id and available.get(variant.stock_item_id, 0) >= units:
            labels = [_axis_label(product, axis, value, lang) for axis, value in variant.attributes.items()]
            found.append(_option(turn, variant.sku, f"{product.name(lang)} {' '.join(labels)}", product, line, units))
    others = turn.session.execute(
        select(m.Product)
        .where(
            m.Product.business_id == product.business_id,
            m.Product.returnable.is_(True),
            m.Product.active.is_(True),
            m.Product.id != product.id,
            m.Product.stock_item_id.is_not(None),
        )
        .order_by(m.Product.id)
    ).scalars()
    for other in others:
        if available.get(other.stock_item_id, 0) >= units:
            found.append(_option(turn, other.sku, other.name(lang), other, line, units))
    return found[:10]  # a WhatsApp list's rows


def _option(
    turn: Turn, sku: str, title: str, product: m.Product, line: returns.Returnable, units: int
) -> Dict[str, str]:
    more = (product.price - line.unit_amount) * units
    key = "more" if more > 0 else "less" if more < 0 else "same"
    return {
        "sku": sku,
        "title": title,
        "difference": t(f"return.replacement_{key}", turn.language, difference=format_money(abs(more))),
    }


def _axis_label(product: m.Product, axis: str, value: str, lang: str) -> str:
    for option in (product.variant_axes or {}).get(axis, []):
        if option.get("id") == value:
            return str(option.get(lang) or value)
    return value


def money_next(turn: Turn, returned: m.Return, now: bool = False) -> str:
    """What happens to the money once the item is back (or now, where the business refunds on approval); for an
    exchange, the replacement put aside and how a difference in price is settled."""
    amount, lang = format_money(returned.refund_amount), turn.language
    payment = returns.money_payment(turn.session, returned.order_id)
    method = payment.method if payment is not None else PaymentMethod.CARD
    if returned.outcome == ReturnOutcome.EXCHANGE:
        product = turn.session.get(m.Product, returned.replacement_product_id)
        more = returns.difference(returned)
        key = "exchange" if more == 0 else "exchange_refund" if more < 0 else "exchange_link"
        if more > 0 and method == PaymentMethod.CASH:
            key = "exchange_cash"
        return t(
            f"return.money_next.{key}",
            lang,
            replacement=product.name(lang),
            difference=format_money(abs(more)),
            method=t(f"return.method.{method}", lang),
        )
    if returned.outcome == ReturnOutcome.CREDIT:
        return t("return.money_next.credit_now" if now else "return.money_next.credit", lang, amount=amount)
    if payment is not None and payment.provider in MANUAL_PROVIDERS and method == PaymentMethod.CASH:
        return t("return.money_next.manual", lang, amount=amount)
    key = "return.money_next.refund_now" if now else "return.money_next.refund"
    return t(key, lang, amount=amount, method=t(f"return.method.{method}", lang))


def say_problem(turn: Turn, refused: returns.ReturnRefused) -> None:
    """Why the return cannot go as asked, plainly, in the customer's language."""
    params = refused.params
    item = params.get("description") or ""
    days = turn.store.business.return_window_days
    if refused.problem == ReturnProblem.NOT_RETURNABLE:
        turn.say("utter_return_not_returnable", item=item)
    elif refused.problem == ReturnProblem.WINDOW_PASSED:
        turn.say("utter_return_window_passed", item=item, last_day=params.get("last_day"), days=days)
    elif refused.problem == ReturnProblem.EXCEEDS_SALE:
        turn.say("utter_return_exceeds_sale", item=item, sold=params.get("sold"), left=params.get("left"))
    elif refused.problem == ReturnProblem.REPLACEMENT_OUT_OF_STOCK:
        turn.say("utter_return_replacement_out_of_stock")
    elif refused.problem in (ReturnProblem.NOT_YOURS, ReturnProblem.NOT_HANDED_OVER):
        turn.say("utter_return_nothing", store_name=turn.store.name, days=days)
    else:
        turn.say("utter_return_refused")


class ActionStartReturn(ComandaAction):
    """Before the form: what can come back (nothing: say why plainly), and what the message already said
    ("la taza", "C-042", "no la usé", "llegó rota")."""

    def name(self) -> str:
        return "action_start_return"

    def act(self, turn: Turn) -> List[EventType]:
        found = candidates(turn)
        ticket = returns.named_ticket(turn.text)
        if ticket:
            order = returns.find_order(turn.session, turn.conversation.customer_id, turn.ref.store_id, ticket)
            found = [c for c in found if order is not None and c.order_id == order.id]
        named = returns.mentioned(turn.session, turn.text, found)
        if not found:
            self.explain(turn)
            return [SlotSet("return_possible", False)]
        events = [SlotSet("return_possible", True), *clear_return()]
        line = named[0] if len(named) == 1 else found[0] if len(found) == 1 else None
        if line is not None:
            events.append(SlotSet("return_line", str(line.order_line_id)))
            if line.units_left == 1:
                events.append(SlotSet("return_quantity", "1"))
        condition = returns.read_condition(turn.text)
        if condition is not None:
            events.append(SlotSet("return_condition", condition))
        reason = returns.read_reason(turn.text)
        if reason is not None:
            events += [SlotSet("return_reason", reason), SlotSet("return_reason_text", turn.text[:500])]
        return events

    @staticmethod
    def explain(turn: Turn) -> None:
        """The latest handed-over order's first line that cannot come back says why (food, the window)."""
        latest = turn.session.execute(
            select(m.Order)
            .where(
                m.Order.customer_id == turn.conversation.customer_id,
                m.Order.store_id == turn.ref.store_id,
                m.Order.status.in_(returns.HANDED_OVER),
            )
            .order_by(m.Order.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        found = [returns.line_problem(turn.session, latest, line) for line in latest.lines] if latest else []
        problems = [p for p in found if p is not None]
        named = [p for p in problems if fold(str(p.params.get("description"))) in fold(turn.text)]
        if named or problems:
            say_problem(turn, (named or problems)[0])
        else:
            turn.say("utter_return_nothing", store_name=turn.store.name, days=turn.store.business.return_window_days)


class ValidateReturnForm(ComandaFormValidation):
    STEPS_ASIDE_FOR = frozenset({"human_handoff", "faq", "cancel_order"})  # data/rules/returns.yml
    STOPPED = "utter_return_stopped"
    ANSWERS = {slot: AnswerKind.CHOICE for slot in SLOTS if slot not in ("return_confirmed", "return_reason_text")}

    def name(self) -> str:
        return "validate_return_form"

    async def required_slots(
        self, domain_slots: List[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[str]:
        """Only what this return needs: the condition where the product's policy asks one, the replacement
        for an exchange."""
        line = chosen(self.turn, tracker.get_slot("return_line")) if tracker.get_slot("return_line") else None
        needed = list(domain_slots)
        if line is not None and line.condition == ItemCondition.ANY:
            needed.remove("return_condition")
        if tracker.get_slot("return_outcome") != ReturnOutcome.EXCHANGE:
            needed.remove("return_replacement")
        return needed

    def validate_return_line(self, value: Any, dispatcher: Any, tracker: Tracker, domain: DomainDict) -> Dict[str, Any]:
        found = candidates(self.turn)
        line = chosen(self.turn, value)
        if line is None:
            named = returns.mentioned(self.turn.session, str(value), found)
            options = [(str(c.order_line_id), c.description, c.order) for c in found]
            picked = read_choice(str(value), options)
            line = named[0] if len(named) == 1 else chosen(self.turn, picked) if picked else None
        if line is None:
            return {"return_line": None}
        filled: Dict[str, Any] = {"return_line": str(line.order_line_id)}
        if line.units_left == 1:
            filled["return_quantity"] = "1"
        return filled

    def validate_return_quantity(
        self, value: Any, dispatcher: Any, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        line = chosen(self.turn)
        digits = "".join(ch for ch in str(value) if ch.isdigit())
        if line is None or not digits:
            return {"return_quantity": None}
        if not 0 < int(digits) <= line.units_left:
            sold = self.turn.session.get(m.OrderLine, line.order_line_id).quantity
            self.turn.say("utter_return_exceeds_sale", item=line.description, sold=sold, left=line.units_left)
            return {"return_quantity": None}
        return {"return_quantity": digits}

    def validate_return_reason(
        self, value: Any, dispatcher: Any, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        code = ReturnReason.parse(value)
        if code is not None:
            return {"return_reason": str(code)}
        text = str(value)
        return {"return_reason": returns.read_reason(text) or ReturnReason.OTHER, "return_reason_text": text[:500]}

    def validate_return_condition(
        self, value: Any, dispatcher: Any, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        code = ItemCondition.parse(value) or returns.read_condition(str(value))
        return {"return_condition": str(code) if code else None}

    def validate_return_outcome(
        self, value: Any, dispatcher: Any, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        outcome = ReturnOutcome.parse(value)
        if outcome is None:
            folded = fold(str(value))
            outcome = next((o for o, words in OUTCOME_WORDS.items() if any(w in folded for w in words)), None)
        if outcome == ReturnOutcome.EXCHANGE:
            line = chosen(self.turn)
            if line is None or not replacements(self.turn, line):
                self.turn.say("utter_return_no_replacement")
                return {"return_outcome": None}
        return {"return_outcome": str(outcome) if outcome else None}

    def validate_return_replacement(
        self, value: Any, dispatcher: Any, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        line = chosen(self.turn)
        options = replacements(self.turn, line) if line is not None else []
        skus = {o["sku"] for o in options}
        picked = (
            str(value) if str(value) in skus else read_choice(str(value), [(o["sku"], o["title"], "") for o in options])
        )
        return {"return_replacement": picked}


class ActionAskReturnLine(ComandaAction):
    def name(self) -> str:
        return "action_ask_return_line"

    def act(self, turn: Turn) -> List[EventType]:
        return turn.say(
            "utter_ask_return_line",
            buttons=[
                {
                    "title": item_name(turn, c)[:24],
                    "description": t(
                        "return.option",
                        turn.language,
                        order=c.order,
                        left=c.units_left,
                        amount=format_money(c.unit_amount),
                    ),
                    "payload": f'/inform{{"return_line":"{c.order_line_id}"}}',
                }
                for c in candidates(turn)[:10]
            ],
        )


class ActionAskReturnQuantity(ComandaAction):
    def name(self) -> str:
        return "action_ask_return_quantity"

    def act(self, turn: Turn) -> List[EventType]:
        line = chosen(turn)
        if line is None:
            return [SlotSet("return_line", None)]
        return turn.say("utter_ask_return_quantity", item=item_name(turn, line), left=line.units_left)


class ActionAskReturnOutcome(ComandaAction):
    def name(self) -> str:
        return "action_ask_return_outcome"

    def act(self, turn: Turn) -> List[EventType]:
        line = chosen(turn)
        if line is None:
            return [SlotSet("return_line", None)]
        amount = format_money(line.unit_amount * int(turn.slot("return_quantity") or 1))
        outcomes = [ReturnOutcome.REFUND, ReturnOutcome.CREDIT]
        if replacements(turn, line):
            outcomes.append(ReturnOutcome.EXCHANGE)
        buttons = [
            {"title": t(f"return.outcome_button.{o}", turn.language), "payload": f'/inform{{"return_outcome":"{o}"}}'}
            for o in outcomes
        ]
        return turn.say("utter_ask_return_outcome", amount=amount, buttons=buttons)


class ActionAskReturnReplacement(ComandaAction):
    def name(self) -> str:
        return "action_ask_return_replacement"

    def act(self, turn: Turn) -> List[EventType]:
        line = chosen(turn)
        options = replacements(turn, line) if line is not None else []
        return turn.say(
            "utter_ask_return_replacement",
            buttons=[
                {
                    "title": o["title"][:24],
                    "description": o["difference"],
                    "payload": f'/inform{{"return_replacement":"{o["sku"]}"}}',
                }
                for o in options
            ],
        )


def outcome_text(turn: Turn, outcome: str, amount: Decimal, replacement: Optional[str]) -> str:
    """What the customer gets, as the summary says it; an exchange with its difference in price."""
    title = replacement or ""
    line = chosen(turn)
    option = None
    if replacement and line is not None:
        option = next((o for o in replacements(turn, line) if o["sku"] == replacement), None)
        title = f"{option['title']} ({option['difference']})" if option else replacement
    return t(f"return.outcome.{outcome}", turn.language, amount=format_money(amount), replacement=title)


class ActionAskReturnConfirmed(ComandaAction):
    def name(self) -> str:
        return "action_ask_return_confirmed"

    def act(self, turn: Turn) -> List[EventType]:
        line = chosen(turn)
        if line is None:
            return [SlotSet("return_line", None)]
        units = int(turn.slot("return_quantity") or 1)
        return turn.say(
            "utter_ask_return_confirmed",
            items=f"{units} × {item_name(turn, line)}",
            order=line.order,
            reason=t(f"return.reason.{turn.slot('return_reason') or 'other'}", turn.language),
            outcome=outcome_text(
                turn, turn.slot("return_outcome"), line.unit_amount * units, turn.slot("return_replacement")
            ),
        )


class ActionSubmitReturn(ComandaAction):
    """After the form: register the return; approved at once (what to do next) or waiting for a person."""

    def name(self) -> str:
        return "action_submit_return"

    def act(self, turn: Turn) -> List[EventType]:
        if turn.slot("return_confirmed") is None:  # the customer left the form ("cancela"): it said so
            return clear_return()
        if not turn.slot("return_confirmed"):
            turn.say("utter_return_changed_mind")
            return clear_return()
        line = chosen(turn)
        if line is None:
            turn.say("utter_return_refused")
            return clear_return()
        wanted = returns.ReturnRequest(
            order_id=line.order_id,
            lines={line.order_line_id: int(turn.slot("return_quantity") or 1)},
            outcome=turn.slot("return_outcome") or ReturnOutcome.REFUND,
            reason_code=turn.slot("return_reason") or ReturnReason.OTHER,
            reason=turn.slot("return_reason_text"),
            declared_condition=turn.slot("return_condition"),
            replacement_sku=turn.slot("return_replacement"),
        )
        try:
            with savepoint(turn.session):
                returned = returns.request_return(
                    turn.session,
                    turn.conversation.customer_id,
                    turn.ref.store_id,
                    wanted,
                    f"conversation:{turn.conversation_id}",
                    turn.conversation_id,
                )
        except returns.ReturnRefused as refused:
            say_problem(turn, refused)
            return clear_return()
        if returned.status == ReturnStatus.APPROVED:
            order = turn.session.get(m.Order, returned.order_id)
            now = returns.money_due(returned, turn.store.business)
            response = (
                "utter_return_approved_delivery"
                if order.fulfilment == Fulfilment.DELIVERY
                else "utter_return_approved_pickup"
            )
            turn.say(
                response,
                return_id=returned.id,
                order=orders.order_number(order),
                address=turn.store.address,
                money_next=money_next(turn, returned, now),
            )
        else:
            turn.say("utter_return_waiting", return_id=returned.id)
        return clear_return()


class ActionStopReturn(ComandaAction):
    def name(self) -> str:
        return "action_stop_return"

    def act(self, turn: Turn) -> List[EventType]:
        if turn.intent == "cancel_order":
            turn.say("utter_return_stopped")
        return [ActiveLoop(None), SlotSet("requested_slot", None), *clear_return()]


# --- news of a return, and where returns stand ------------------------------------------------------------------


def items_of(turn: Turn, returned: m.Return) -> str:
    """What comes back, in the customer's language."""
    return ", ".join(
        f"{line.quantity} × {orders.line_name(turn.session, line.order_line, turn.language)}" for line in returned.lines
    )


def announce_return(turn: Turn, order_id: Any, event: str) -> None:
    """A return_* event of one of the conversation's own orders, said in the customer's language."""
    order = orders.own_order(turn.session, turn.conversation_id, order_id)
    returned = returns.latest_for_order(turn.session, order.id) if order is not None else None
    if order is None or returned is None:
        return
    lang, amount = turn.language, format_money(returned.refund_amount)
    common = {"return_id": returned.id, "order": orders.order_number(order), "items": items_of(turn, returned)}
    if event == NotificationEvent.RETURN_APPROVED:
        step = "delivery" if order.fulfilment == Fulfilment.DELIVERY else "pickup"
        turn.say(
            "utter_order_return_approved",
            **common,
            next_step=f"{t(f'return.next_step.{step}', lang, address=turn.store.address)} {money_next(turn, returned)}",
        )
    elif event == NotificationEvent.RETURN_REJECTED:
        turn.say("utter_order_return_rejected", **common, reason=returned.rejection_reason or "")
    elif event == NotificationEvent.RETURN_RECEIVED:
        outcome = str(returned.outcome)
        if returned.outcome == ReturnOutcome.EXCHANGE and returns.difference(returned) > 0:
            outcome = "exchange_cash" if order.payment_method == PaymentMethod.CASH else "exchange_link"
        turn.say("utter_order_return_received", **common, money_next=t(f"return.received_next.{outcome}", lang))
    elif event == NotificationEvent.RETURN_REFUNDED:  # the return's money, or an exchange's cheaper difference
        refund = returns.latest_refund(turn.session, returned.id)
        payment = turn.session.get(m.Payment, refund.payment_id) if refund is not None else None
        method = t(f"return.method.{payment.method if payment else PaymentMethod.CARD.value}", lang)
        given = format_money(refund.amount) if refund is not None else amount
        turn.say("utter_order_return_refunded", **common, amount=given, method=method)
    elif event == NotificationEvent.RETURN_CREDITED:  # the return's worth, or an exchange's cheaper difference
        balance = store_credit.balance(turn.session, order.business_id, returned.customer_id)
        credited = format_money(store_credit.credited_for(turn.session, returned.id))
        turn.say("utter_order_return_credited", **common, amount=credited, balance=format_money(balance))
    elif event == NotificationEvent.RETURN_EXCHANGED:
        new = turn.session.get(m.Order, returned.exchange_order_id)
        items = ", ".join(f"{line.quantity} × {orders.line_name(turn.session, line, lang)}" for line in new.lines)
        due = orders.amount_due(turn.session, new) if new.payment_status == OrderPaymentStatus.UNPAID else 0
        turn.say(
            "utter_order_return_exchanged_cash" if due else "utter_order_return_exchanged",
            **{**common, "items": items},
            ticket=new.ticket_code,
            address=turn.store.address,
            difference=format_money(Decimal(due)),
        )
    elif event == NotificationEvent.RETURN_CREDIT_NOTE and returned.credit_note_id:
        note = turn.session.get(m.Invoice, returned.credit_note_id)
        turn.say("utter_order_return_credit_note", **common, folio=f"{note.series}{note.folio}", uuid=note.uuid or "—")
        for message in invoice_document_messages(note, lang):
            turn.send(message)


def say_credit_restored(turn: Turn, order: m.Order) -> None:
    """An order cancelled or expired gave back the store credit it had used: the customer hears the balance."""
    credit = store_credit.given_back(turn.session, order.id)
    if credit > 0:
        balance = store_credit.balance(turn.session, order.business_id, order.customer_id)
        turn.say("utter_store_credit_restored", credit=format_money(credit), balance=format_money(balance))


def say_return_statuses(turn: Turn) -> bool:
    """Where the customer's latest returns at this store stand ("¿ya me devolvieron mi dinero?"); whether any."""
    found = returns.customer_returns(turn.session, turn.conversation.customer_id, turn.ref.store_id)
    for returned in found:
        key = returned.status
        if returned.status == ReturnStatus.RECEIVED and returned.outcome != ReturnOutcome.REFUND:
            key = f"{returned.status}_{returned.outcome}"
        status = t(f"return.status.{key}", turn.language, amount=format_money(returned.refund_amount))
        turn.say("utter_return_status", return_id=returned.id, items=items_of(turn, returned), status=status)
    return bool(found)
