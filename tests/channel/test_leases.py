"""Leases on the three queues (issue 10 item 6, issue 17): a claimed row stays with the process that
holds it while that process renews it; once the lease runs out any replica may take an inbound message
over, and a send or notification of unknown fate is given up (never sent twice) so that it stops
holding back the rest of its conversation. On SQLite and PostgreSQL."""

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import inbox, notifications, outbox
from tests.helpers.clock import later
from tests.helpers.documents import conversation, invoice_for
from tests.helpers.leases import LEASE, claim, expired, received


def test_an_acknowledged_message_is_its_receivers_until_the_lease_runs_out(migrated):
    row = received("wamid.1", "replica-a")
    assert expired() == [] and claim(row, "replica-b") is None
    assert claim(row, "replica-a") == 1
    with later(LEASE + 1):
        assert expired() == [row]
        assert claim(row, "replica-b") == 2  # replica-a died: replica-b answers it
        with transaction() as session:
            assert inbox.renew(session, "replica-a", LEASE) == 0  # no longer replica-a's
    with later(LEASE + 2):
        assert claim(row, "replica-a") is None
        with transaction() as session:
            inbox.finish(session, row, "processed")
        assert expired() == [] and claim(row, "replica-b") is None


def test_a_renewed_lease_keeps_the_message_with_its_worker(migrated):
    row = received("wamid.2", "replica-a")
    assert claim(row, "replica-a") == 1
    with later(LEASE - 5):
        with transaction() as session:
            assert inbox.renew(session, "replica-a", LEASE) == 1
    with later(LEASE + 10):
        assert expired() == [] and claim(row, "replica-b") is None
    with later(2 * LEASE):
        assert expired() == [row] and claim(row, "replica-b") == 2


def test_rows_from_before_leases_are_taken_at_once(migrated):
    with transaction() as session:
        row = inbox.record_inbound(session, "whatsapp", "wamid.3", "text", {}, sender="521")
    assert expired() == [row] and claim(row, "replica-b") == 1


def test_an_interrupted_send_is_given_up_when_its_lease_ends_and_the_conversation_goes_on(migrated):
    with transaction() as session:
        first, second = (
            outbox.enqueue(session, "whatsapp", "521", {"n": n}, conversation_id="c1", dedupe_key=f"w:{n}")
            for n in range(2)
        )
    with transaction() as session:
        assert [item.id for item in outbox.claim_due(session, "whatsapp")] == [first]  # then the sender dies
    with later(outbox.SEND_LEASE_SECONDS - 1):
        with transaction() as session:
            assert outbox.claim_due(session, "whatsapp") == []  # maybe still being sent: the next one waits
    with later(outbox.SEND_LEASE_SECONDS + 1):
        with transaction() as session:
            assert [item.id for item in outbox.claim_due(session, "whatsapp")] == [second]
        with new_session() as session:
            row = session.get(m.OutboundMessage, first)
            assert row.status == "given_up" and "not resent" in row.last_error
        with transaction() as session:
            assert outbox.claim_due(session, "whatsapp") == []  # never sent twice


def test_an_interrupted_notification_is_given_up_when_its_lease_ends(demo):
    with transaction() as session:
        conversation_id = conversation(session, "+525511110009")
        order = session.get(m.Invoice, invoice_for(session, conversation_id)).order_id
        notifications.notify(session, session.get(m.Order, order), "paid")
        notifications.notify(session, session.get(m.Order, order), "ready")
    with transaction() as session:
        [paid] = notifications.claim_due(session)  # then the dispatcher dies
    with transaction() as session:
        assert notifications.claim_due(session) == []
    with later(notifications.LEASE_SECONDS + 1):
        with transaction() as session:
            assert [due.event for due in notifications.claim_due(session)] == ["ready"]
        with new_session() as session:
            assert session.get(m.Notification, paid.id).status == "given_up"


def test_a_released_message_is_taken_again_with_its_error_kept(migrated):
    row = received("wamid.4", "replica-a")
    assert claim(row, "replica-a") == 1
    with transaction() as session:
        inbox.release(session, row, "OperationalError: the database went away")
    assert expired() == [row]
    assert claim(row, "replica-a") == 2
    with new_session() as session:
        assert session.get(m.InboundMessage, row).error.startswith("OperationalError")
