"""Invoices in the chat: the invoice form, every field checked by comanda.services.cfdi before
anything is sealed, then the CFDI issued and sent back as WhatsApp documents and by e-mail.

A problem the customer can fix (a mistyped RFC, a use the regime does not allow, a name the PAC says
does not match) is explained with its `cfdi.<code>` text and only that field is asked again."""

from __future__ import annotations

import asyncio
import logging
import re
from functools import partial
from typing import Any, Dict, List, Optional, Sequence

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import conversation, language
from actions.orders import ticket_of
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.errors import ComandaError
from comanda.i18n import t
from comanda.money import format_money
from comanda.services import orders
from comanda.services.cfdi import catalogs, fiscal, invoicing
from comanda.services.cfdi.delivery import email_invoice
from comanda.services.cfdi.fiscal import FiscalData
from comanda.services.cfdi.links import invoice_document_messages
from comanda.services.cfdi.problems import InvoiceRefused, PacUnavailable, Problem, StampUnconfirmed
from comanda.services.customers import conversation_for
from comanda.services.handoff import open_ticket
from comanda.services.products import fold
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
NO_EMAIL = "-"  # the customer wants no e-mail: the slot must still count as answered
NO_WORDS = frozenset({"no", "nel", "ninguno", "sin correo", "no tengo", "no gracias", "none", "no thanks", "skip"})


def customer_id(session: Any, tracker: Tracker) -> int:
    return conversation_for(session, tracker.sender_id).customer_id


def orders_to_invoice(session: Any, tracker: Tracker) -> List[invoicing.InvoiceableOrder]:
    return invoicing.invoiceable_orders(session, customer_id(session, tracker), conversation(tracker).store_id)


