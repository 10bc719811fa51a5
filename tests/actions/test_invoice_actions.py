"""The invoice conversation's actions: a paid order (placed and paid through the real services), the
form's checks field by field with the customer's language, and the CFDI issued by the local PAC and
sent as documents."""

from decimal import Decimal

from rasa_sdk.events import ConversationPaused, FollowupAction, SlotSet
from sqlalchemy import select

from actions import invoices
from actions.invoices import (
    ActionAskInvoiceRegime,
    ActionAskInvoiceUse,
    ActionIssueInvoice,
    ActionStartInvoice,
    ValidateInvoiceForm,
)
from comanda import models as m
from comanda.db import new_session
from comanda.services.answers import NO_EMAIL
from comanda.services.cfdi.problems import StampUnconfirmed
from tests.helpers.actions import answer_messages, paid_order, responses, run, said, text_of, tracker
from tests.helpers.cfdi import FailingIssuer
from tests.helpers.net import free_port

PERSON = {
    "invoice_rfc": "XIA190128J61",
    "invoice_name": "XENON INDUSTRIAL ARTICLES",
    "invoice_postal_code": "76343",
    "invoice_regime": "601",
    "invoice_use": "G03",
    "invoice_email": NO_EMAIL,
    "invoice_consent": True,
    "invoice_confirmed": True,
}


def validate(slot, value, slots=None, lang="es"):
    """The invoice form's answer to ``value`` typed for ``slot``: the slots it set, and what it said (each
    problem's response, with its values)."""
    filled = {"language": lang, "invoice_order": "1", **(slots or {})}
    result, messages = answer_messages(ValidateInvoiceForm(), slot, value, filled)
    return {k: v for k, v in result.items() if k not in filled or k == slot}, [text_of(m) for m in messages]


def test_nothing_paid_nothing_to_invoice(demo):
    [msg], events = run(ActionStartInvoice(), tracker(said("request_invoice")))
    assert msg["response"] == "utter_invoice_no_orders" and events == [SlotSet("invoice_possible", False)]


def test_every_field_is_checked_before_anything_is_sealed(demo):
    order_id = paid_order()
    _, events = run(ActionStartInvoice(), tracker(said("request_invoice")))
    assert SlotSet("invoice_possible", True) in events and SlotSet("invoice_order", str(order_id)) in events
    ok, _ = validate("invoice_rfc", "xia-190128-j61")
    assert ok["invoice_rfc"] == "XIA190128J61"
    bad, said_back = validate("invoice_rfc", "XIA190128J6")
    assert bad["invoice_rfc"] is None and "12 para una empresa" in said_back[0]
    digit, said_back = validate("invoice_rfc", "XIA190128J62", lang="en")
    assert digit["invoice_rfc"] is None and "check digit" in said_back[0]
    named, said_back = validate(
        "invoice_name", "Xenon Industrial Articles, S.A. de C.V.", {"invoice_rfc": "XIA190128J61"}
    )
    assert named == {"invoice_name": None}
    assert "XENON INDUSTRIAL ARTICLES" in said_back[0] and said_back[1].startswith("Toca para usarlo")
    assert validate("invoice_postal_code", "17500", {"invoice_rfc": "XIA190128J61"})[0] == {"invoice_postal_code": None}
    assert (
        validate("invoice_regime", "605", {"invoice_rfc": "XIA190128J61"})[0]["invoice_regime"] is None
    )  # 605: persons only
    assert validate("invoice_regime", "601", {"invoice_rfc": "XIA190128J61"})[0]["invoice_regime"] == "601"
    refused, said_back = validate("invoice_use", "D01", {"invoice_rfc": "XIA190128J61", "invoice_regime": "601"})
    assert refused == {"invoice_use": None} and "D01" in said_back[0]
    assert validate("invoice_use", "gastos en general", {"invoice_rfc": "XIA190128J61", "invoice_regime": "601"})[
        0
    ] == {"invoice_use": "G03"}
    assert validate("invoice_email", "no")[0] == {"invoice_email": NO_EMAIL}
    assert validate("invoice_email", "ana@")[0] == {"invoice_email": None}


