"""Ordering end to end in the WhatsApp simulator: free text in Spanish and English, buttons and lists
tapped as Meta posts them, the cart and the order in the database, the stock as `comanda stock` shows it."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from sqlalchemy import select, update

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from tests.helpers.paths import ROOT
from tests.helpers.simulator import (
    bot_messages,
    customer_says,
    new_wa_id,
    say_and_wait,
    stock,
    tap_and_wait,
    texts,
    wait_replies,
)
from tests.helpers.stack import say_rest
from tests.helpers.waiting import wait_for


def test_a_spanish_order_with_modifiers_edited_and_checked_out_for_pickup(stack):
    wa_id = new_wa_id()
    conversation = f"centro:whatsapp:+52{wa_id[3:]}"
    before = stock("TACO-PASTOR", stack.env)
    replies = texts(
        say_and_wait(
            stack,
            wa_id,
            "hola! me das 3 de pastor con piña, 2 horchatas y un taro grande sin azúcar porfa",
            new=3,
            name="Ana",
        )
    )
    assert replies[0].startswith(
        "✅ Agregué: 3 × Taco al pastor (con piña), 2 × Agua de horchata (500 ml) y "
        "1 × Té de taro con leche (grande, sin azúcar)"
    )
    assert "Total: $231.00" in replies[1]  # 66 + 70 + 95
    replies = texts(say_and_wait(stack, wa_id, "quítale una horchata", new=2))
    assert "• 1 × Agua de horchata (500 ml) — $35.00" in replies[-1] and "Total: $196.00" in replies[-1]
    [question] = say_and_wait(stack, wa_id, "eso es todo")
    assert texts([question]) == ["¿Pasas a recoger tu pedido o te lo llevamos?"]
    [payment] = tap_and_wait(stack, wa_id, question, "Paso a recoger")  # the profile name is the order's name
    assert payment["message"]["interactive"]["body"]["text"] == "¿Cómo quieres pagar?"
    [summary] = tap_and_wait(stack, wa_id, payment, "Efectivo al recoger")
    body = summary["message"]["interactive"]["body"]["text"]
    assert "• 3 × Taco al pastor (con piña) — $66.00" in body and "👤 A nombre de Ana" in body
    assert "*Total: $196.00*" in body
    [placed] = tap_and_wait(stack, wa_id, summary, "Confirmar")
    assert texts([placed])[0].startswith("🎉 ¡Pedido confirmado! Tu número es *C-")
    with new_session() as session:
        order = session.execute(select(m.Order).where(m.Order.conversation_id == conversation)).scalar_one()
        assert (order.status, order.fulfilment, order.payment_method, order.total) == (
            "received",
            "pickup",
            "cash",
            order.subtotal,
        )
        assert [(cl.sku, cl.quantity) for cl in order.lines] == [("TACO-PASTOR", 3), ("HORCHATA", 1), ("TARO-MT", 1)]
    after = stock("TACO-PASTOR", stack.env)
    assert float(after["on_hand"]) == float(before["on_hand"]) - 3  # sold: cash on pickup commits the hold
    status = texts(say_and_wait(stack, wa_id, "ya está mi pedido?"))[0]
    assert order.ticket_code in status and "recibido" in status


def test_an_english_order_asks_for_the_shirt_size_and_adds_during_checkout(stack):
    wa_id = new_wa_id()
    added, _, _ = say_and_wait(stack, wa_id, "hi! one large taro milk tea, half sugar please", new=3, name="Kim")
    assert texts([added])[0] == "✅ Added: 1 × Taro milk tea (large, half sugar)."
    [which] = say_and_wait(stack, wa_id, "and a black t-shirt")
    rows = which["message"]["interactive"]["action"]["sections"][0]["rows"]
    assert [r["title"] for r in rows] == ["S / black", "M / black", "L / black", "XL / black"]
    replies = tap_and_wait(stack, wa_id, which, "M / black", new=3)
    assert "1 × Café Esquina T-shirt (M / black) — $250.00" in texts(replies)[1]
    say_and_wait(stack, wa_id, "that's all, how much is it?")
    replies = say_and_wait(stack, wa_id, "oh wait, add 2 conchas too", new=3)
    assert "Total: $381.00" in texts(replies)[1]  # 95 + 250 + 36
    assert texts(replies)[2] == "Will you pick up your order, or shall we deliver it?"  # the form carries on
    [stopped] = say_and_wait(stack, wa_id, "actually cancel that, I'll pay later")
    assert texts([stopped]) == ["OK, we'll leave the payment for later. Your cart is saved 🛒."]


def test_the_rest_channel_and_the_shell_can_order_too(stack):
    reply = say_rest(stack, "e2e-rest-order", "quiero 2 conchas y un americano chico")
    assert "✅ Agregué: 2 × Concha y 1 × Café americano (chico)" in reply and "Total: $76.00" in reply


def processed(wa_message_id: str) -> bool:
    """The bot has finished with this inbound message (answered, or had nothing to say)."""
    with new_session() as session:
        status = session.execute(
            select(m.InboundMessage.status).where(m.InboundMessage.external_id == wa_message_id)
        ).scalar_one_or_none()
    return status == "processed"


def test_a_delivery_to_a_real_address_whatever_the_nlu_makes_of_it(stack):
    """Issue 11: addresses were read as orders, questions or cancellations and asked for again and again
    (the issue's other addresses: tests/actions/test_conversations.py and tests/stories/test_paying.yml)."""
    wa_id = new_wa_id()
    conversation = f"centro:whatsapp:+52{wa_id[3:]}"
    say_and_wait(stack, wa_id, "quiero una bolsa de café en grano y 2 conchas", new=3, name="Isabel")
    [question] = say_and_wait(stack, wa_id, "eso es todo")
    [postal_code] = tap_and_wait(stack, wa_id, question, "Envío a domicilio")
    assert "código postal" in texts([postal_code])[0]
    [address] = say_and_wait(stack, wa_id, "06010")
    assert texts([address])[0].startswith("¿A qué dirección?")
    [payment] = say_and_wait(stack, wa_id, "Donceles 45 interior 2, entre Brasil y Argentina")
    [summary] = tap_and_wait(stack, wa_id, payment, "Tarjeta")
    body = summary["message"]["interactive"]["body"]["text"]
    assert "🛵 Envío a Donceles 45 interior 2, entre Brasil y Argentina, CP 06010 ($35.00)" in body
    assert "*Total: $251.00*" in body  # 180 + 36 + 35: the summary's total is the order's
    [link] = tap_and_wait(stack, wa_id, summary, "Confirmar")
    assert link["message"]["interactive"]["action"]["parameters"]["display_text"] == "Pagar $251.00"
    with new_session() as session:
        order = session.execute(select(m.Order).where(m.Order.conversation_id == conversation)).scalar_one()
    assert (order.delivery_address, order.total) == ("Donceles 45 interior 2, entre Brasil y Argentina", 251)


def test_a_person_takes_over_the_bot_waits_and_answers_again_once_resolved(stack):
    """Issue 11: after a handoff the bot kept answering ("me hacen caso?" got the delivery FAQ)."""
    wa_id = new_wa_id()
    conversation = f"centro:whatsapp:+52{wa_id[3:]}"
    [handed] = say_and_wait(stack, wa_id, "quiero hablar con una persona por favor")
    assert "una persona del equipo" in texts([handed])[0]
    before = len(bot_messages(stack, wa_id))
    asked = customer_says(stack, wa_id, "me hacen caso? hacen envíos?")
    assert wait_for(lambda: processed(asked), timeout=40)
    assert len(bot_messages(stack, wa_id)) == before  # paused: the message is there for staff, the bot is quiet
    with transaction() as session:
        ticket = session.execute(
            select(m.HandoffTicket).where(m.HandoffTicket.conversation_id == conversation)
        ).scalar_one()
        ticket_id = ticket.id
    listed = subprocess.run(
        [sys.executable, "-m", "cli", "handoffs", "list"],
        capture_output=True,
        text=True,
        env=stack.env,
        cwd=ROOT,
        timeout=60,
    )
    assert listed.returncode == 0 and conversation in listed.stdout
    resolved = subprocess.run(
        [sys.executable, "-m", "cli", "handoffs", "resolve", str(ticket_id), "--by", "lupita"],
        capture_output=True,
        text=True,
        env=stack.env,
        cwd=ROOT,
        timeout=60,
    )
    assert resolved.returncode == 0, resolved.stderr
    [hours] = say_and_wait(stack, wa_id, "¿a qué hora abren?")
    assert "07:30" in texts([hours])[0]


def test_nobody_takes_the_ticket_in_time_the_customer_may_carry_on_with_the_bot(stack):
    wa_id = new_wa_id()
    conversation = f"centro:whatsapp:+52{wa_id[3:]}"
    say_and_wait(stack, wa_id, "quiero hablar con alguien")
    before = len(bot_messages(stack, wa_id))
    with transaction() as session:  # the demo business waits 10 minutes: this ticket is 11 minutes old
        session.execute(
            update(m.HandoffTicket)
            .where(m.HandoffTicket.conversation_id == conversation)
            .values(created_at=clock.now() - timedelta(minutes=11))
        )
    [offer] = wait_replies(stack, wa_id, count=before + 1, timeout=90)[before:]  # the back office's sweep
    assert texts([offer])[0].startswith("Perdón, nadie del equipo ha podido contestarte en 10 minutos")
    [carry_on] = tap_and_wait(stack, wa_id, offer, "Seguir con el bot")
    assert texts([carry_on])[0].startswith("Va, sigo contigo")
    [hours] = say_and_wait(stack, wa_id, "¿a qué hora abren?")
    assert "07:30" in texts([hours])[0]


def test_the_first_english_list_is_all_english(stack):
    """Issue 11: the first English list button read "Ver opciones" (the tracker was not saved yet)."""
    wa_id = new_wa_id()
    [menu] = say_and_wait(stack, wa_id, "hi, what's on the menu?")
    assert menu["message"]["interactive"]["type"] == "list"
    assert menu["message"]["interactive"]["action"]["button"] == "See options"