def fiscal_data(tracker: Tracker) -> FiscalData:
    email = tracker.get_slot("invoice_email")
    return FiscalData(
        tracker.get_slot("invoice_rfc") or "",
        tracker.get_slot("invoice_name") or "",
        tracker.get_slot("invoice_postal_code") or "",
        tracker.get_slot("invoice_regime") or "",
        tracker.get_slot("invoice_use") or "",
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


def utter_problems(dispatcher: CollectingDispatcher, problems: Sequence[Problem], lang: str) -> None:
    for problem in problems:
        dispatcher.utter_message(text=problem.text(lang))
        if problem.code == "name_capital_regime" and problem.params.get("suggestion"):
            dispatcher.utter_message(
                response="utter_invoice_use_suggested_name", suggestion=problem.params["suggestion"]
            )


def chosen_code(value: Any, options: Sequence[catalogs.Option]) -> Optional[str]:
    """A code picked from a list, typed ("612", "g03"), or named by its label ("gastos en general")."""
    text = str(value or "").strip()
    codes = {o.id.upper(): o.id for o in options}
    for word in re.findall(r"[A-Za-z]?\d{2,3}", text):
        if word.upper() in codes:
            return codes[word.upper()]
    wanted = fold(text)
    found = [o.id for o in options if wanted and (wanted in fold(o.title) or wanted in fold(o.description))]
    return found[0] if len(found) == 1 else None


class ActionStartInvoice(Action):
    """Before the form: which orders can be invoiced (none: say why), and a clean slate."""

    def name(self) -> str:
        return "action_start_invoice"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        lang = language(tracker)
        with new_session() as session:
            candidates = orders_to_invoice(session, tracker)
            if not candidates:
                latest = orders.latest_order(session, tracker.sender_id)
                problem = invoicing.order_problem(session, latest) if latest is not None else None
                if problem is not None and problem.code != "order_not_paid":
                    utter_problems(dispatcher, problem.problems, lang)
                else:
                    dispatcher.utter_message(response="utter_invoice_no_orders")
                return [SlotSet("invoice_possible", False)]
        events = [SlotSet("invoice_possible", True), *(SlotSet(slot, None) for slot in ALL_SLOTS)]
        if len(candidates) == 1:
            events.append(SlotSet("invoice_order", str(candidates[0].order_id)))
        return events


class ValidateInvoiceForm(FormValidationAction):
    def name(self) -> str:
        return "validate_invoice_form"

    async def required_slots(
        self, domain_slots: List[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[str]:
        """Saved data is offered when there is some; used as it is, nothing else is asked but the summary."""
        if tracker.get_slot("invoice_saved"):
            return ["invoice_order", "invoice_saved", "invoice_confirmed"]
        with new_session() as session:
            saved = bool(invoicing.fiscal_profiles(session, customer_id(session, tracker)))
        return [s for s in domain_slots if s != "invoice_saved" or saved]

    def validate_invoice_order(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        with new_session() as session:
            ids = {str(o.order_id) for o in orders_to_invoice(session, tracker)}
        return {"invoice_order": str(value) if str(value) in ids else None}

    def validate_invoice_saved(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        if not value:
            return {"invoice_saved": False}
        with new_session() as session:
            data = invoicing.fiscal_profiles(session, customer_id(session, tracker))[0]
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

    def _checked(
        self, slot: str, value: Any, problems: List[Problem], dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> Dict[str, Any]:
        if problems:
            utter_problems(dispatcher, problems, language(tracker))
            return {slot: None}
        return {slot: value}

    def validate_invoice_rfc(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        rfc = fiscal.normalize_rfc(str(value))
        return {
            **self._checked("invoice_rfc", rfc, fiscal.check_rfc(rfc), dispatcher, tracker),
            "invoice_regime": None,
            "invoice_use": None,
        }

    def validate_invoice_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        name = fiscal.normalize_name(str(value))
        return self._checked(
            "invoice_name", name, fiscal.check_name(name, tracker.get_slot("invoice_rfc") or ""), dispatcher, tracker
        )

    def validate_invoice_postal_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        code = "".join(re.findall(r"\d", str(value))) or str(value).strip()
        with new_session() as session:
            store_code = session.get(m.Store, conversation(tracker).store_id).postal_code
        problems = fiscal.check_postal_code(code, tracker.get_slot("invoice_rfc") or "", store_code)
        return self._checked("invoice_postal_code", code, problems, dispatcher, tracker)

    def validate_invoice_regime(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        rfc = tracker.get_slot("invoice_rfc") or ""
        code = chosen_code(value, catalogs.regime_options(rfc, language(tracker))) or str(value).strip()
        return {
            **self._checked("invoice_regime", code, fiscal.check_regime(code, rfc), dispatcher, tracker),
            "invoice_use": None,
        }

    def validate_invoice_use(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        rfc, regime = tracker.get_slot("invoice_rfc") or "", tracker.get_slot("invoice_regime") or ""
        code = chosen_code(value, catalogs.use_options(rfc, regime, language(tracker))) or str(value).strip().upper()
        return self._checked("invoice_use", code, fiscal.check_use(code, regime, rfc), dispatcher, tracker)

    def validate_invoice_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        text = " ".join(str(value).split())
        if fold(text).strip(" .!") in NO_WORDS:
            return {"invoice_email": NO_EMAIL}
        return self._checked("invoice_email", text, fiscal.check_email(text), dispatcher, tracker)


class ActionAskInvoiceOrder(Action):
    def name(self) -> str:
        return "action_ask_invoice_order"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        lang = language(tracker)
        with new_session() as session:
            options = [o.option(lang) for o in orders_to_invoice(session, tracker)]
        dispatcher.utter_message(
            response="utter_ask_invoice_order",
            buttons=[
                {
                    "title": o.title,
                    "description": o.description,
                    "payload": f'/inform{{"invoice_order":"{o.id}"}}',
                }
                for o in options
            ],
        )
        return []


class ActionAskInvoiceSaved(Action):
    def name(self) -> str:
        return "action_ask_invoice_saved"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        with new_session() as session:
            data = invoicing.fiscal_profiles(session, customer_id(session, tracker))[0]
        dispatcher.utter_message(response="utter_ask_invoice_saved", details=details(data, language(tracker)))
        return []


def ask_from_list(
    dispatcher: CollectingDispatcher, response: str, entity: str, options: Sequence[catalogs.Option]
) -> None:
    dispatcher.utter_message(
        response=response,
        buttons=[
            {"title": o.title, "description": o.description, "payload": f'/inform{{"{entity}":"{o.id}"}}'}
            for o in options
        ],
    )


class ActionAskInvoiceRegime(Action):
    """Only the regimes valid for the RFC's person type."""

    def name(self) -> str:
        return "action_ask_invoice_regime"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        ask_from_list(
            dispatcher,
            "utter_ask_invoice_regime",
            "invoice_regime",
            catalogs.regime_options(tracker.get_slot("invoice_rfc") or "", language(tracker)),
        )
        return []


class ActionAskInvoiceUse(Action):
    """Only the uses SAT allows for that regime and person type."""

    def name(self) -> str:
        return "action_ask_invoice_use"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        ask_from_list(
            dispatcher,
            "utter_ask_invoice_use",
            "invoice_use",
            catalogs.use_options(
                tracker.get_slot("invoice_rfc") or "", tracker.get_slot("invoice_regime") or "", language(tracker)
            ),
        )
        return []


class ActionAskInvoiceConfirmed(Action):
    def name(self) -> str:
        return "action_ask_invoice_confirmed"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        lang = language(tracker)
        with new_session() as session:
            order = session.get(m.Order, int(tracker.get_slot("invoice_order")))
            ticket, total = ticket_of(order), format_money(order.total)
        dispatcher.utter_message(
            response="utter_ask_invoice_confirmed",
            ticket=ticket,
            total=total,
            details=details(fiscal_data(tracker), lang),
        )
        return []


class ActionIssueInvoice(Action):
    """After the form: issue the CFDI, send the PDF and XML here and by e-mail; a problem the customer
    can fix sends them back to that one question. What only staff can sort out opens a handoff ticket."""

    def name(self) -> str:
        return "action_issue_invoice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        lang = language(tracker)
        done = [SlotSet(slot, None) for slot in ALL_SLOTS]
        if not tracker.get_slot("invoice_confirmed"):
            dispatcher.utter_message(response="utter_invoice_changed_mind")
            return done
        data, order_id = fiscal_data(tracker), int(tracker.get_slot("invoice_order"))
        actor = f"conversation:{tracker.sender_id}"
        try:
            blocking = partial(
                invoicing.issue_invoice,
                order_id,
                data,
                issuer=issuer(),
                actor=actor,
                save_profile=bool(tracker.get_slot("invoice_consent")),
            )
            invoice = await asyncio.get_running_loop().run_in_executor(None, blocking)
        except InvoiceRefused as refused:
            utter_problems(dispatcher, refused.problems, lang)
            fixable = [FIELDS[p.field] for p in refused.problems if p.field in FIELDS]
            if not fixable:
                return done
            dispatcher.utter_message(response="utter_invoice_fix_and_retry")
            return [
                SlotSet("invoice_saved", False),
                SlotSet("invoice_confirmed", None),
                *(SlotSet(slot, None) for slot in fixable),
                FollowupAction(FORM),
            ]
        except PacUnavailable:
            dispatcher.utter_message(text=t("cfdi.pac_unavailable", lang))
            return done
        except ComandaError as exc:  # unconfirmed at the PAC, or a fault of ours (CSD, settings, the order)
            if not isinstance(exc, StampUnconfirmed):
                log.exception("order %s: the invoice could not be issued", order_id)
            with transaction() as session:
                open_ticket(session, tracker.sender_id, "invoice", summary=f"order {order_id}: {exc.message}"[:1000])
            key = "cfdi.stamp_unconfirmed" if isinstance(exc, StampUnconfirmed) else "cfdi.invoice_failed"
            dispatcher.utter_message(text=t(key, lang))
            return done
        note = f"\n\n{t('cfdi.test_notice', lang)}" if invoice.test_document else ""
        dispatcher.utter_message(
            response="utter_invoice_issued",
            folio=f"{invoice.series}{invoice.folio}",
            uuid=invoice.uuid or "—",
            note=note,
        )
        for message in invoice_document_messages(invoice, lang):
            dispatcher.utter_message(json_message=message)
        if data.email:
            await send_email(dispatcher, invoice.id, data.email, lang, actor)
        return done


async def send_email(dispatcher: CollectingDispatcher, invoice_id: int, email: str, lang: str, actor: str) -> None:
    """The invoice by e-mail too; the customer is told when it is not set up or did not go (they have the files)."""
    mailer = mailer_from_settings()
    if mailer is None:
        dispatcher.utter_message(response="utter_invoice_email_unavailable")
        return
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, partial(email_invoice, invoice_id, mailer=mailer, language=lang, actor=actor)
        )
    except ComandaError as exc:
        log.warning("invoice %s: not e-mailed to %s: %s", invoice_id, email, exc.message)
        dispatcher.utter_message(text=t("cfdi.email_failed", lang, email=email))
        return
    dispatcher.utter_message(response="utter_invoice_emailed", email=email)


class ActionStopInvoice(Action):
    def name(self) -> str:
        return "action_stop_invoice"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        if (tracker.latest_message.get("intent") or {}).get("name") == "cancel_order":
            dispatcher.utter_message(response="utter_invoice_stopped")
        return [ActiveLoop(None), SlotSet("requested_slot", None), *(SlotSet(s, None) for s in ALL_SLOTS)]
