"""Paying and invoicing end to end in the WhatsApp simulator: the sandbox checkout's link, the paid
message with the ticket through Rasa's external events, the staff queue, and a CFDI asked for in the
chat whose PDF and XML come back as WhatsApp documents that validate."""

from __future__ import annotations

import re
from typing import Any, Dict, List

import requests
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from integrations.cfdi.validation import schema_errors, seal_is_valid
from tests.helpers.simulator import last_reply, move, new_wa_id, order_of, say_and_wait, stock, tap_and_wait, texts


def checkout_by_card(stack, wa_id: str) -> Dict[str, Any]:
    say_and_wait(stack, wa_id, "me das 3 de pastor y una horchata porfa", new=3, name="Xenon")
    [question] = say_and_wait(stack, wa_id, "es todo")
    [payment] = tap_and_wait(stack, wa_id, question, "Paso a recoger")
    [summary] = tap_and_wait(stack, wa_id, payment, "Tarjeta")
    [link] = tap_and_wait(stack, wa_id, summary, "Confirmar")
    return link["message"]["interactive"]


def test_a_card_order_is_paid_on_the_sandbox_page_and_the_customer_follows_it(stack):
    wa_id = new_wa_id()
    held_before = float(stock("TACO-PASTOR", stack.env)["reserved"])
    cta = checkout_by_card(stack, wa_id)
    assert cta["type"] == "cta_url" and cta["body"]["text"].startswith("💳 Tu pedido está apartado hasta las")
    url = cta["action"]["parameters"]["url"]
    assert cta["action"]["parameters"]["display_text"] == "Pagar $101.00"
    assert float(stock("TACO-PASTOR", stack.env)["reserved"]) == held_before + 3  # held while the customer pays
    page = requests.get(url, timeout=30)
    assert page.status_code == 200 and "$101.00" in page.text
    assert requests.post(f"{url}/pay", timeout=30).status_code == 200
    paid = texts([last_reply(stack, wa_id, "¡Pagado!")])[0]
    order = order_of(wa_id)
    assert paid == f"✅ ¡Pagado! Tu número es *{order.ticket_code}*. Total: $101.00. Te aviso cuando esté listo."
    assert (order.status, order.payment_status) == ("received", "paid")
    assert float(stock("TACO-PASTOR", stack.env)["reserved"]) == held_before  # sold: the hold became a sale
    assert move(stack, order.id, "preparing").status_code == 200
    last_reply(stack, wa_id, "Ya estamos preparando")
    assert move(stack, order.id, "ready").status_code == 200
    assert "Pasa por él a Av. 5 de Mayo 32" in texts([last_reply(stack, wa_id, "está listo")])[0]
    assert (
        requests.post(
            f"{stack.backoffice}/api/orders/{order.id}/status", json={"status": "picked_up"}, timeout=30
        ).status_code
        == 401
    )  # staff only

    # "necesito factura": every field checked before sealing, then the PDF and the XML as documents
    [rfc_question] = say_and_wait(stack, wa_id, "necesito factura porfa")
    assert "RFC" in texts([rfc_question])[0]
    [wrong] = say_and_wait(stack, wa_id, "XIA190128J62", new=2)[:1]
    assert "dígito verificador" in texts([wrong])[0]
    say_and_wait(stack, wa_id, "XIA190128J61")
    say_and_wait(stack, wa_id, "Xenon Industrial Articles")
    [regimes] = say_and_wait(stack, wa_id, "76343")
    [uses] = tap_and_wait(stack, wa_id, regimes, "601 General de Ley")
    not_allowed = say_and_wait(stack, wa_id, "D01", new=2)
    assert "D01 no está permitido con el régimen 601" in texts(not_allowed)[0]
    numbered = texts(not_allowed)[-1]
    number = re.search(r"(\d+)\. [^\n]*G03", numbered).group(1)
    say_and_wait(stack, wa_id, number)  # the e-mail question
    [consent] = say_and_wait(stack, wa_id, "no")
    [summary] = tap_and_wait(stack, wa_id, consent, "No")
    body = summary["message"]["interactive"]["body"]["text"]
    assert "RFC: XIA190128J61" in body and "XENON INDUSTRIAL ARTICLES" in body
    issued = tap_and_wait(stack, wa_id, summary, "Emitir factura", new=3)
    assert texts(issued[:1])[0].startswith("✅ ¡Listo! Tu factura")
    documents: List[Dict[str, Any]] = [r["message"]["document"] for r in issued[1:]]
    assert [d["filename"].rsplit(".", 1)[1] for d in documents] == ["pdf", "xml"]
    pdf, xml = (requests.get(d["link"], timeout=30) for d in documents)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert xml.status_code == 200 and schema_errors(xml.content) == [] and seal_is_valid(xml.content)
    assert requests.get(documents[1]["link"].replace("sig=", "sig=0"), timeout=30).status_code == 403
    with new_session() as session:
        invoice = session.execute(select(m.Invoice).where(m.Invoice.order_id == order.id)).scalar_one()
        assert (invoice.receiver_rfc, invoice.cfdi_use, invoice.total) == ("XIA190128J61", "G03", order.total)
