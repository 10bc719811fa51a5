"""Conversations, a person takes over (issue 11 item 6): the bot is quiet while the ticket is open, each
kind of request the customer makes meanwhile is a ticket of its own, and resolving the last ticket
gives the conversation back to the bot."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.paths import ROOT
from tests.helpers.simulator import Chat


def tickets(chat: Chat):
    with new_session() as session:
        return [
            (t.id, t.reason, t.status, t.summary)
            for t in session.execute(
                select(m.HandoffTicket).where(m.HandoffTicket.conversation_id == chat.id).order_by(m.HandoffTicket.id)
            ).scalars()
        ]


def comanda(stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=stack.env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_privacy_request_then_a_return_are_two_tickets_and_the_bot_stays_quiet(stack):
    """A privacy request then a return became one ticket with the first reason."""
    chat = Chat(stack)
    chat.says("quiero que borren mis datos personales").shows("Tus datos son tuyos 🔒")
    assert chat.says("y también quiero devolver una playera que compré la semana pasada") == []
    assert chat.says("me hacen caso??") == []
    assert [(reason, status) for _, reason, status, _ in tickets(chat)] == [
        ("privacy", "waiting"),
        ("return", "waiting"),
    ]
    assert "devolver una playera" in tickets(chat)[1][3]


def test_a_complaint_waits_for_a_person_then_the_bot_answers_again(stack):
    chat = Chat(stack)
    chat.says("el pedido de ayer llegó frío y tarde, qué mala onda").shows("Lamento mucho lo que pasó")
    assert chat.says("hola?? hacen envíos?") == []  # paused: staff read it, the bot does not answer
    [(ticket_id, reason, _, _)] = tickets(chat)
    assert reason == "complaint"
    assert chat.id in comanda(stack, "handoffs", "list")
    comanda(stack, "handoffs", "resolve", str(ticket_id), "--by", "lupita")
    chat.says("¿a qué hora abren mañana?").shows("07:30")


def test_an_english_customer_asks_for_a_human(stack):
    chat = Chat(stack, name="Sam")
    chat.says("can I talk to a real person please").shows("I've passed your conversation to a person")
    assert chat.says("thanks, I'll wait") == []
    assert [reason for _, reason, _, _ in tickets(chat)] == ["requested"]
