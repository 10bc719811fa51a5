"""Handoff tickets (comanda.services.handoff), the back office's notice when nobody took one in time, and
`comanda handoffs list|show|resolve`, against a fake Rasa HTTP API."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from backoffice.handoffs import notify_unanswered
from cli.main import main
from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import handoff
from integrations.rasa_api import RESUME, RasaApi
from tests.helpers.actions import ANA
from tests.helpers.fake_rasa import TOKEN, serve_fake_rasa

BETO = "centro:whatsapp:+525533334444"


@pytest.fixture
def fake_rasa(monkeypatch):
    yield from serve_fake_rasa(monkeypatch)


def open_ticket(conversation: str, reason: str, summary: str, minutes_ago: int = 0) -> int:
    with transaction() as session:
        ticket = handoff.open_ticket(session, conversation, reason, summary).ticket
        ticket.created_at = clock.now() - timedelta(minutes=minutes_ago)
        return ticket.id


def test_a_request_of_the_same_kind_joins_its_ticket_another_kind_gets_its_own(demo):
    first = open_ticket(ANA, "privacy", "borren mis datos")
    assert open_ticket(ANA, "privacy", "y mi teléfono") == first
    other = open_ticket(ANA, "return", "la playera no me quedó")
    assert other != first
    with new_session() as session:
        assert session.get(m.HandoffTicket, first).summary == "borren mis datos · y mi teléfono"
        assert [t.id for t in handoff.open_tickets(session)] == [first, other]


def test_nobody_took_it_in_time_the_customer_is_told_once(demo, fake_rasa):
    late = open_ticket(ANA, "requested", "hola?", minutes_ago=11)  # the demo business waits 10 minutes
    open_ticket(BETO, "requested", "ayuda", minutes_ago=3)
    api = RasaApi(fake_rasa.url, TOKEN)
    assert notify_unanswered(api) == 1
    assert fake_rasa.received == [
        {"conversation": ANA, "path": "tracker/events", "body": RESUME},
        {
            "conversation": ANA,
            "path": "trigger_intent",
            "body": {"name": "EXTERNAL_handoff_unanswered", "entities": {}},
        },
    ]
    assert notify_unanswered(api) == 0  # told once
    with new_session() as session:
        assert session.get(m.HandoffTicket, late).unanswered_notice_at is not None


def test_a_notice_rasa_did_not_take_is_tried_again(demo, fake_rasa):
    open_ticket(ANA, "requested", "hola?", minutes_ago=30)
    fake_rasa.refuse = 1
    api = RasaApi(fake_rasa.url, TOKEN)
    assert notify_unanswered(api) == 0 and fake_rasa.received == []
    assert notify_unanswered(api) == 1 and len(fake_rasa.received) == 2


def test_the_waiting_time_is_the_businesss(demo, fake_rasa):
    with transaction() as session:
        session.execute(update(m.Business).values(handoff_unanswered_minutes=45))
    open_ticket(ANA, "requested", "hola?", minutes_ago=30)
    assert notify_unanswered(RasaApi(fake_rasa.url, TOKEN)) == 0


def test_the_command_line_lists_shows_and_resolves_resuming_the_bot(demo, fake_rasa, capsys):
    privacy = open_ticket(ANA, "privacy", "borren mis datos", minutes_ago=75)
    complaint = open_ticket(ANA, "complaint", "llegó frío")
    assert main(["handoffs", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{privacy:<5} waiting   privacy" in listed and "1 h 15 min" in listed and listed.endswith("2 open\n")
    assert main(["handoffs", "show", str(complaint)]) == 0
    shown = capsys.readouterr().out
    assert f"conversation: {ANA}" in shown and "summary: llegó frío" in shown
    assert main(["handoffs", "resolve", str(privacy), "--by", "lupita"]) == 0
    assert "other open tickets" in capsys.readouterr().out and fake_rasa.received == []  # still quiet
    assert main(["handoffs", "resolve", str(complaint)]) == 0
    assert "answers" in capsys.readouterr().out
    assert fake_rasa.received == [{"conversation": ANA, "path": "tracker/events", "body": RESUME}]
    with new_session() as session:
        closed = session.get(m.HandoffTicket, privacy)
        assert (closed.status, closed.resolved_by) == ("resolved", None) and closed.resolved_at is not None
        audit = session.execute(
            select(m.AuditEvent.action, m.AuditEvent.actor).where(m.AuditEvent.entity_id == str(privacy))
        ).one()
        assert tuple(audit) == ("handoff.resolve", "cli:lupita")


def test_resolving_with_rasa_down_says_how_to_finish(demo, fake_rasa, capsys):
    ticket = open_ticket(ANA, "requested", "hola?")
    fake_rasa.refuse = 1
    assert main(["handoffs", "resolve", str(ticket)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "run the same command again" in error and error.count("\n") == 1
    assert main(["handoffs", "resolve", str(ticket)]) == 0  # resolved already: resuming again is harmless
    assert main(["handoffs", "show", "999"]) == 2
