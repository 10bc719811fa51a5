"""Returns on SQLite and PostgreSQL: the policy, units never returned twice, staff's steps decided in SQL, the
stock ledger, refunds through the provider once (replayed webhooks, failures), store credit, exchanges, and the
credit note as SAT wants it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.enums import ReturnProblem
from comanda.services import orders, payments, returns, store_credit
from comanda.services.cfdi.global_invoices import issue_global_invoice
from comanda.services.cfdi.invoicing import issue_invoice
from comanda.services.payment_provider import ProviderEvent, RefundUpdate
from integrations.payments import payment_provider
from tests.helpers.cfdi import CFDI, COMPANY, assert_valid_cfdi, attributes
from tests.helpers.payments import T0, assert_ledger_balanced, available
from tests.helpers.returns import (
    LOCAL,
    PendingProvider,
    RefusingProvider,
    ask,
    line_of,
    settle,
    sold,
    staff_step,
    status,
)
from tests.helpers.threads import run_together

pytestmark = pytest.mark.usefixtures("sandbox_settings")


@pytest.fixture
def shop(demo):
    set_clock(lambda: T0)
    yield demo
    set_clock(None)


def refused(call, *args, **kwargs) -> returns.ReturnRefused:
    with pytest.raises(returns.ReturnRefused) as info:
        call(*args, **kwargs)
    return info.value


def notices() -> list:
    with new_session() as session:
        return list(
            session.execute(
                select(m.Notification.event).where(m.Notification.event.like("return_%")).order_by(m.Notification.id)
            ).scalars()
        )


def refunds() -> list:
    with new_session() as session:
        return session.execute(select(m.Refund.idempotency_key, m.Refund.amount, m.Refund.status)).all()


def set_policy(**values) -> None:
    with transaction() as session:
        session.execute(update(m.Business).values(**values))


def test_a_mug_within_the_limit_is_approved_at_once_received_refunded_and_back_on_the_shelf(shop):
    order_id = sold("TAZA")
    on_shelf = available("TAZA")
    return_id = ask(order_id, reason_code="changed_mind", declared_condition="unused")
    assert status(return_id) == "approved"  # $150 ≤ $500 and unused, as the mug's policy asks
    assert settle(return_id).status == "approved"  # the demo gives the money back once the mug is here
    staff_step(return_id, "receive", "good")
    assert available("TAZA") == on_shelf + 1
    assert settle(return_id) == returns.Settled("refunded")
    assert settle(return_id) == returns.Settled("refunded")  # again: nothing more happens
    assert refunds() == [(f"return:{return_id}", Decimal("150.00"), "succeeded")]
    assert notices() == ["return_received", "return_refunded"]  # the approval was said in the chat at once
    with new_session() as session:
        order = session.get(m.Order, order_id)
        assert (order.payment_status, order.lines[0].returned_quantity) == ("refunded", 1)
    assert_ledger_balanced()


def test_above_the_limit_or_without_the_condition_waits_for_staff_who_may_reject_with_a_reason(shop):
    termos = sold("TERMO", 2)  # $640 > $500
    waiting = ask(termos, declared_condition="unused")
    used = ask(sold("TAZA"), declared_condition="any")  # the mug was used: a person decides
    assert (status(waiting), status(used)) == ("requested", "requested")
    staff_step(waiting, "reject", "El termo tiene golpes")
    assert status(waiting) == "rejected"
    assert refused(staff_step, waiting, "approve").problem == ReturnProblem.STATUS
    assert refused(staff_step, used, "reject", "  ").problem == ReturnProblem.NOTHING  # a reason is needed
    staff_step(used, "approve")
    with new_session() as session:
        assert returns.get_return(session, waiting).rejection_reason == "El termo tiene golpes"
    again = ask(termos, {line_of(termos): 1}, declared_condition="unused")  # the rejection freed the units
    assert status(again) == "approved"  # $320 this time: within the limit
    assert notices() == ["return_rejected", "return_approved"]


def test_partial_returns_that_together_exceed_the_sale_are_refused(shop):
    order_id = sold("TAZA", 3)
    line = line_of(order_id)
    ask(order_id, {line: 2}, declared_condition="unused")
    problem = refused(ask, order_id, {line: 2}, declared_condition="unused")
    assert (problem.problem, problem.params["left"], problem.params["sold"]) == ("exceeds_sale", 1, 3)
    ask(order_id, {line: 1}, declared_condition="unused")
    assert refused(ask, order_id, {line: 1}).problem == ReturnProblem.EXCEEDS_SALE


def test_two_returns_of_the_last_units_at_once_take_them_once(shop):
    order_id = sold("TAZA", 2)
    line = line_of(order_id)
    outcomes = run_together(4, lambda n: ask(order_id, {line: 1}, declared_condition="unused"))
    assert sorted(type(o).__name__ for o in outcomes) == ["ReturnRefused", "ReturnRefused", "int", "int"]


def test_the_windows_last_day_is_in_and_the_day_after_is_out(shop):
    order_id = sold("TAZA")  # paid 1 December, 11:00 in Mexico City; the window is 30 days
    last_minute = datetime(2026, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-6)))
    set_clock(lambda: last_minute)
    with new_session() as session:
        assert [r.last_day.isoformat() for r in returns.returnable_lines(session, _customer(order_id), "centro")] == [
            "2026-12-31"
        ]
    set_clock(lambda: last_minute + timedelta(minutes=2))
    problem = refused(ask, order_id, declared_condition="unused")
    assert (problem.problem, problem.params["last_day"]) == ("window_passed", "2026-12-31")
    with new_session() as session:
        assert returns.returnable_lines(session, _customer(order_id), "centro") == []
    set_clock(lambda: last_minute)
    assert ask(order_id, declared_condition="unused")


def _customer(order_id: int) -> int:
    with new_session() as session:
        return session.get(m.Order, order_id).customer_id


def test_food_and_drinks_are_not_returnable(shop):
    order_id = sold("COCA-600", 2)
    problem = refused(ask, order_id)
    assert (problem.problem, problem.params["sku"]) == ("not_returnable", "COCA-600")
    with new_session() as session:
        assert returns.returnable_lines(session, _customer(order_id), "centro") == []


def test_only_the_customers_own_handed_over_orders_come_back(shop):
    order_id = sold("TAZA")
    with transaction() as session:
        other = m.Customer(phone="+525599990000", name="Beto")
        session.add(other)
        session.flush()
        request = returns.ReturnRequest(order_id, {line_of(order_id): 1})
        with pytest.raises(returns.ReturnRefused) as info:
            returns.request_return(session, other.id, "centro", request, "customer:beto")
    assert info.value.problem == ReturnProblem.NOT_YOURS


def test_damaged_goods_are_written_off_and_the_ledger_still_balances(shop):
    order_id = sold("TERMO")
    before = available("TERMO")
    return_id = ask(order_id, reason_code="defective", declared_condition="unused")
    staff_step(return_id, "receive", "damaged")
    assert available("TERMO") == before
    with new_session() as session:
        reasons = session.execute(
            select(m.StockMovement.reason, m.StockMovement.on_hand_delta)
            .where(m.StockMovement.reference_type == "return")
            .order_by(m.StockMovement.id)
        ).all()
    assert reasons == [("return", Decimal(1)), ("write_off", Decimal(-1))]
    assert_ledger_balanced()


def test_the_same_return_approved_twice_at_once_refunds_once(shop):
    set_policy(return_refund_on="approved")
    return_id = ask(sold("TERMO", 2), declared_condition="unused")  # $640: waits for a person

    def approve_and_settle(_n: int) -> str:
        try:
            staff_step(return_id, "approve")
        except returns.ReturnRefused:
            pass
        return settle(return_id).status

    assert run_together(4, approve_and_settle).count("refunded") >= 1
    assert refunds() == [(f"return:{return_id}", Decimal("640.00"), "succeeded")]
    with new_session() as session:
        approvals = session.execute(select(m.AuditEvent.id).where(m.AuditEvent.action == "return.approved")).all()
    assert len(approvals) == 1 and notices().count("return_approved") == 1


def test_a_failed_provider_refund_goes_to_staff_and_loses_nothing(shop):
    return_id = ask(sold("TAZA"), declared_condition="unused")
    staff_step(return_id, "receive", "good")
    assert settle(return_id, lambda name: RefusingProvider()) == returns.Settled("received", "refund_failed")
    assert refunds() == [(f"return:{return_id}", Decimal("150.00"), "failed")]
    with new_session() as session:
        tickets = session.execute(select(m.HandoffTicket.reason, m.HandoffTicket.summary)).all()
        assert session.get(m.Order, returns.get_return(session, return_id).order_id).payment_status == "paid"
    assert [reason for reason, _ in tickets] == ["refund_failed"] and "refunds are down" in tickets[0][1]
    with new_session() as session:
        assert returns.due_for_settlement(session) == []  # the sweep leaves a failed refund to staff
    assert settle(return_id).status == "refunded"  # staff try again: the same key, now it goes
    assert refunds() == [(f"return:{return_id}", Decimal("150.00"), "succeeded")]


def refund_succeeded(return_id: int, event_id: str) -> ProviderEvent:
    """The sandbox's webhook saying the return's pending refund went through."""
    with new_session() as session:
        payment = session.get(m.Payment, session.execute(select(m.Refund.payment_id)).scalar())
    return ProviderEvent(
        provider="sandbox",
        event_id=event_id,
        event_type="refund.updated",
        kind="refund",
        order_reference=None,
        link_id=None,
        payment_id=payment.provider_payment_id,
        amount=None,
        currency=None,
        refunds=(RefundUpdate(f"re_return_{return_id}", "succeeded", reference=f"return:{return_id}"),),
    )


def test_a_pending_refund_is_settled_by_its_webhook_once_however_often_it_is_replayed(shop):
    return_id = ask(sold("TAZA"), declared_condition="unused")
    staff_step(return_id, "receive", "good")
    assert settle(return_id, lambda name: PendingProvider()).status == "received"
    event = refund_succeeded(return_id, "evt_refund_1")
    outcomes = []
    for _ in range(3):
        with transaction() as session:
            outcomes.append(payments.apply_event(session, event))
    assert outcomes == ["refund_succeeded", "duplicate", "duplicate"]
    assert status(return_id) == "refunded" and notices().count("return_refunded") == 1


def test_store_credit_is_a_ledger_that_sums_to_the_balance(shop):
    return_id = ask(sold("TAZA"), outcome="credit", declared_condition="unused")
    staff_step(return_id, "receive", "good")
    assert settle(return_id).status == "credited"
    assert settle(return_id).status == "credited"
    with new_session() as session:
        returned = returns.get_return(session, return_id)
        balance = store_credit.balance(session, "cafe-esquina", returned.customer_id)
        rows = session.execute(select(m.StoreCreditMovement.kind, m.StoreCreditMovement.amount)).all()
    assert balance == Decimal("150.00") and rows == [("return", Decimal("150.00"))]
    assert refunds() == [] and notices()[-1] == "return_credited"


def test_an_exchange_holds_the_replacement_and_sells_it_as_a_new_order(shop):
    order_id = sold("PLAYERA-M-NEGRO")
    before = available("PLAYERA-G-NEGRO")
    return_id = ask(order_id, outcome="exchange", replacement_sku="PLAYERA-G-NEGRO", declared_condition="unused")
    assert available("PLAYERA-G-NEGRO") == before - 1  # held at once
    staff_step(return_id, "receive", "good")
    assert settle(return_id).status == "exchanged"
    with new_session() as session:
        new = session.get(m.Order, returns.get_return(session, return_id).exchange_order_id)
        assert (new.status, new.payment_status, new.total, new.ticket_code) == (
            "received",
            "paid",
            Decimal("250.00"),
            "C-002",
        )
        assert [line.sku for line in new.lines] == ["PLAYERA-G-NEGRO"]
    assert refunds() == []
    assert_ledger_balanced()


def test_an_exchange_whose_replacement_is_out_of_stock_is_refused_and_takes_nothing(shop):
    order_id = sold("PLAYERA-M-NEGRO")
    with transaction() as session:
        item = session.execute(
            select(m.ProductVariant.stock_item_id).where(m.ProductVariant.sku == "PLAYERA-G-BLANCO")
        ).scalar()
        level = session.get(m.StockLevel, ("centro", item))
        session.add(
            m.StockMovement(store_id="centro", stock_item_id=item, reason="adjustment", on_hand_delta=-level.on_hand)
        )
        level.on_hand = 0
    problem = refused(
        ask, order_id, outcome="exchange", replacement_sku="PLAYERA-G-BLANCO", declared_condition="unused"
    )
    assert problem.problem == ReturnProblem.REPLACEMENT_OUT_OF_STOCK
    food = refused(ask, order_id, outcome="exchange", replacement_sku="CONCHA", declared_condition="unused")
    assert food.problem == ReturnProblem.REPLACEMENT_UNKNOWN  # only returnable goods are exchanged for
    assert ask(order_id, declared_condition="unused")  # the units were not taken by the refused ones
    assert_ledger_balanced()


def test_a_refund_of_an_invoiced_sale_sends_a_credit_note_related_01_to_its_invoice(shop):
    order_id = sold("TAZA", 2)
    invoice = issue_invoice(order_id, COMPANY, issuer=LOCAL, actor="test")
    return_id = ask(order_id, {line_of(order_id): 1}, declared_condition="unused")
    staff_step(return_id, "receive", "good")
    assert settle(return_id).status == "refunded"
    with new_session() as session:
        note = session.get(m.Invoice, returns.get_return(session, return_id).credit_note_id)
    assert_valid_cfdi(note.xml)  # SAT's XSD and a verifying seal
    root = attributes(note.xml, ".")[0]
    assert (root["TipoDeComprobante"], root["FormaPago"], root["Total"]) == ("E", "04", "150.00")
    assert attributes(note.xml, f"{CFDI}CfdiRelacionados") == [{"TipoRelacion": "01"}]
    assert attributes(note.xml, f"{CFDI}CfdiRelacionados/{CFDI}CfdiRelacionado") == [{"UUID": invoice.uuid}]
    assert attributes(note.xml, f"{CFDI}Receptor")[0]["Rfc"] == COMPANY.rfc
    assert notices()[-1] == "return_credit_note"
    assert settle(return_id).status == "refunded"  # no second credit note
    with new_session() as session:
        assert session.execute(select(m.Invoice.id).where(m.Invoice.kind == "egreso")).all() == [(note.id,)]


def test_a_sale_in_a_global_invoice_is_credited_against_the_global_invoice(shop):
    order_id = sold("TAZA")
    set_clock(lambda: T0 + timedelta(days=1))
    global_invoice = issue_global_invoice("centro", "2026-12-01", issuer=LOCAL, actor="test")
    return_id = ask(order_id, outcome="credit", declared_condition="unused")
    staff_step(return_id, "receive", "good")
    assert settle(return_id).status == "credited"
    with new_session() as session:
        note = session.get(m.Invoice, returns.get_return(session, return_id).credit_note_id)
    assert_valid_cfdi(note.xml)
    assert note.related_uuid == global_invoice.uuid and note.relation_type == "01"
    assert attributes(note.xml, ".")[0]["FormaPago"] == "17"  # settled as store credit
    assert attributes(note.xml, f"{CFDI}InformacionGlobal")


def test_store_credit_is_offered_at_the_next_checkout_pays_the_order_and_the_ledger_sums(shop):
    from comanda.services import carts, orders
    from comanda.services.checkout import CheckoutDetails, CheckoutProblem
    from tests.helpers.payments import ANA

    return_id = ask(sold("TERMO"), outcome="credit", declared_condition="unused")  # $320 of credit
    staff_step(return_id, "receive", "good")
    settle(return_id)
    with transaction() as session:
        carts.add_items(session, carts.open_cart(session, ANA), [carts.Wanted("TAZA", 3)], "es")  # $450: too much
    with pytest.raises(CheckoutProblem), transaction() as session:
        orders.place_order(session, ANA, CheckoutDetails("pickup", "Ana", "store_credit"), actor="test")
    with transaction() as session:
        cart = carts.open_cart(session, ANA)
        cart.lines[0].quantity = 2  # $300: covered
    with transaction() as session:
        order = orders.place_order(session, ANA, CheckoutDetails("pickup", "Ana", "store_credit"), actor="test")
        assert (order.status, order.payment_status, order.ticket_code) == ("received", "paid", "C-002")
        customer = order.customer_id
        paid_with = session.execute(
            select(m.Payment.provider, m.Payment.amount).where(m.Payment.order_id == order.id)
        ).all()
    assert paid_with == [("store_credit", Decimal("300.00"))]
    with new_session() as session:
        ledger = session.execute(
            select(m.StoreCreditMovement.kind, m.StoreCreditMovement.amount).order_by(m.StoreCreditMovement.id)
        ).all()
        assert store_credit.balance(session, "cafe-esquina", customer) == Decimal("20.00")
    assert ledger == [("return", Decimal("320.00")), ("checkout", Decimal("-300.00"))]
    assert_ledger_balanced()


def test_where_the_business_refunds_on_approval_the_goods_are_still_received_afterwards(shop):
    set_policy(return_refund_on="approved")
    return_id = ask(sold("TAZA"), declared_condition="unused")
    on_shelf = available("TAZA")
    assert settle(return_id).status == "refunded"  # on approval, before the mug is back
    staff_step(return_id, "receive", "good")
    assert status(return_id) == "refunded" and available("TAZA") == on_shelf + 1
    assert refused(staff_step, return_id, "receive", "good").problem == ReturnProblem.STATUS
    with new_session() as session:
        assert returns.due_for_settlement(session) == []
    assert_ledger_balanced()


def exchange_order(return_id: int) -> m.Order:
    with new_session() as session:
        return session.get(m.Order, returns.get_return(session, return_id).exchange_order_id)


def test_an_exchange_for_a_dearer_product_waits_for_its_difference_then_gets_its_ticket(shop):
    from tests.helpers.payments import pay, start

    order_id = sold("TAZA")  # $150
    return_id = ask(order_id, outcome="exchange", replacement_sku="TERMO", declared_condition="unused")  # $320
    with new_session() as session:
        assert returns.difference(returns.get_return(session, return_id)) == Decimal("170.00")
    staff_step(return_id, "receive", "good")
    assert settle(return_id) == returns.Settled("received")  # the new sale waits for the difference
    new = exchange_order(return_id)
    assert (new.status, new.payment_status, new.total, new.ticket_code) == ("pending_payment", "unpaid", 320, None)
    with new_session() as session:
        assert orders.amount_due(session, new) == Decimal("170.00")
        due = session.execute(select(m.Notification.event).where(m.Notification.order_id == new.id)).scalars().all()
        assert due == ["return_exchange_due"]
        assert returns.due_for_settlement(session) == []  # the customer's payment moves it now, not the sweep
    link = start(new.id)  # the chat opens it as any order's payment
    assert link.amount == Decimal("170.00")
    assert pay(link.payment_id) == "paid"
    new = exchange_order(return_id)
    assert (new.status, new.payment_status, new.ticket_code) == ("received", "paid", "C-002")
    assert status(return_id) == "exchanged"
    assert notices()[-1] == "return_exchanged"  # said as the exchange (with its ticket), not as a plain "paid"
    with new_session() as session:
        assert session.execute(select(m.Notification.event).where(m.Notification.order_id == new.id)).all() == [
            ("return_exchange_due",)
        ]
    assert settle(return_id).status == "exchanged" and refunds() == []
    assert_ledger_balanced()


def test_an_exchange_for_a_cheaper_product_refunds_the_difference_through_the_sales_provider_once(shop):
    order_id = sold("TERMO")  # $320
    return_id = ask(order_id, outcome="exchange", replacement_sku="TAZA", declared_condition="unused")  # $150
    staff_step(return_id, "receive", "good")
    assert settle(return_id, lambda name: RefusingProvider()) == returns.Settled("exchanged", "refund_failed")
    new = exchange_order(return_id)
    assert (new.status, new.payment_status, new.total, new.ticket_code) == ("received", "paid", 150, "C-002")
    assert settle(return_id) == returns.Settled("exchanged")  # staff try again: the same key
    assert settle(return_id) == returns.Settled("exchanged")
    assert refunds() == [(f"return:{return_id}", Decimal("170.00"), "succeeded")]
    assert notices() == ["return_received", "return_exchanged", "return_refunded"]
    with new_session() as session:
        assert session.get(m.Order, order_id).payment_status == "partially_refunded"
        assert returns.as_json(session, returns.get_return(session, return_id))["replacement"] == {
            "sku": "TAZA",
            "amount": "150.00",
            "difference": "-170.00",
        }
    assert_ledger_balanced()


def test_a_cash_sale_pays_a_dearer_exchange_at_the_counter_and_gets_a_cheaper_ones_difference_by_hand(shop):
    dearer = ask(sold("TAZA", method="cash"), outcome="exchange", replacement_sku="TERMO", declared_condition="unused")
    staff_step(dearer, "receive", "good")
    assert settle(dearer) == returns.Settled("exchanged")  # in the queue at once, cash due at the hand-over
    new = exchange_order(dearer)
    assert (new.status, new.payment_status, new.payment_method, new.ticket_code) == (
        "received",
        "unpaid",
        "cash",
        "C-002",
    )
    with transaction() as session:
        new = session.get(m.Order, new.id)
        for step in ("ready", "picked_up"):
            orders.set_status(session, new, step, "test")
        assert payments.collect_cash(session, new, "test").amount == Decimal("170.00")

    cheaper = ask(sold("TERMO", method="cash"), outcome="exchange", replacement_sku="TAZA", declared_condition="unused")
    staff_step(cheaper, "receive", "good")
    assert settle(cheaper) == returns.Settled("exchanged", "manual_refund")
    assert returns.record_manual_refund(cheaper, "recibo 12", payment_provider, LOCAL, "staff:test").status == (
        "exchanged"
    )
    assert refunds() == [(f"return:{cheaper}", Decimal("170.00"), "succeeded")]
    with pytest.raises(returns.ReturnRefused):  # given once
        returns.record_manual_refund(dearer, "recibo 13", payment_provider, LOCAL, "staff:test")
    assert_ledger_balanced()


def test_an_exchange_of_a_sale_paid_with_store_credit_gives_a_cheaper_ones_difference_back_to_the_credit(shop):
    from tests.helpers.payments import ANA

    first = ask(sold("TERMO"), outcome="credit", declared_condition="unused")  # $320 of credit
    staff_step(first, "receive", "good")
    settle(first)
    paid_with_credit = sold("TERMO", method="store_credit")
    return_id = ask(paid_with_credit, outcome="exchange", replacement_sku="TAZA", declared_condition="unused")
    staff_step(return_id, "receive", "good")
    assert settle(return_id) == returns.Settled("exchanged")
    assert refunds() == []
    with new_session() as session:
        customer = session.execute(select(m.Conversation.customer_id).where(m.Conversation.id == ANA)).scalar()
        assert store_credit.balance(session, "cafe-esquina", customer) == Decimal("170.00")
    assert notices()[-1] == "return_credited"


def test_an_exchange_of_an_invoiced_sale_gets_its_credit_note(shop):
    dearer_sale = sold("TAZA")
    invoice = issue_invoice(dearer_sale, COMPANY, issuer=LOCAL, actor="test")
    dearer = ask(dearer_sale, outcome="exchange", replacement_sku="TERMO", declared_condition="unused")
    staff_step(dearer, "receive", "good")
    settle(dearer)  # the new sale is made (its difference still to pay): the goods are back, so is the note
    with new_session() as session:
        note = session.get(m.Invoice, returns.get_return(session, dearer).credit_note_id)
    assert_valid_cfdi(note.xml)
    root = attributes(note.xml, ".")[0]
    assert (root["TipoDeComprobante"], root["FormaPago"], root["Total"]) == ("E", "17", "150.00")  # compensación
    assert attributes(note.xml, f"{CFDI}CfdiRelacionados") == [{"TipoRelacion": "01"}]
    assert attributes(note.xml, f"{CFDI}CfdiRelacionados/{CFDI}CfdiRelacionado") == [{"UUID": invoice.uuid}]
    assert notices()[-1] == "return_credit_note"

    cheaper_sale = sold("TERMO")
    issue_invoice(cheaper_sale, COMPANY, issuer=LOCAL, actor="test")
    cheaper = ask(cheaper_sale, outcome="exchange", replacement_sku="TAZA", declared_condition="unused")
    staff_step(cheaper, "receive", "good")
    assert settle(cheaper).status == "exchanged"
    with new_session() as session:
        note = session.get(m.Invoice, returns.get_return(session, cheaper).credit_note_id)
    assert_valid_cfdi(note.xml)
    # $170 of the $320 goes back to the card: the larger part decides the form (04, the sale's card)
    assert (attributes(note.xml, ".")[0]["FormaPago"], note.total) == ("04", Decimal("320.00"))
    assert settle(cheaper).status == "exchanged"  # no second note
    with new_session() as session:
        assert len(session.execute(select(m.Invoice.id).where(m.Invoice.kind == "egreso")).all()) == 2


def test_a_refund_settled_by_its_webhook_gets_the_credit_note_from_the_sweep_once(shop):
    order_id = sold("TAZA")
    invoice = issue_invoice(order_id, COMPANY, issuer=LOCAL, actor="test")
    return_id = ask(order_id, declared_condition="unused")
    staff_step(return_id, "receive", "good")
    assert settle(return_id, lambda name: PendingProvider()).status == "received"
    with new_session() as session:
        assert returns.awaiting_credit_note(session) == []  # not settled yet: nothing to document
    with transaction() as session:
        assert payments.apply_event(session, refund_succeeded(return_id, "evt_refund_2")) == "refund_succeeded"
    assert status(return_id) == "refunded"
    assert returns.issue_due_credit_notes(LOCAL, "test") == 1
    assert returns.issue_due_credit_notes(LOCAL, "test") == 0  # once
    with new_session() as session:
        note = session.get(m.Invoice, returns.get_return(session, return_id).credit_note_id)
        assert note.related_uuid == invoice.uuid and note.kind == "egreso"
    assert notices()[-1] == "return_credit_note"
