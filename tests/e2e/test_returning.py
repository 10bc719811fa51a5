"""A return end to end in the WhatsApp simulator, in Spanish and in English: a mug bought by card at Centro,
picked up (and invoiced), then "quiero devolver la taza, no la usé" → approved at once → received at the
counter through the staff API → refunded in the sandbox → stock back → the credit note's PDF and XML in the
chat; in English two tumblers (invoiced too) above the limit wait for a person, who approves them, and then the
same way back: received, refunded, stock back, the credit note in the chat."""

from __future__ import annotations

from typing import Any, Dict, List

import requests
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from integrations.cfdi.validation import schema_errors, seal_is_valid
from tests.helpers.simulator import (
    bot_messages,
    last_reply,
    move,
    new_wa_id,
    order_of,
    say_and_wait,
    stock,
    tap_and_wait,
    texts,
)
from tests.helpers.waiting import wait_for


def staff(stack, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.staff_token}"}
    return requests.request(method, f"{stack.backoffice}/api{path}", headers=headers, timeout=60, **kwargs)


def buy_and_pick_up(
    stack, wa_id: str, order: str, done: str, pickup: str, card: str, confirm: str, paid: str, thanks: str
) -> m.Order:
    say_and_wait(stack, wa_id, order, new=3, name="Xenon")  # added, the cart, anything else?
    [question] = say_and_wait(stack, wa_id, done)
    [payment] = tap_and_wait(stack, wa_id, question, pickup)
    [summary] = tap_and_wait(stack, wa_id, payment, card)
    [link] = tap_and_wait(stack, wa_id, summary, confirm)
    url = link["message"]["interactive"]["action"]["parameters"]["url"]
    assert requests.post(f"{url}/pay", timeout=30).status_code == 200
    last_reply(stack, wa_id, paid)
    bought = order_of(wa_id)
    for status in ("ready", "picked_up"):
        assert move(stack, bought.id, status).status_code == 200
    last_reply(stack, wa_id, thanks)  # the hand-over's news is in before the customer writes again
    return bought


def invoice(
    stack,
    wa_id: str,
    ask: str = "necesito factura porfa",
    issue: str = "Emitir factura",
    issued: str = "✅ ¡Listo! Tu factura",
    regime: str = "601 General de Ley",
) -> None:
    """The invoice form as in tests/e2e/test_paying_and_invoicing.py, quickly, in the chat's language."""
    say_and_wait(stack, wa_id, ask)
    say_and_wait(stack, wa_id, "XIA190128J61")
    say_and_wait(stack, wa_id, "Xenon Industrial Articles")
    [regimes] = say_and_wait(stack, wa_id, "76343")
    tap_and_wait(stack, wa_id, regimes, regime)
    say_and_wait(stack, wa_id, "G03")
    [consent] = say_and_wait(stack, wa_id, "no")
    [summary] = tap_and_wait(stack, wa_id, consent, "No")
    done = tap_and_wait(stack, wa_id, summary, issue, new=3)
    assert texts(done[:1])[0].startswith(issued), texts(done)


def documents_after(stack, wa_id: str, containing: str, count: int = 2) -> List[Dict[str, Any]]:
    """The documents the bot sent after its message containing ``containing``, once ``count`` are in (the
    outbox sends the text before the documents, each as its own message)."""
    last_reply(stack, wa_id, containing, timeout=60)

    def sent() -> List[Dict[str, Any]]:
        messages = bot_messages(stack, wa_id)
        start = next(i for i, r in enumerate(messages) if containing in (texts([r]) or [""])[0])
        return [r["message"]["document"] for r in messages[start + 1 :] if r["message"].get("type") == "document"]

    wait_for(lambda: len(sent()) >= count, timeout=60)
    return sent()


