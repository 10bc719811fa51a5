"""A row stored for a worker that lost track of it (found by the chaos tests: the inbox commit went through
while PostgreSQL's connection broke, the webhook failed, Meta's redelivery was a duplicate) must not be
renewed forever: a worker renews only what it is answering, so the row expires and is answered. On
SQLite and PostgreSQL."""

from comanda.db import transaction
from comanda.services import inbox
from tests.helpers.clock import later
from tests.helpers.leases import LEASE, claim, expired, received


def test_a_worker_renews_only_the_rows_it_is_answering(migrated):
    answering = received("wamid.held", "replica-a")
    stranded = received("wamid.stranded", "replica-a")
    with later(LEASE - 5):
        with transaction() as session:
            assert inbox.renew(session, "replica-a", LEASE, only={answering}) == 1
    with later(LEASE + 1):
        assert expired() == [stranded]
        assert claim(stranded, "replica-a") == 1  # the lease round takes it up (any replica may)


def test_a_worker_answering_nothing_renews_nothing(migrated):
    row = received("wamid.alone", "replica-a")
    with transaction() as session:
        assert inbox.renew(session, "replica-a", LEASE, only=set()) == 0
        assert inbox.renew(session, "replica-a", LEASE) == 1  # without ``only``: everything it owns
    assert expired() == [] and row
