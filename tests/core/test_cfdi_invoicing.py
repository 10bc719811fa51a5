"""Invoices of paid orders end to end on the local PAC (real seals, SAT's schema), on SQLite and PostgreSQL:
the customer's invoice, its refusals, the deadline, saved fiscal data, credit notes, cancellations, the
factura global and a sale that moves out of it."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from comanda import models as m
from comanda.db import transaction
from comanda.errors import ConfigError, InvalidInput, NotFound
from comanda.services.cfdi import invoicing
from comanda.services.cfdi.credit_notes import credited_amount, issue_credit_note
from comanda.services.cfdi.fiscal import FiscalData
from comanda.services.cfdi.global_invoices import issue_global_invoice
from comanda.services.cfdi.invoicing import (
    fiscal_profiles,
    invoice_deadline,
    invoiceable_orders,
    issue_invoice,
    save_fiscal_profile,
    withdraw_fiscal_consent,
)
from comanda.services.cfdi.lifecycle import cancel_invoice, cancellation_deadline, release_unconfirmed
from comanda.services.cfdi.problems import InvoiceRefused, PacUnavailable, StampUnconfirmed, refuse
from integrations.cfdi.local import LocalIssuer
from tests.helpers.cfdi import (
    CFDI,
    COMPANY,
    NOVEMBER_20,
    PERSON,
    FailingIssuer,
    Line,
    assert_valid_cfdi,
    attributes,
    audit_actions,
    customer_of,
    paid_order,
    reload,
    totals_of,
)
from tests.helpers.clock import clock_at

LOCAL = LocalIssuer()
TACOS_AND_HORCHATA = [Line("TACO-PASTOR", 3), Line("HORCHATA", 1)]


def issue(order_id, data=COMPANY, **kwargs):
    return issue_invoice(order_id, data, issuer=LOCAL, actor="test", **kwargs)


def refused(call, *args, **kwargs):
    with pytest.raises(InvoiceRefused) as info:
        call(*args, **kwargs)
    return [(p.field, p.code) for p in info.value.problems]


def invoice_count() -> int:
    with transaction() as session:
        return session.execute(select(func.count()).select_from(m.Invoice)).scalar()


@pytest.fixture
def november(demo):
    with clock_at(NOVEMBER_20):
        yield demo


def test_invoice_for_three_tacos_and_a_horchata(november):
    order = paid_order(TACOS_AND_HORCHATA)
    invoice = issue(order)
    assert invoice.status == "sealed" and invoice.test_document and invoice.pac == "local" and invoice.uuid
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("87.07"), Decimal("13.93"), Decimal("101.00"))
    assert_valid_cfdi(invoice.xml)
    assert totals_of(invoice.xml) == (Decimal("87.07"), Decimal("13.93"), Decimal("101.00"))
    root = attributes(invoice.xml, ".")[0]
    assert {
        k: root[k]
        for k in (
            "TipoDeComprobante",
            "MetodoPago",
            "FormaPago",
            "LugarExpedicion",
            "Exportacion",
            "Moneda",
            "Fecha",
            "Serie",
            "Folio",
        )
    } == {
        "TipoDeComprobante": "I",
        "MetodoPago": "PUE",
        "FormaPago": "04",
        "LugarExpedicion": "06000",
        "Exportacion": "01",
        "Moneda": "MXN",
        "Fecha": "2026-11-20T12:00:00",
        "Serie": "F",
        "Folio": str(invoice.id),
    }
    assert attributes(invoice.xml, f"{CFDI}Emisor") == [
        {"Rfc": "EKU9003173C9", "Nombre": "ESCUELA KEMPER URGATE", "RegimenFiscal": "601"}
    ]
    assert attributes(invoice.xml, f"{CFDI}Receptor") == [
        {
            "Rfc": "EKU9003173C9",
            "Nombre": "ESCUELA KEMPER URGATE",
            "DomicilioFiscalReceptor": "42501",
            "RegimenFiscalReceptor": "601",
            "UsoCFDI": "G03",
        }
    ]
    concepts = attributes(invoice.xml, f"{CFDI}Conceptos/{CFDI}Concepto")
    assert [
        (c["ClaveProdServ"], c["ClaveUnidad"], c["NoIdentificacion"], c["Cantidad"], c["ValorUnitario"], c["Importe"])
        for c in concepts
    ] == [
        ("90101503", "E48", "TACO-PASTOR", "3", "18.966667", "56.90"),
        ("50202300", "H87", "HORCHATA", "1", "30.170000", "30.17"),
    ]
    assert invoice.pdf.startswith(b"%PDF") and invoice.retain_until == date(2032, 12, 31)
    stored = reload(invoice.id)
    assert (stored.uuid, stored.xml, stored.pdf, stored.active_key) == (
        invoice.uuid,
        invoice.xml,
        invoice.pdf,
        f"order:{order}",
    )
    assert audit_actions(invoice.id) == ["invoice.draft", "invoice.sealed"]


def test_seventeen_lines_and_delivery_add_up_to_the_amount_paid(november):
    lines = [
        Line("TARO-MT", 1, Decimal("95.00")),
        Line("MATCHA-LT", 2, Decimal("92.00")),
        Line("THAI-TEA", 1),
        Line("BROWN-SUGAR", 3, Decimal("90.00")),
        Line("HORCHATA", 1),
        Line("JAMAICA", 2),
        Line("CAFE-AMER", 1),
        Line("CAFE-LATTE", 4, Decimal("67.00")),
        Line("COCA-600", 2),
        Line("AGUA-1L", 1),
        Line("TACO-PASTOR", 5),
        Line("TACO-SUADERO", 3),
        Line("TACO-CAMPECHANO", 2),
        Line("QUESADILLA", 1),
        Line("TORTA-MILA", 1),
        Line("CONCHA", 6),
        Line("CHURROS", 1),
    ]
    order = paid_order(lines, delivery_fee=Decimal("35"))
    invoice = issue(order)
    with transaction() as session:
        paid = session.get(m.Order, order).total
    assert paid == Decimal("1651.00") and invoice.total == paid
    assert (invoice.subtotal, invoice.tax) == (Decimal("1423.25"), Decimal("227.75"))
    assert_valid_cfdi(invoice.xml)
    concepts = attributes(invoice.xml, f"{CFDI}Conceptos/{CFDI}Concepto")
    assert len(concepts) == 18 and concepts[-1]["ClaveProdServ"] == "78102203"
    assert concepts[-1]["Descripcion"] == "Envío a domicilio" and "NoIdentificacion" not in concepts[-1]


@pytest.mark.parametrize(
    "method, funding, form",
    [
        ("card", None, "04"),
        ("card", "credit", "04"),
        ("card", "debit", "28"),
        ("card", "prepaid", "28"),
        ("cash", None, "01"),
        ("oxxo", None, "01"),
        ("spei", None, "03"),
    ],
)
def test_forma_de_pago_comes_from_the_payment(november, method, funding, form):
    invoice = issue(paid_order(TACOS_AND_HORCHATA, method=method, card_funding=funding))
    assert invoice.payment_form == form and attributes(invoice.xml, ".")[0]["FormaPago"] == form


def test_order_negatives(november):
    assert refused(issue, paid_order(TACOS_AND_HORCHATA, payment_status="unpaid")) == [("order", "order_not_paid")]
    assert refused(issue, paid_order(TACOS_AND_HORCHATA, payment_status="refunded")) == [("order", "order_refunded")]
    order = paid_order(TACOS_AND_HORCHATA)
    issue(order)
    assert refused(issue, order) == [("order", "order_already_invoiced")]
    with pytest.raises(NotFound):
        issue(999_999)


def test_nothing_is_sealed_while_a_field_is_wrong(november):
    order = paid_order(TACOS_AND_HORCHATA)
    bad = FiscalData("EKU9003173C9", "ESCUELA KEMPER URGATE SA DE CV", "17500", "612", "G03")
    assert refused(issue, order, bad) == [
        ("name", "name_capital_regime"),
        ("postal_code", "postal_code_unknown"),
        ("regime", "regime_person_type"),
    ]
    assert invoice_count() == 0


def test_the_database_refuses_a_second_live_invoice_even_past_the_check(november, monkeypatch):
    order = paid_order(TACOS_AND_HORCHATA)
    issue(order)
    monkeypatch.setattr(invoicing, "check_order", lambda session, order_id: None)  # as if two requests raced
    assert refused(issue, order) == [("order", "order_already_invoiced")]
    assert invoice_count() == 1


def test_a_refused_or_failed_draft_frees_the_order(november):
    order = paid_order(TACOS_AND_HORCHATA)
    with pytest.raises(InvoiceRefused):
        issue_invoice(order, COMPANY, issuer=FailingIssuer(refuse("name", "name_mismatch")), actor="test")
    with pytest.raises(PacUnavailable):
        issue_invoice(order, COMPANY, issuer=FailingIssuer(PacUnavailable("down")), actor="test")
    with transaction() as session:
        drafts = session.execute(select(m.Invoice).order_by(m.Invoice.id)).scalars().all()
        assert [(d.status, d.active_key) for d in drafts] == [("rejected", None), ("failed", None)]
    assert audit_actions(drafts[0].id) == ["invoice.draft", "invoice.rejected"]
    assert issue(order).status == "sealed"


def test_generic_rfc_gets_an_individual_invoice(november):
    customer = FiscalData("XAXX010101000", "ana lópez", "06000", "616", "S01")
    invoice = issue(paid_order(TACOS_AND_HORCHATA, method="cash"), customer)
    assert_valid_cfdi(invoice.xml)
    assert attributes(invoice.xml, f"{CFDI}Receptor")[0]["Nombre"] == "ANA LÓPEZ"
    assert attributes(invoice.xml, f"{CFDI}InformacionGlobal") == []


def test_deadline_is_the_end_of_the_month_in_the_business_timezone(demo):
    late_november = datetime(2026, 12, 1, 5, 30, tzinfo=timezone.utc)  # 30 Nov 23:30 in Mexico City
    first, second = (
        paid_order(TACOS_AND_HORCHATA, paid_at=late_november),
        paid_order(TACOS_AND_HORCHATA, paid_at=late_november),
    )
    with clock_at(datetime(2026, 12, 1, 5, 59, tzinfo=timezone.utc)):  # still 30 Nov there
        assert issue(first).status == "sealed"
    with clock_at(datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)):  # 1 Dec 00:00 there
        with pytest.raises(InvoiceRefused) as info:
            issue(second)
    assert info.value.code == "deadline_passed" and info.value.problems[0].params == {"deadline": "2026-11-30"}
    with transaction() as session:
        business = session.get(m.Business, "cafe-esquina")
        deadline = invoice_deadline(business, late_november)
        assert deadline.isoformat() == "2026-12-01T00:00:00-06:00"
        business.invoice_deadline = "next_year"
        with pytest.raises(ConfigError):
            invoice_deadline(business, late_november)


def test_saved_fiscal_data_needs_consent_and_can_be_corrected_or_withdrawn(november):
    order = paid_order(TACOS_AND_HORCHATA)
    customer = customer_of(order)
    issue(order, PERSON, save_profile=True)
    with transaction() as session:
        assert fiscal_profiles(session, customer) == [PERSON]
        assert session.get(m.Customer, customer).consent_fiscal_data
        assert save_fiscal_profile(session, customer, COMPANY, consent=False, actor="test") is None
        corrected = FiscalData(PERSON.rfc, PERSON.name, "36250", "626", "G03", None)
        save_fiscal_profile(session, customer, corrected, consent=True, actor="test")
    with transaction() as session:
        assert fiscal_profiles(session, customer) == [corrected]
        assert withdraw_fiscal_consent(session, customer, actor="test") == 1
    with transaction() as session:
        assert fiscal_profiles(session, customer) == [] and not session.get(m.Customer, customer).consent_fiscal_data
        assert session.execute(select(func.count()).select_from(m.Invoice)).scalar() == 1  # fiscal documents stay


def test_invoiceable_orders_of_a_customer(november):
    older = paid_order(TACOS_AND_HORCHATA, paid_at=datetime(2026, 11, 2, 18, tzinfo=timezone.utc), ticket="C-001")
    latest = paid_order([Line("TAZA", 1)], ticket="C-007")
    issue(paid_order(TACOS_AND_HORCHATA))
    paid_order(TACOS_AND_HORCHATA, payment_status="unpaid")
    paid_order(TACOS_AND_HORCHATA, paid_at=datetime(2026, 10, 30, 18, tzinfo=timezone.utc))
    with transaction() as session:
        found = invoiceable_orders(session, customer_of(latest))
        assert [o.order_id for o in found] == [latest, older]
        assert invoiceable_orders(session, customer_of(latest), store_id="roma") == []
    es, en = found[0].option("es"), found[1].option("en")
    assert (es.id, es.title, es.description) == (str(latest), "C-007 · $150.00", "2026-11-20 · 1 artículos")
    assert (en.title, en.description) == ("C-001 · $101.00", "2026-11-02 · 4 items")


def test_credit_note_for_returned_units(november):
    invoice = issue(paid_order(TACOS_AND_HORCHATA, card_funding="debit"))
    with transaction() as session:
        taco_line = session.execute(
            select(m.OrderLine.id).where(m.OrderLine.order_id == invoice.order_id, m.OrderLine.sku == "TACO-PASTOR")
        ).scalar()
    note = issue_credit_note(invoice.id, issuer=LOCAL, actor="test", lines={taco_line: 1})
    assert (note.kind, note.status, note.total, note.related_uuid, note.relation_type) == (
        "egreso",
        "sealed",
        Decimal("22.00"),
        invoice.uuid,
        "01",
    )
    assert_valid_cfdi(note.xml)
    root = attributes(note.xml, ".")[0]
    assert (root["TipoDeComprobante"], root["FormaPago"], root["MetodoPago"], root["Serie"]) == ("E", "28", "PUE", "NC")
    assert attributes(note.xml, f"{CFDI}CfdiRelacionados") == [{"TipoRelacion": "01"}]
    assert attributes(note.xml, f"{CFDI}CfdiRelacionados/{CFDI}CfdiRelacionado") == [{"UUID": invoice.uuid}]
    assert attributes(note.xml, f"{CFDI}Receptor")[0]["UsoCFDI"] == "G02"
    concept = attributes(note.xml, f"{CFDI}Conceptos/{CFDI}Concepto")[0]
    assert (concept["Descripcion"], concept["Cantidad"], concept["ClaveProdServ"]) == (
        "Devolución: Taco al pastor",
        "1",
        "90101503",
    )
    with transaction() as session:
        assert credited_amount(session, invoice) == Decimal("22.00")
    assert refused(issue_credit_note, invoice.id, issuer=LOCAL, actor="t", amount=Decimal("79.01")) == [
        ("invoice", "credit_exceeds_invoice")
    ]
    assert refused(issue_credit_note, invoice.id, issuer=LOCAL, actor="t", lines={999_999: 1}) == [
        ("invoice", "credit_line_unknown")
    ]
    assert refused(issue_credit_note, invoice.id, issuer=LOCAL, actor="t", lines={taco_line: 4}) == [
        ("invoice", "credit_quantity")
    ]
    assert refused(issue_credit_note, invoice.id, issuer=LOCAL, actor="t", amount=Decimal("0")) == [
        ("invoice", "credit_amount_invalid")
    ]
    assert refused(issue_credit_note, note.id, issuer=LOCAL, actor="t", amount=Decimal("1")) == [
        ("invoice", "invoice_not_active")
    ]
    rest = issue_credit_note(invoice.id, issuer=LOCAL, actor="test", amount=Decimal("79.00"))
    assert (
        rest.total == Decimal("79.00")
        and attributes(rest.xml, f"{CFDI}Conceptos/{CFDI}Concepto")[0]["ClaveProdServ"] == "84111506"
    )


def test_cancellation_motives(november):
    invoice = issue(paid_order(TACOS_AND_HORCHATA))

    def cancel(motive, substitute=None, issuer=LOCAL):
        return cancel_invoice(invoice.id, motive, issuer=issuer, actor="test", substitute_uuid=substitute)

    assert refused(cancel, "07") == [("invoice", "cancel_motive_unknown")]
    assert refused(cancel, "04") == [("invoice", "cancel_motive_global_only")]
    assert refused(cancel, "01") == [("invoice", "cancel_substitute_required")]
    assert refused(cancel, "02", invoice.uuid) == [("invoice", "cancel_substitute_invalid")]
    with pytest.raises(ConfigError):
        cancel("02", issuer=FailingIssuer.__new__(type("Other", (LocalIssuer,), {"name": "finkok"})))
    cancelled = cancel("03")
    assert (cancelled.status, cancelled.cancellation_motive, cancelled.active_key) == ("cancelled", "03", None)
    assert refused(cancel, "02") == [("invoice", "invoice_not_active")]
    assert issue(invoice.order_id).status == "sealed"  # the order can be invoiced again
    assert audit_actions(invoice.id)[-1] == "invoice.cancelled"


def test_cancellation_refused_with_credit_notes_or_after_the_annual_return(november):
    invoice = issue(paid_order(TACOS_AND_HORCHATA))
    issue_credit_note(invoice.id, issuer=LOCAL, actor="test", amount=Decimal("10"))
    assert refused(cancel_invoice, invoice.id, "02", issuer=LOCAL, actor="t") == [
        ("invoice", "cancel_has_credit_notes")
    ]
    january, april = issue(paid_order(TACOS_AND_HORCHATA)), issue(paid_order(TACOS_AND_HORCHATA))
    with clock_at(datetime(2027, 1, 2, 18, tzinfo=timezone.utc)):  # until the company's annual return: March
        assert cancel_invoice(january.id, "02", issuer=LOCAL, actor="t").status == "cancelled"
    with clock_at(datetime(2027, 4, 1, 18, tzinfo=timezone.utc)):
        assert refused(cancel_invoice, april.id, "02", issuer=LOCAL, actor="t") == [("invoice", "cancel_year_closed")]
    assert cancellation_deadline(2026, "EKU9003173C9").isoformat() == "2027-03-31"
    assert cancellation_deadline(2026, "XOJI740919U48").isoformat() == "2027-04-30"


def test_correcting_an_invoice_substitutes_it_with_motive_01(november):
    order = paid_order(TACOS_AND_HORCHATA)
    first = issue(order, PERSON)
    corrected = issue(order, FiscalData(PERSON.rfc, PERSON.name, PERSON.postal_code, "626", "G01"), replaces=first.id)
    assert (corrected.related_uuid, corrected.relation_type) == (first.uuid, "04")
    assert attributes(corrected.xml, f"{CFDI}CfdiRelacionados") == [{"TipoRelacion": "04"}]
    assert_valid_cfdi(corrected.xml)
    old = reload(first.id)
    assert (old.status, old.cancellation_motive, old.replaced_by_uuid) == ("cancelled", "01", corrected.uuid)
    assert reload(corrected.id).active_key == f"order:{order}"
    assert refused(issue, order, replaces=first.id) == [("invoice", "invoice_not_active")]


def test_a_failed_correction_gives_the_order_back_to_the_invoice_it_was_to_replace(november):
    order = paid_order(TACOS_AND_HORCHATA)
    first = issue(order, PERSON)
    with pytest.raises(PacUnavailable):
        issue_invoice(order, PERSON, issuer=FailingIssuer(PacUnavailable("down")), actor="t", replaces=first.id)
    assert reload(first.id).active_key == f"order:{order}" and reload(first.id).status == "sealed"


def day(moment_day: int, hour_utc: int = 18) -> datetime:
    return datetime(2026, 11, moment_day, hour_utc, tzinfo=timezone.utc)


def test_daily_global_invoice(demo):
    cash = paid_order([Line("CONCHA", 2)], method="cash", paid_at=day(20), ticket="C-001")
    card = paid_order(TACOS_AND_HORCHATA, method="card", paid_at=day(20, 20), ticket="C-002")
    invoiced = paid_order([Line("TAZA", 1)], paid_at=day(20))
    paid_order([Line("TAZA", 1)], paid_at=day(20), payment_status="unpaid")
    other_day = paid_order([Line("TERMO", 1)], method="spei", paid_at=day(21), ticket="C-001")
    roma = paid_order([Line("TAZA", 1)], paid_at=day(20), store_id="roma")
    with clock_at(day(20, 23)):
        issue(invoiced)
        assert refused(issue_global_invoice, "centro", "2026-11-20", issuer=LOCAL, actor="t") == [
            ("period", "global_period_open")
        ]
    with clock_at(day(21, 12)):  # 21 Nov 06:00 local
        invoice = issue_global_invoice("centro", "2026-11-20", issuer=LOCAL, actor="test")
        assert refused(issue_global_invoice, "centro", "2026-11-20", issuer=LOCAL, actor="t") == [
            ("period", "global_already_issued")
        ]
        assert refused(issue_global_invoice, "centro", "2026-11-32", issuer=LOCAL, actor="t") == [
            ("period", "global_period_format")
        ]
    assert (invoice.kind, invoice.status, invoice.total, invoice.global_period) == (
        "global",
        "sealed",
        Decimal("137.00"),
        "2026-11-20",
    )
    assert_valid_cfdi(invoice.xml)
    assert attributes(invoice.xml, f"{CFDI}InformacionGlobal") == [{"Periodicidad": "01", "Meses": "11", "Año": "2026"}]
    assert attributes(invoice.xml, f"{CFDI}Receptor") == [
        {
            "Rfc": "XAXX010101000",
            "Nombre": "PUBLICO EN GENERAL",
            "DomicilioFiscalReceptor": "06000",
            "RegimenFiscalReceptor": "616",
            "UsoCFDI": "S01",
        }
    ]
    concepts = attributes(invoice.xml, f"{CFDI}Conceptos/{CFDI}Concepto")
    assert [
        (c["ClaveProdServ"], c["ClaveUnidad"], c["Descripcion"], c["NoIdentificacion"], c["Cantidad"]) for c in concepts
    ] == [("01010101", "ACT", "Venta", "C-001", "1"), ("01010101", "ACT", "Venta", "C-002", "1")]
    assert attributes(invoice.xml, ".")[0]["FormaPago"] == "04"  # the card paid the larger amount
    with transaction() as session:
        covered = session.execute(select(m.InvoiceOrder.order_id).where(m.InvoiceOrder.invoice_id == invoice.id))
        assert sorted(covered.scalars()) == sorted([cash, card])
    with clock_at(datetime(2026, 12, 1, 12, tzinfo=timezone.utc)):
        monthly = issue_global_invoice("centro", "2026-11", issuer=LOCAL, actor="test")
        assert refused(issue_global_invoice, "centro", "2026-10", issuer=LOCAL, actor="t") == [
            ("period", "global_nothing_to_invoice")
        ]
        assert issue_global_invoice("roma", "2026-11", issuer=LOCAL, actor="test").total == Decimal("150.00")
    assert attributes(monthly.xml, f"{CFDI}InformacionGlobal") == [{"Periodicidad": "04", "Meses": "11", "Año": "2026"}]
    assert [c["NoIdentificacion"] for c in attributes(monthly.xml, f"{CFDI}Conceptos/{CFDI}Concepto")] == ["C-001"]
    assert monthly.payment_form == "03" and other_day and roma


def test_a_sale_in_the_global_invoice_gets_its_own_invoice_as_sat_requires(demo):
    first = paid_order([Line("CONCHA", 2)], method="cash", paid_at=day(20))
    second = paid_order(TACOS_AND_HORCHATA, paid_at=day(20))
    with clock_at(day(21, 12)):
        original = issue_global_invoice("centro", "2026-11-20", issuer=LOCAL, actor="test")
    with clock_at(day(22)):
        own = issue(second, COMPANY)
    assert own.status == "sealed" and own.total == Decimal("101.00")
    cancelled = reload(original.id)
    assert (cancelled.status, cancelled.cancellation_motive, cancelled.active_key) == ("cancelled", "04", None)
    with transaction() as session:
        replacement = session.execute(
            select(m.Invoice).where(m.Invoice.kind == "global", m.Invoice.status == "sealed")
        ).scalar_one()
        covered = list(
            session.execute(
                select(m.InvoiceOrder.order_id).where(m.InvoiceOrder.invoice_id == replacement.id)
            ).scalars()
        )
    assert covered == [first] and replacement.total == Decimal("36.00")
    assert (replacement.related_uuid, replacement.relation_type, replacement.global_period) == (
        original.uuid,
        "04",
        "2026-11-20",
    )
    assert_valid_cfdi(replacement.xml)
    with clock_at(day(22, 20)):
        issue(first, PERSON)  # the last sale leaves: the global invoice is cancelled and not issued again
    with transaction() as session:
        live = session.execute(
            select(func.count())
            .select_from(m.Invoice)
            .where(m.Invoice.kind == "global", m.Invoice.status != "cancelled")
        ).scalar()
    assert live == 0


def test_a_failed_global_replacement_is_finished_by_issuing_the_period_again(demo):
    first, second = paid_order([Line("CONCHA", 2)], paid_at=day(20)), paid_order(TACOS_AND_HORCHATA, paid_at=day(20))
    with clock_at(day(21, 12)):
        original = issue_global_invoice("centro", "2026-11-20", issuer=LOCAL, actor="test")
        own = issue_invoice(second, COMPANY, issuer=FailingIssuer(cancel_error=PacUnavailable("down")), actor="t")
        assert own.status == "sealed" and reload(original.id).status == "sealed"
        assert audit_actions(original.id)[-1] == "invoice.replacement_failed"
        replacement = issue_global_invoice("centro", "2026-11-20", issuer=LOCAL, actor="test")
    assert reload(original.id).status == "cancelled" and replacement.total == Decimal("36.00") and first


def test_credit_note_for_a_sale_in_the_global_invoice(demo):
    order = paid_order(TACOS_AND_HORCHATA, paid_at=day(20))
    with clock_at(day(21, 12)):
        invoice = issue_global_invoice("centro", "2026-11-20", issuer=LOCAL, actor="test")
        with transaction() as session:
            line = session.execute(
                select(m.OrderLine.id).where(m.OrderLine.order_id == order, m.OrderLine.sku == "HORCHATA")
            ).scalar()
        note = issue_credit_note(invoice.id, issuer=LOCAL, actor="test", lines={line: 1})
    assert_valid_cfdi(note.xml)
    assert attributes(note.xml, f"{CFDI}InformacionGlobal") == [{"Periodicidad": "01", "Meses": "11", "Año": "2026"}]
    assert attributes(note.xml, f"{CFDI}Receptor")[0]["UsoCFDI"] == "S01" and note.total == Decimal("35.00")


class GlobalFails(LocalIssuer):
    """The local PAC, but the PAC is down whenever a global invoice is to be stamped."""

    def issue(self, document):
        if document.global_info is not None:
            raise PacUnavailable("down")
        return super().issue(document)


def test_a_stamp_the_pac_may_have_made_keeps_the_order_until_staff_release_it(demo):
    first, second = paid_order([Line("CONCHA", 2)], paid_at=day(20)), paid_order(TACOS_AND_HORCHATA, paid_at=day(20))
    with clock_at(day(21, 12)):
        original = issue_global_invoice("centro", "2026-11-20", issuer=LOCAL, actor="test")
        lost = FailingIssuer(StampUnconfirmed("read timeout", uuid="6F1C0D4E-0000-4000-8000-00000000C0DE"))
        with pytest.raises(StampUnconfirmed):
            issue_invoice(second, COMPANY, issuer=lost, actor="test")
        held = reload(original.id + 1)
        assert (held.status, held.active_key, held.uuid, held.pac) == (
            "unconfirmed",
            f"order:{second}",
            "6F1C0D4E-0000-4000-8000-00000000C0DE",
            "local",
        )
        assert audit_actions(held.id) == ["invoice.draft", "invoice.unconfirmed"]
        assert refused(issue, second) == [("order", "order_already_invoiced")]  # never stamped twice
        # The sale stays in the global invoice while its own CFDI is unconfirmed.
        assert refused(issue_global_invoice, "centro", "2026-11-20", issuer=LOCAL, actor="t") == [
            ("period", "global_already_issued")
        ]
        with pytest.raises(InvalidInput):
            release_unconfirmed(original.id, actor="test")
        released = release_unconfirmed(held.id, actor="staff")
        assert (released.status, released.active_key) == ("failed", None)
        assert issue(second).status == "sealed" and reload(original.id).status == "cancelled" and first


def test_a_global_issued_again_after_a_failed_replacement_still_replaces_the_cancelled_one(demo):
    paid_order([Line("CONCHA", 2)], paid_at=day(20))
    second = paid_order(TACOS_AND_HORCHATA, paid_at=day(20))
    with clock_at(day(21, 12)):
        original = issue_global_invoice("centro", "2026-11-20", issuer=LOCAL, actor="test")
        assert issue_invoice(second, COMPANY, issuer=GlobalFails(), actor="test").status == "sealed"
        assert reload(original.id).status == "cancelled"  # cancelled with 04, its replacement failed
        replacement = issue_global_invoice("centro", "2026-11-20", issuer=LOCAL, actor="test")
    assert (replacement.related_uuid, replacement.relation_type, replacement.total) == (
        original.uuid,
        "04",
        Decimal("36.00"),
    )
    assert attributes(replacement.xml, f"{CFDI}CfdiRelacionados") == [{"TipoRelacion": "04"}]
