"""Invoices in the chat: the invoice form, every field checked by comanda.services.cfdi before anything is
sealed, then the CFDI issued and sent back as WhatsApp documents and by e-mail.

A problem the customer can fix (a mistyped RFC, a use the regime does not allow, a name the PAC says does
not match) is explained with its domain response ``utter_cfdi_<code>`` and only that field is asked again.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Sequence

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.base import ComandaAction, ComandaFormValidation, Turn, utter_invoice_problems
from actions.support import hand_over
from comanda.enums import HandoffReason
from comanda.errors import ComandaError
from comanda.i18n import t
from comanda.money import format_money
from comanda.services import answers, orders
from comanda.services.answers import NO_EMAIL, AnswerKind
from comanda.services.cfdi import catalogs, fiscal, invoicing
from comanda.services.cfdi.delivery import email_invoice
from comanda.services.cfdi.fiscal import FiscalData
from comanda.services.cfdi.links import invoice_document_messages
from comanda.services.cfdi.problems import InvoiceRefused, PacUnavailable, Problem, StampUnconfirmed
from integrations.cfdi import issuer
from integrations.email.smtp import mailer_from_settings

log = logging.getLogger(__name__)

FORM = "invoice_form"
FIELDS = {
    "rfc": "invoice_rfc",
    "name": "invoice_name",
    "postal_code": "invoice_postal_code",
    "regime": "invoice_regime",
    "use": "invoice_use",
    "email": "invoice_email",
}
DATA_SLOTS = tuple(FIELDS.values())
ALL_SLOTS = ("invoice_order", "invoice_saved", *DATA_SLOTS, "invoice_consent", "invoice_confirmed")


def clear_invoice() -> List[EventType]:
    return [SlotSet(slot, None) for slot in ALL_SLOTS]


def orders_to_invoice(turn: Turn) -> List[invoicing.InvoiceableOrder]:
    return invoicing.invoiceable_orders(turn.session, turn.conversation.customer_id, turn.ref.store_id)


def fiscal_data(turn: Turn) -> FiscalData:
    email = turn.slot("invoice_email")
    return FiscalData(
        turn.slot("invoice_rfc") or "",
        turn.slot("invoice_name") or "",
        turn.slot("invoice_postal_code") or "",
        turn.slot("invoice_regime") or "",
        turn.slot("invoice_use") or "",
        None if email in (None, NO_EMAIL) else email,
    )


def details(data: FiscalData, lang: str) -> str:
    """The fiscal data as the customer checks it, in their language."""
    lines = [
        t("invoice.rfc", lang, rfc=data.rfc),
        data.name,
        t("invoice.postal_code", lang, postal_code=data.postal_code),
        t("invoice.regime", lang, regime=catalogs.regime_label(data.regime, lang)),
        t("invoice.use", lang, use=catalogs.use_label(data.use, lang)),
    ]
    if data.email:
        lines.append(f"📧 {data.email}")
    return "\n".join(lines)


def choices(options: Sequence[catalogs.Option]) -> List[tuple]:
    return [(o.id, o.title, o.description) for o in options]


class ActionStartInvoice(ComandaAction):
    """Before the form: which orders can be invoiced (none: say why), and a clean slate."""

    def name(self) -> str:
        return "action_start_invoice"

    def act(self, turn: Turn) -> List[EventType]:
        candidates = orders_to_invoice(turn)
        if not candidates:
            latest = orders.latest_order(turn.session, turn.conversation_id)
            problem = invoicing.order_problem(turn.session, latest) if latest is not None else None
            if problem is not None and problem.code != "order_not_paid":
                utter_invoice_problems(list(problem.problems), turn)
            else:
                turn.say("utter_invoice_no_orders")
            return [SlotSet("invoice_possible", False)]
        events = [SlotSet("invoice_possible", True), *clear_invoice()]
        if len(candidates) == 1:
            events.append(SlotSet("invoice_order", str(candidates[0].order_id)))
        return events


class ValidateInvoiceForm(ComandaFormValidation):
    STEPS_ASIDE_FOR = frozenset({"cancel_order", "human_handoff", "faq"})  # data/rules/invoices.yml
    STOPPED = "utter_invoice_stopped"
    ANSWERS = {
        "invoice_rfc": AnswerKind.RFC,
        "invoice_name": AnswerKind.FISCAL_NAME,
        "invoice_postal_code": AnswerKind.POSTAL_CODE,
        "invoice_regime": AnswerKind.CHOICE,
        "invoice_use": AnswerKind.CHOICE,
        "invoice_email": AnswerKind.EMAIL,
    }

    def name(self) -> str:
        return "validate_invoice_form"

    async def required_slots(
        self, domain_slots: List[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[str]:
        """Saved data is offered when there is some; used as it is, nothing else is asked but the summary."""
        if tracker.get_slot("invoice_saved"):
            return ["invoice_order", "invoice_saved", "invoice_confirmed"]
        return [s for s in domain_slots if s != "invoice_saved" or self.saved_profile() is not None]

    def saved_profile(self) -> Any:
        profiles = invoicing.fiscal_profiles(self.turn.session, self.turn.conversation.customer_id)
        return profiles[0] if profiles else None

    def _checked(self, slot: str, value: Any, problems: List[Problem]) -> Dict[str, Any]:
        if problems:
            utter_invoice_problems(problems, self.turn)
            return {slot: None}
        return {slot: value}

    def validate_invoice_order(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        ids = {str(o.order_id) for o in orders_to_invoice(self.turn)}
        return {"invoice_order": str(value) if str(value) in ids else None}

    def validate_invoice_saved(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        data = self.saved_profile() if value else None
        if data is None:
            return {"invoice_saved": False}
        return {
            "invoice_saved": True,
            "invoice_rfc": data.rfc,
            "invoice_name": data.name,
            "invoice_postal_code": data.postal_code,
            "invoice_regime": data.regime,
            "invoice_use": data.use,
            "invoice_email": data.email or NO_EMAIL,
            "invoice_consent": True,
        }

    def validate_invoice_rfc(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        rfc = fiscal.normalize_rfc(str(value))
        return {**self._checked("invoice_rfc", rfc, fiscal.check_rfc(rfc)), "invoice_regime": None, "invoice_use": None}

    def validate_invoice_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        name = fiscal.normalize_name(str(value))
        return self._checked("invoice_name", name, fiscal.check_name(name, tracker.get_slot("invoice_rfc") or ""))

    def validate_invoice_postal_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        code = answers.read_fiscal_postal_code(str(value))
        store_code = self.turn.store.postal_code
        problems = fiscal.check_postal_code(code, tracker.get_slot("invoice_rfc") or "", store_code)
        return self._checked("invoice_postal_code", code, problems)

    def validate_invoice_regime(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        rfc = tracker.get_slot("invoice_rfc") or ""
        options = choices(catalogs.regime_options(rfc, self.turn.language))
        code = answers.read_choice(str(value), options) or str(value).strip()
        return {**self._checked("invoice_regime", code, fiscal.check_regime(code, rfc)), "invoice_use": None}

    def validate_invoice_use(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        rfc, regime = tracker.get_slot("invoice_rfc") or "", tracker.get_slot("invoice_regime") or ""
        options = choices(catalogs.use_options(rfc, regime, self.turn.language))
        code = answers.read_choice(str(value), options) or str(value).strip().upper()
        return self._checked("invoice_use", code, fiscal.check_use(code, regime, rfc))

    def validate_invoice_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        email = answers.read_email(str(value))
        if email == NO_EMAIL:
            return {"invoice_email": NO_EMAIL}
        typed = email or " ".join(str(value).split())
        return self._checked("invoice_email", typed, fiscal.check_email(typed))


class ActionAskInvoiceOrder(ComandaAction):
    def name(self) -> str:
        return "action_ask_invoice_order"

    def act(self, turn: Turn) -> List[EventType]:
        options = [o.option(turn.language) for o in orders_to_invoice(turn)]
        return turn.say(
            "utter_ask_invoice_order",
            buttons=[
                {"title": o.title, "description": o.description, "payload": f'/inform{{"invoice_order":"{o.id}"}}'}
                for o in options
            ],
        )


class ActionAskInvoiceSaved(ComandaAction):
    def name(self) -> str:
        return "action_ask_invoice_saved"

    def act(self, turn: Turn) -> List[EventType]:
        data = invoicing.fiscal_profiles(turn.session, turn.conversation.customer_id)[0]
        return turn.say("utter_ask_invoice_saved", details=details(data, turn.language))


def ask_from_list(turn: Turn, response: str, entity: str, options: Sequence[catalogs.Option]) -> List[EventType]:
    return turn.say(
        response,
        buttons=[
            {"title": o.title, "description": o.description, "payload": f'/inform{{"{entity}":"{o.id}"}}'}
            for o in options
        ],
    )


class ActionAskInvoiceRegime(ComandaAction):
    """Only the regimes valid for the RFC's person type."""

    def name(self) -> str:
        return "action_ask_invoice_regime"

    def act(self, turn: Turn) -> List[EventType]:
        options = catalogs.regime_options(turn.slot("invoice_rfc") or "", turn.language)
        return ask_from_list(turn, "utter_ask_invoice_regime", "invoice_regime", options)