def test_lists_offer_only_what_fits_the_rfc_and_regime(demo):
    [regimes], _ = run(ActionAskInvoiceRegime(), tracker(slots={"invoice_rfc": "XIA190128J61"}))
    codes = [b["payload"].split('"')[-2] for b in regimes["buttons"]]
    assert "601" in codes and "605" not in codes
    [uses], _ = run(ActionAskInvoiceUse(), tracker(slots={"invoice_rfc": "XIA190128J61", "invoice_regime": "601"}))
    codes = [b["payload"].split('"')[-2] for b in uses["buttons"]]
    assert "G03" in codes and "D01" not in codes


def test_the_invoice_is_issued_sent_and_kept(demo):
    order_id = paid_order()
    messages, events = run(
        ActionIssueInvoice(), tracker(said("affirm"), slots={**PERSON, "invoice_order": str(order_id)})
    )
    assert responses(messages)[0] == "utter_invoice_issued_test"  # the local PAC: a test document
    assert "DOCUMENTO DE PRUEBA" in text_of(messages[0])
    documents = [m["custom"] for m in messages if m.get("custom")]
    assert [d["document"]["filename"].rsplit(".", 1)[1] for d in documents] == ["pdf", "xml"]
    assert "/documents/invoices/" in documents[0]["document"]["link"]
    assert SlotSet("invoice_rfc", None) in events
    with new_session() as session:
        invoice = session.execute(select(m.Invoice)).scalar_one()
        assert (invoice.receiver_rfc, invoice.payment_form, invoice.total) == ("XIA190128J61", "28", Decimal("101.00"))
        assert session.execute(select(m.FiscalProfile)).scalar_one().rfc == "XIA190128J61"  # consent given
    [again], _ = run(ActionStartInvoice(), tracker(said("request_invoice")))
    assert "ya tiene factura" in text_of(again)


def test_a_refused_field_is_asked_again(demo):
    order_id = paid_order()
    slots = {**PERSON, "invoice_order": str(order_id), "invoice_use": "D01"}  # not for a company
    messages, events = run(ActionIssueInvoice(), tracker(said("affirm"), slots=slots))
    assert responses(messages)[-1] == "utter_invoice_fix_and_retry"
    assert SlotSet("invoice_use", None) in events and FollowupAction("invoice_form") in events


def test_an_email_that_does_not_go_leaves_the_invoice_and_its_files(demo, monkeypatch):
    order_id = paid_order()
    monkeypatch.setenv("COMANDA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("COMANDA_SMTP_PORT", str(free_port()))  # nobody listens there
    monkeypatch.setenv("COMANDA_SMTP_SECURITY", "none")
    slots = {**PERSON, "invoice_order": str(order_id), "invoice_email": "compras@xenon.example"}
    messages, events = run(ActionIssueInvoice(), tracker(said("affirm"), slots=slots))
    assert responses(messages)[0] == "utter_invoice_issued_test" and len([m for m in messages if m.get("custom")]) == 2
    assert text_of(messages[-1]) == "📧 No pude enviarla a compras@xenon.example; guarda los archivos de aquí."
    assert SlotSet("invoice_rfc", None) in events


def test_a_stamp_the_pac_may_have_made_goes_to_staff(demo, monkeypatch):
    order_id = paid_order()
    monkeypatch.setattr(invoices, "issuer", lambda: FailingIssuer(StampUnconfirmed("read timeout")))
    slots = {**PERSON, "invoice_order": str(order_id), "language": "en"}
    messages, events = run(ActionIssueInvoice(), tracker(said("affirm"), slots=slots))
    assert responses(messages) == ["utter_cfdi_stamp_unconfirmed"]
    assert text_of(messages[0]).startswith("⏳ The invoicing service did not confirm whether your invoice was stamped")
    assert SlotSet("invoice_rfc", None) in events and ConversationPaused() in events  # staff answer, the bot waits
    with new_session() as session:
        invoice = session.execute(select(m.Invoice)).scalar_one()
        ticket = session.execute(select(m.HandoffTicket)).scalar_one()
    assert (invoice.status, invoice.active_key) == ("unconfirmed", f"order:{order_id}")
    assert ticket.reason == "invoice" and ticket.summary.startswith(f"order {order_id}: read timeout")