def test_a_mug_bought_invoiced_and_returned_in_spanish_comes_back_refunded_with_its_credit_note(stack):
    wa_id = new_wa_id()
    bought = buy_and_pick_up(
        stack,
        wa_id,
        "me das una taza porfa",
        "es todo",
        "Paso a recoger",
        "Tarjeta",
        "Confirmar",
        "¡Pagado!",
        "Gracias por",
    )
    invoice(stack, wa_id)
    on_hand = float(stock("TAZA", stack.env)["on_hand"])

    [reason] = say_and_wait(stack, wa_id, "quiero devolver la taza, no la usé")
    assert "¿Por qué lo devuelves?" in texts([reason])[0]
    [outcome] = tap_and_wait(stack, wa_id, reason, "Cambié de opinión")
    assert "$150.00" in texts([outcome])[0]
    [summary] = tap_and_wait(stack, wa_id, outcome, "Reembolso")
    assert "1 × Taza de cerámica Café Esquina" in texts([summary])[0]
    [approved] = tap_and_wait(stack, wa_id, summary, "Sí, regístrala")
    text = texts([approved])[0]
    assert "está aprobada" in text and "Av. 5 de Mayo 32" in text and "$150.00" in text

    with new_session() as session:
        return_id = session.execute(select(m.Return.id).where(m.Return.order_id == bought.id)).scalar_one()
    received = staff(stack, "POST", f"/returns/{return_id}/receive", json={"condition": "good"})
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "refunded" and received.json()["refund"]["provider"] == "sandbox"
    assert float(stock("TAZA", stack.env)["on_hand"]) == on_hand + 1
    last_reply(stack, wa_id, "Recibimos tu devolución")
    assert "$150.00 (a tu tarjeta)" in texts([last_reply(stack, wa_id, "Te reembolsamos")])[0]
    documents = documents_after(stack, wa_id, "nota de crédito")
    assert [d["filename"].rsplit(".", 1)[1] for d in documents] == ["pdf", "xml"]
    xml = requests.get(documents[1]["link"], timeout=30).content
    assert schema_errors(xml) == [] and seal_is_valid(xml)
    with new_session() as session:
        note = session.get(m.Invoice, session.get(m.Return, return_id).credit_note_id)
        original = session.execute(
            select(m.Invoice).where(m.Invoice.order_id == bought.id, m.Invoice.kind == "ingreso")
        ).scalar_one()
    assert (note.related_uuid, note.relation_type, note.total) == (original.uuid, "01", original.total)
    [status] = say_and_wait(stack, wa_id, "ya me devolvieron mi dinero?", new=2)[-1:]
    assert "reembolsada ($150.00)" in texts([status])[0]


def test_in_english_a_tumbler_pair_above_the_limit_waits_for_a_person_then_comes_back_refunded_with_its_note(stack):
    wa_id = new_wa_id()
    bought = buy_and_pick_up(
        stack,
        wa_id,
        "hi, 2 tumblers please",
        "that's all",
        "I'll pick it up",
        "Card",
        "Place order",
        "Paid!",
        "Thanks for",
    )
    invoice(stack, wa_id, "i need an invoice", "Issue invoice", "✅ Done! Your invoice", "601 General regime")
    on_hand = float(stock("TERMO", stack.env)["on_hand"])

    [reason] = say_and_wait(stack, wa_id, "i want to return the tumblers, they're unused")
    assert "How many" in texts([reason])[0]
    replies = say_and_wait(stack, wa_id, "2")  # a quantity, not the 2nd button of an earlier message
    assert "Why are you returning it?" in texts(replies)[-1], texts(bot_messages(stack, wa_id))[-4:]
    why = replies[-1]
    [outcome] = tap_and_wait(stack, wa_id, why, "Defective")
    [summary] = tap_and_wait(stack, wa_id, outcome, "Refund")
    [waiting] = tap_and_wait(stack, wa_id, summary, "Yes, register it")
    assert "A person on the team will review it" in texts([waiting])[0]
    listed = staff(stack, "GET", "/returns?status=requested").json()["returns"]
    mine = [r for r in listed if r["lines"] == [{"sku": "TERMO", "quantity": 2, "amount": "640.00"}]]
    assert len(mine) == 1
    return_id = mine[0]["id"]
    assert staff(stack, "POST", f"/returns/{return_id}/approve").json()["status"] == "approved"
    assert "Bring it to Av. 5 de Mayo 32" in texts([last_reply(stack, wa_id, "was approved")])[0]

    received = staff(stack, "POST", f"/returns/{return_id}/receive", json={"condition": "good"})
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "refunded" and received.json()["refund"]["provider"] == "sandbox"
    assert float(stock("TERMO", stack.env)["on_hand"]) == on_hand + 2
    assert "(2 × Steel tumbler)" in texts([last_reply(stack, wa_id, "We've received your return")])[0]
    assert "$640.00 (to your card)" in texts([last_reply(stack, wa_id, "We've refunded")])[0]
    documents = documents_after(stack, wa_id, "Here is credit note")
    assert [d["filename"].rsplit(".", 1)[1] for d in documents] == ["pdf", "xml"]
    xml = requests.get(documents[1]["link"], timeout=30).content
    assert schema_errors(xml) == [] and seal_is_valid(xml)
    with new_session() as session:
        note = session.get(m.Invoice, session.get(m.Return, return_id).credit_note_id)
        original = session.execute(
            select(m.Invoice).where(m.Invoice.order_id == bought.id, m.Invoice.kind == "ingreso")
        ).scalar_one()
    assert (note.related_uuid, note.relation_type, note.total) == (original.uuid, "01", original.total)
    [status] = say_and_wait(stack, wa_id, "have i been refunded?", new=2)[-1:]
    assert "refunded ($640.00)" in texts([status])[0]