class ActionAskInvoiceUse(ComandaAction):
    """Only the uses SAT allows for that regime and person type."""

    def name(self) -> str:
        return "action_ask_invoice_use"

    def act(self, turn: Turn) -> List[EventType]:
        options = catalogs.use_options(turn.slot("invoice_rfc") or "", turn.slot("invoice_regime") or "", turn.language)
        return ask_from_list(turn, "utter_ask_invoice_use", "invoice_use", options)


class ActionAskInvoiceConfirmed(ComandaAction):
    def name(self) -> str:
        return "action_ask_invoice_confirmed"

    def act(self, turn: Turn) -> List[EventType]:
        order = orders.get_order(turn.session, int(turn.slot("invoice_order")))
        return turn.say(
            "utter_ask_invoice_confirmed",
            order=orders.order_number(order),
            total=format_money(order.total),
            details=details(fiscal_data(turn), turn.language),
        )


class ActionIssueInvoice(ComandaAction):
    """After the form: issue the CFDI, send the PDF and XML here and by e-mail; a problem the customer can
    fix sends them back to that one question. What only staff can sort out opens a handoff ticket."""

    def name(self) -> str:
        return "action_issue_invoice"

    def act(self, turn: Turn) -> List[EventType]:
        if turn.slot("invoice_confirmed") is None:  # the customer left the form ("cancela"): it said so
            return clear_invoice()
        if not turn.slot("invoice_confirmed"):
            turn.say("utter_invoice_changed_mind")
            return clear_invoice()
        data, order_id = fiscal_data(turn), int(turn.slot("invoice_order"))
        actor = f"conversation:{turn.conversation_id}"
        try:
            invoice = invoicing.issue_invoice(
                order_id, data, issuer=issuer(), actor=actor, save_profile=bool(turn.slot("invoice_consent"))
            )
        except InvoiceRefused as refused:
            utter_invoice_problems(list(refused.problems), turn)
            fixable = [FIELDS[p.field] for p in refused.problems if p.field in FIELDS]
            if not fixable:
                return clear_invoice()
            turn.say("utter_invoice_fix_and_retry")
            return [
                SlotSet("invoice_saved", False),
                SlotSet("invoice_confirmed", None),
                *(SlotSet(slot, None) for slot in fixable),
                FollowupAction(FORM),
            ]
        except PacUnavailable:
            turn.say("utter_cfdi_pac_unavailable")
            return clear_invoice()
        except ComandaError as exc:  # unconfirmed at the PAC, or a fault of ours (CSD, settings, the order)
            if not isinstance(exc, StampUnconfirmed):
                log.exception("order %s: the invoice could not be issued", order_id)
            unconfirmed = isinstance(exc, StampUnconfirmed)
            turn.say("utter_cfdi_stamp_unconfirmed" if unconfirmed else "utter_cfdi_invoice_failed")
            return [*clear_invoice(), *hand_over(turn, HandoffReason.INVOICE, f"order {order_id}: {exc.message}")]
        turn.say(
            "utter_invoice_issued_test" if invoice.test_document else "utter_invoice_issued",
            folio=f"{invoice.series}{invoice.folio}",
            uuid=invoice.uuid or "—",
        )
        for message in invoice_document_messages(invoice, turn.language):
            turn.send(message)
        if data.email:
            send_email(turn, invoice.id, data.email, actor)
        return clear_invoice()


def send_email(turn: Turn, invoice_id: int, email: str, actor: str) -> None:
    """The invoice by e-mail too; the customer is told when it is not set up or did not go (they have the files)."""
    mailer = mailer_from_settings()
    if mailer is None:
        turn.say("utter_invoice_email_unavailable")
        return
    try:
        email_invoice(invoice_id, mailer=mailer, language=turn.language, actor=actor)
    except ComandaError as exc:
        log.warning("invoice %s: not e-mailed to %s: %s", invoice_id, email, exc.message)
        turn.say("utter_cfdi_email_failed", email=email)
        return
    turn.say("utter_invoice_emailed", email=email)


class ActionStopInvoice(ComandaAction):
    def name(self) -> str:
        return "action_stop_invoice"

    def act(self, turn: Turn) -> List[EventType]:
        if turn.intent == "cancel_order":
            turn.say("utter_invoice_stopped")
        return [ActiveLoop(None), SlotSet("requested_slot", None), *clear_invoice()]
