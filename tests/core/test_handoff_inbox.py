"""The handoff inbox's rules (comanda.services.handoff and handoff_messages), on SQLite and PostgreSQL:
who may claim, assign, answer and resolve a chat, race-free; replies through the outbox inside and outside
WhatsApp's 24-hour window; notes; the store's templates and canned replies from the catalog; and the
migration of the old ticket statuses."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text, update

from comanda import clock
from comanda import models as m
from comanda.db import dispose_engines, new_session, transaction
from comanda.errors import InvalidInput, NotFound
from comanda.migrate import upgrade
from comanda.services import handoff, handoff_messages
from comanda.services.handoff import TicketResolved, TicketTaken
from comanda.services.handoff_messages import Outgoing, WindowClosed, handoff_settings
from tests.helpers.console import add_staff, member, whatsapp_ticket


def compose(outgoing: Outgoing) -> dict:
    """The Graph message as the back office builds it (its own tests check the real one)."""
    if outgoing.template:
        return {"type": "template", "to": outgoing.recipient, "template": {"name": outgoing.template.name}}
    return {"type": "text", "to": outgoing.recipient, "text": {"body": outgoing.text}}


@pytest.fixture
def people(demo):
    add_staff("ana@cafe.mx", stores=["centro"])
    add_staff("beto@cafe.mx", stores=["centro"])
    add_staff("rita@cafe.mx", stores=["roma"])
    add_staff("gere@cafe.mx", role="manager", stores=["centro"])
    return {name: member(f"{name}@cafe.mx") for name in ("ana", "beto", "rita", "gere")}


def actor(who):
    return who.actor("127.0.0.1")


def test_a_ticket_waits_then_one_person_owns_it(people):
    ticket_id, _ = whatsapp_ticket()
    ana, beto = people["ana"], people["beto"]
    with transaction() as session:
        ticket = handoff.claim(session, ana, actor(ana), ticket_id)
        assert (ticket.status, ticket.assigned_to) == ("open", ana.id) and ticket.claimed_at is not None
    with transaction() as session:
        assert handoff.claim(session, ana, actor(ana), ticket_id).assigned_to == ana.id  # again: still hers
        with pytest.raises(TicketTaken):
            handoff.claim(session, beto, actor(beto), ticket_id)
    with new_session() as session:
        claims = session.execute(select(m.AuditEvent.actor).where(m.AuditEvent.action == "handoff.claim")).all()
        assert claims == [(f"staff:{ana.id}",)]


def test_two_people_claiming_at_once_one_wins(people):
    ticket_id, _ = whatsapp_ticket()
    results, start = {}, threading.Barrier(2)

    def take(name):
        who = people[name]
        start.wait()
        try:
            with transaction() as session:
                handoff.claim(session, who, actor(who), ticket_id)
            results[name] = "won"
        except TicketTaken:
            results[name] = "taken"

    threads = [threading.Thread(target=take, args=(name,)) for name in ("ana", "beto")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == ["taken", "won"]
    with new_session() as session:
        winner = people[next(n for n, r in results.items() if r == "won")]
        assert session.get(m.HandoffTicket, ticket_id).assigned_to == winner.id


def test_another_stores_ticket_does_not_exist_for_staff(people):
    ticket_id, _ = whatsapp_ticket()
    rita = people["rita"]
    with transaction() as session:
        for attempt in (
            lambda: handoff.claim(session, rita, actor(rita), ticket_id),
            lambda: handoff.resolve(session, ticket_id, actor(rita), rita),
            lambda: handoff_messages.add_note(session, rita, actor(rita), ticket_id, "hola"),
            lambda: handoff_messages.send_reply(session, rita, actor(rita), ticket_id, compose, text="hola"),
        ):
            with pytest.raises(NotFound):
                attempt()
        assert handoff.list_tickets(session, rita) == []
        with pytest.raises(NotFound):
            handoff.list_tickets(session, rita, "centro")


def test_lists_are_newest_first_and_filtered(people):
    older, _ = whatsapp_ticket("5215500000001", minutes_ago=30)
    newer, _ = whatsapp_ticket("5215500000002", minutes_ago=1)
    roma, _ = whatsapp_ticket("5215500000003", store="roma")
    ana = people["ana"]
    add_staff("duena@cafe.mx", role="owner")
    with transaction() as session:
        handoff.claim(session, ana, actor(ana), older)
        assert [t.id for t in handoff.list_tickets(session, ana)] == [newer, older]
        assert [t.id for t in handoff.list_tickets(session, ana, status="waiting")] == [newer]
        assert [t.id for t in handoff.list_tickets(session, ana, status="open")] == [older]
        assert [t.id for t in handoff.list_tickets(session, member("duena@cafe.mx"), "roma")] == [roma]
        with pytest.raises(InvalidInput):
            handoff.list_tickets(session, ana, status="closed")


def test_assigning_to_a_colleague_and_who_may_move_whose_chat(people):
    ticket_id, _ = whatsapp_ticket()
    ana, beto, rita, gere = people["ana"], people["beto"], people["rita"], people["gere"]
    with transaction() as session:
        with pytest.raises(InvalidInput):  # Rita works at Roma
            handoff.assign(session, ana, actor(ana), ticket_id, rita.id)
        assert handoff.assign(session, ana, actor(ana), ticket_id, beto.id).assigned_to == beto.id
    with transaction() as session:
        with pytest.raises(TicketTaken):  # Beto's now: Ana (staff) cannot take it back
            handoff.assign(session, ana, actor(ana), ticket_id, ana.id)
        assert handoff.assign(session, gere, actor(gere), ticket_id, ana.id).assigned_to == ana.id  # a manager may


def test_resolving_keeps_who_and_when_and_only_the_owner_or_a_manager_may(people):
    ticket_id, conversation = whatsapp_ticket()
    ana, beto = people["ana"], people["beto"]
    with transaction() as session:
        handoff.claim(session, ana, actor(ana), ticket_id)
    with transaction() as session:
        with pytest.raises(TicketTaken):
            handoff.resolve(session, ticket_id, actor(beto), beto)
    with transaction() as session:
        assert handoff.resolve(session, ticket_id, actor(ana), ana) is True  # the last one: the bot may speak
        ticket = session.get(m.HandoffTicket, ticket_id)
        assert (ticket.status, ticket.resolved_by, ticket.assigned_to) == ("resolved", ana.id, ana.id)
        assert ticket.resolved_at >= ticket.claimed_at >= ticket.created_at
        assert not handoff.has_open_ticket(session, conversation)
    with transaction() as session:
        assert handoff.resolve(session, ticket_id, actor(ana), ana) is True  # again: nothing changes
        with pytest.raises(TicketResolved):
            handoff.claim(session, beto, actor(beto), ticket_id)


def test_a_reply_goes_through_the_outbox_and_claims_a_waiting_ticket(people):
    ticket_id, conversation = whatsapp_ticket()
    ana, beto = people["ana"], people["beto"]
    with transaction() as session:
        reply = handoff_messages.send_reply(session, ana, actor(ana), ticket_id, compose, text=" ¡Hola Ana! ")
        reply_id = reply.id
    with new_session() as session:
        reply = session.get(m.HandoffReply, reply_id)
        row = session.get(m.OutboundMessage, reply.outbound_message_id)
        ticket = session.get(m.HandoffTicket, ticket_id)
        assert (row.channel, row.recipient, row.conversation_id, row.status) == (
            "whatsapp",
            "5215511112222",
            conversation,
            "queued",
        )
        assert row.payload == {"type": "text", "to": "5215511112222", "text": {"body": "¡Hola Ana!"}}
        assert (ticket.status, ticket.assigned_to) == ("open", ana.id)
        assert ticket.first_response_at is not None and reply.in_tracker is False
    with transaction() as session:
        with pytest.raises(TicketTaken):
            handoff_messages.send_reply(session, beto, actor(beto), ticket_id, compose, text="yo también")
        with pytest.raises(InvalidInput):
            handoff_messages.send_reply(session, ana, actor(ana), ticket_id, compose, text="   ")
        with pytest.raises(InvalidInput):
            handoff_messages.send_reply(session, ana, actor(ana), ticket_id, compose, text="x" * 4097)


def test_a_repeated_submit_sends_once(people):
    ticket_id, _ = whatsapp_ticket()
    ana = people["ana"]
    with transaction() as session:
        first = handoff_messages.send_reply(session, ana, actor(ana), ticket_id, compose, text="hola", client_key="k1")
        again = handoff_messages.send_reply(session, ana, actor(ana), ticket_id, compose, text="hola", client_key="k1")
        assert first.id == again.id
        assert session.execute(select(m.OutboundMessage)).scalars().all().__len__() == 1


def test_outside_the_window_only_a_template_goes(people):
    ticket_id, conversation = whatsapp_ticket()
    ana = people["ana"]
    with transaction() as session:
        session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == conversation)
            .values(last_inbound_at=clock.now() - timedelta(hours=25), language="en")
        )
    with transaction() as session:
        with pytest.raises(WindowClosed):
            handoff_messages.send_reply(session, ana, actor(ana), ticket_id, compose, text="hola")
        with pytest.raises(InvalidInput):  # the template takes two parameters
            handoff_messages.send_reply(
                session, ana, actor(ana), ticket_id, compose, template="comanda_staff_follow_up", params=["Ana"]
            )
        with pytest.raises(InvalidInput):
            handoff_messages.send_reply(session, ana, actor(ana), ticket_id, compose, template="nope", params=[])
        reply = handoff_messages.send_reply(
            session,
            ana,
            actor(ana),
            ticket_id,
            compose,
            template="comanda_staff_follow_up",
            params=["Ana", "Café Esquina Centro"],
        )
        assert reply.template == "comanda_staff_follow_up" and reply.params == ["Ana", "Café Esquina Centro"]
        assert reply.text.startswith("Hi Ana, this is Café Esquina Centro")  # the customer's language


def test_notes_are_private_and_audited(people):
    ticket_id, _ = whatsapp_ticket()
    beto = people["beto"]
    with transaction() as session:
        handoff_messages.add_note(session, beto, actor(beto), ticket_id, "cliente frecuente, trátala bien")
        with pytest.raises(InvalidInput):
            handoff_messages.add_note(session, beto, actor(beto), ticket_id, " ")
    with new_session() as session:
        assert [n.text for n in handoff_messages.notes(session, ticket_id)] == ["cliente frecuente, trátala bien"]
        assert session.execute(select(m.OutboundMessage)).first() is None  # nothing went to the customer
        assert session.execute(select(m.AuditEvent.ip).where(m.AuditEvent.action == "handoff.note")).scalar_one()


def test_canned_replies_and_templates_come_from_the_catalog(people):
    ticket_id, _ = whatsapp_ticket()
    with new_session() as session:
        store = session.get(m.Store, "centro")
        ticket = session.get(m.HandoffTicket, ticket_id)
        canned = handoff_messages.canned_replies(store, "es", "Ana", ticket)
        assert canned[0] == {
            "key": "hello",
            "text": f"¡Hola Ana! Soy del equipo de Café Esquina Centro. Ya vi tu mensaje (caso #{ticket_id}); "
            "¿en qué te ayudo?",
        }
        assert [t.language for t in handoff_messages.templates(store, "en")][0] == "en_US"
        assert store.handoff_warn_minutes == 5


@pytest.mark.parametrize(
    "block, problem",
    [
        ({"warn_minutes": 0}, "warn_minutes"),
        ({"templates": [{"name": "x", "language": "es_MX", "body": "Hola {{2}}"}]}, "parameters"),
        ({"templates": [{"name": "x"}]}, "body"),
        ({"canned_replies": [{"key": "a", "es": "hola {nombre}", "en": "hi"}]}, "unknown"),
        ({"canned_replies": [{"key": "a", "es": "hola"}]}, "no en text"),
    ],
)
def test_a_wrong_handoff_block_in_the_catalog_is_refused(block, problem):
    with pytest.raises(InvalidInput, match=problem):
        handoff_settings("centro", block)


OLD_ROWS = [
    "INSERT INTO businesses (id, name, timezone, currency, default_language, reservation_hold_minutes, "
    "payment_link_expiry_minutes, return_window_days, invoice_deadline, auto_approve_refund_up_to, "
    "handoff_after_consecutive_fallbacks, faq, created_at) "
    "VALUES ('b', 'B', 'America/Mexico_City', 'MXN', 'es', 15, 15, 30, 'same_month', 0, 2, '{}', :at)",
    "INSERT INTO stores (id, business_id, name, address, postal_code, hours, delivery_available, active, "
    "ticket_prefix, created_at) VALUES ('s', 'b', 'S', 'x', '06000', '{}', false, true, 'S', :at)",
    "INSERT INTO customers (id, consent_marketing, consent_fiscal_data, created_at, updated_at) "
    "VALUES (1, false, false, :at, :at)",
    "INSERT INTO conversations (id, store_id, customer_id, channel, created_at) VALUES ('c', 's', 1, 'whatsapp', :at)",
    "INSERT INTO staff_users (id, business_id, email, name, role, active, created_at) "
    "VALUES (7, 'b', 'a@b.mx', 'A', 'staff', true, :at)",
]


def test_old_statuses_are_migrated(database_url):
    """open → waiting, assigned → open, closed → resolved; a staff member's closed_by becomes resolved_by."""
    upgrade(database_url, "0011")
    engine = create_engine(database_url)
    at = clock.now().replace(tzinfo=None)
    with engine.begin() as conn:
        for statement in OLD_ROWS:
            conn.execute(text(statement), {"at": at})
        for ticket_id, status, closed_by in (
            (1, "open", None),
            (2, "assigned", None),
            (3, "closed", "staff:7"),
            (4, "closed", "cli:lupita"),
        ):
            conn.execute(
                text(
                    "INSERT INTO handoff_tickets (id, store_id, customer_id, conversation_id, reason, status, "
                    "assigned_to, created_at, closed_at, closed_by) VALUES (:id, 's', 1, 'c', 'requested', :status, "
                    ":owner, :at, :closed, :by)"
                ),
                {
                    "id": ticket_id,
                    "status": status,
                    "owner": 7 if status == "assigned" else None,
                    "at": at,
                    "closed": at if closed_by else None,
                    "by": closed_by,
                },
            )
    engine.dispose()
    upgrade(database_url)
    with new_session() as session:
        rows = session.execute(
            select(m.HandoffTicket.id, m.HandoffTicket.status, m.HandoffTicket.resolved_by).order_by(m.HandoffTicket.id)
        ).all()
        assert [tuple(r) for r in rows] == [
            (1, "waiting", None),
            (2, "open", None),
            (3, "resolved", 7),
            (4, "resolved", None),
        ]
        assert session.get(m.HandoffTicket, 3).resolved_at is not None
    with pytest.raises(Exception, match="(?i)check"):
        with transaction() as session:
            session.execute(update(m.HandoffTicket).where(m.HandoffTicket.id == 1).values(status="closed"))
    dispose_engines()


