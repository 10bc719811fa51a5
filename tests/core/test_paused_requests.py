"""Issue 11 item 6: while a person has the conversation (the bot paused), a different kind of request the
customer makes still becomes its own ticket (a privacy request, then a return), without the bot speaking."""

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import handoff
from tests.helpers.actions import ANA


def tickets():
    with new_session() as session:
        return [
            (t.reason, t.summary)
            for t in session.execute(select(m.HandoffTicket).order_by(m.HandoffTicket.id)).scalars()
        ]


def test_a_new_kind_of_request_while_paused_gets_its_own_ticket(demo):
    with transaction() as session:
        handoff.open_ticket(session, ANA, "privacy", "borren mis datos")
        opened = handoff.note_paused_request(session, ANA, "request_return", "quiero devolver la playera")
        assert opened is not None and opened.new
        again = handoff.note_paused_request(session, ANA, "request_return", "es talla M y no me quedó")
        assert again is not None and not again.new
    assert tickets() == [
        ("privacy", "borren mis datos"),
        ("return", "quiero devolver la playera · es talla M y no me quedó"),
    ]


def test_asking_for_a_person_or_anything_else_while_paused_opens_nothing(demo):
    with transaction() as session:
        handoff.open_ticket(session, ANA, "complaint", "llegó frío")
        assert handoff.note_paused_request(session, ANA, "human_handoff", "me hacen caso?") is None
        assert handoff.note_paused_request(session, ANA, "faq", "hacen envíos?") is None
        assert handoff.note_paused_request(session, ANA, None, "???") is None
    assert tickets() == [("complaint", "llegó frío")]


def test_without_an_open_ticket_nothing_is_noted(demo):
    """Paused without a ticket (staff resolved it as the message arrived): the bot's own turn decides."""
    with transaction() as session:
        assert handoff.note_paused_request(session, ANA, "privacy_request", "borren mis datos") is None
    assert tickets() == []