def test_with_rasa_away_a_reply_still_goes_and_reaches_the_tracker_later(people, monkeypatch):
    """The outbox sends it at once; the history shows it from the database; the handoff round appends it
    to the tracker once Rasa is back, once, however many rounds run."""
    from backoffice import handoffs
    from backoffice.handoff_view import history
    from integrations.rasa_api import RasaApi
    from tests.helpers.fake_rasa import TOKEN, serve_fake_rasa

    fake_rasa = next(serve_fake_rasa(monkeypatch))
    api = RasaApi(fake_rasa.url, TOKEN)
    ticket_id, conversation = whatsapp_ticket()
    ana = people["ana"]
    fake_rasa.refuse = 2  # the pause and the tracker append
    message = handoffs.reply_chat(ana, actor(ana), ticket_id, api, text="Hola, soy Ana")
    assert message["status"] == "sending" and fake_rasa.received == []
    with new_session() as session:
        shown = history(session, conversation, [], "/media/{}")
        assert [(x["from"], x["text"]) for x in shown] == [("staff", "Hola, soy Ana")]
    assert handoffs.track_replies(api) == 0  # too new: the request that sent it may still be at it
    clock.set_clock(lambda: clock.datetime.now(clock.timezone.utc) + timedelta(minutes=1))
    try:
        assert handoffs.track_replies(api) == 1
        assert handoffs.track_replies(api) == 0
    finally:
        clock.set_clock(None)
    [appended] = fake_rasa.received
    assert appended["body"][0]["metadata"]["from"] == "staff" and appended["body"][0]["text"] == "Hola, soy Ana"
    fake_rasa.close()
