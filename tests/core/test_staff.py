"""Staff accounts on real SQL (SQLite and PostgreSQL): passwords hashed with argon2id, sessions that expire
(idle and absolute), logins throttled per account and per address in the database, personal tokens stored
hashed and revocable, disabled accounts refused, and every query scoped by the member's stores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.enums import LoginOutcome, SessionEndReason
from comanda.errors import InvalidInput, NotFound
from comanda.services import staff
from comanda.services.staff import AccountExists
from tests.helpers.console import PASSWORD, TEST_ACTOR, add_staff, member, personal_token, queued_order

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc)
ROMA_CUSTOMER = "roma:whatsapp:+525533334444"


@pytest.fixture(autouse=True)
def fixed_clock():
    set_clock(lambda: T0)
    yield
    set_clock(None)


def at(moment: datetime) -> None:
    set_clock(lambda: moment)


def login(email: str, password: str = PASSWORD, ip: str = "203.0.113.7") -> staff.LoginResult:
    with transaction() as session:
        return staff.attempt_login(session, email, password, ip, "pytest")


def session_member(token: str) -> staff.StaffMember | None:
    with transaction() as session:
        return staff.session_member(session, token)


def test_accounts_are_checked_and_passwords_stored_as_argon2id(demo):
    with transaction() as session:
        user, generated = staff.add_staff(
            session, TEST_ACTOR, " Ana@Cafe.MX ", "Ana  López", "staff", ["centro", "roma"]
        )
        assert (user.email, user.name, [s.id for s in user.stores]) == ("ana@cafe.mx", "Ana López", ["centro", "roma"])
        assert generated and len(generated) >= 20 and generated not in user.password_hash
        assert user.password_hash.startswith("$argon2id$")
        assert user.language == "es"  # the business's language
    refused = [
        (dict(email="not-an-email", name="X", role="staff", store_ids=["centro"]), InvalidInput),
        (dict(email="x@cafe.mx", name="X", role="cook", store_ids=["centro"]), InvalidInput),
        (dict(email="x@cafe.mx", name="X", role="staff", store_ids=[]), InvalidInput),
        (dict(email="x@cafe.mx", name="X", role="staff", store_ids=["polanco"]), InvalidInput),
        (dict(email="x@cafe.mx", name="X", role="owner", store_ids=["centro"]), InvalidInput),
        (dict(email="x@cafe.mx", name="X", role="staff", store_ids=["centro"], password="short"), InvalidInput),
        (dict(email="ANA@cafe.mx", name="Ana", role="staff", store_ids=["centro"]), AccountExists),
    ]
    for kwargs, error in refused:
        with pytest.raises(error):
            with transaction() as session:
                staff.add_staff(session, TEST_ACTOR, **kwargs)
    assert login("ana@cafe.mx", generated).outcome == LoginOutcome.SUCCEEDED
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.StaffUser)).scalar() == 1
        events = session.execute(select(m.AuditEvent.action, m.AuditEvent.actor, m.AuditEvent.ip)).all()
    assert ("staff.added", "test", None) in events
    assert ("staff.login", f"staff:{member('ana@cafe.mx').id}", "203.0.113.7") in events


def test_a_login_opens_a_session_kept_as_a_hash_that_ends_when_idle_or_old(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_CONSOLE_SESSION_IDLE_MINUTES", "30")
    monkeypatch.setenv("COMANDA_CONSOLE_SESSION_HOURS", "2")
    add_staff("ana@cafe.mx")
    result = login("ANA@cafe.mx")
    assert result.outcome == LoginOutcome.SUCCEEDED and result.member.store_ids == {"centro"}
    with new_session() as session:
        [row] = session.execute(select(m.StaffSession)).scalars()
        assert result.token not in (row.id, row.user_agent) and len(row.id) == 64
    for minutes in (29, 58, 87, 116):  # used every 29 minutes: alive, until the absolute limit
        at(T0 + timedelta(minutes=minutes))
        assert session_member(result.token) is not None, minutes
    at(T0 + timedelta(hours=2))
    assert session_member(result.token) is None
    again = login("ana@cafe.mx")
    at(T0 + timedelta(hours=2, minutes=31))  # unused for 31 minutes
    assert session_member(again.token) is None
    with new_session() as session:
        reasons = sorted(session.execute(select(m.StaffSession.end_reason)).scalars())
    assert reasons == [SessionEndReason.EXPIRED, SessionEndReason.IDLE]
    assert session_member("forged") is None and session_member(None) is None


def test_logout_and_disabling_end_sessions_and_a_disabled_account_cannot_log_in(demo):
    add_staff("ana@cafe.mx")
    first, second = login("ana@cafe.mx"), login("ana@cafe.mx")
    with transaction() as session:
        staff.end_session(session, first.token, TEST_ACTOR)
    assert session_member(first.token) is None and session_member(second.token) is not None
    with transaction() as session:
        staff.disable_staff(session, TEST_ACTOR, staff.find_staff(session, "ana@cafe.mx"))
    assert session_member(second.token) is None
    assert login("ana@cafe.mx").outcome == LoginOutcome.DISABLED
    assert login("ana@cafe.mx", "wrong password").outcome == LoginOutcome.WRONG_PASSWORD  # says nothing more
    with transaction() as session:
        staff.enable_staff(session, TEST_ACTOR, staff.find_staff(session, "ana@cafe.mx"))
    assert login("ana@cafe.mx").outcome == LoginOutcome.SUCCEEDED


def test_wrong_passwords_are_throttled_per_account_then_forgiven(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")
    monkeypatch.setenv("COMANDA_LOGIN_THROTTLE_MINUTES", "15")
    add_staff("ana@cafe.mx")
    for n in range(3):
        at(T0 + timedelta(minutes=n))
        assert login("ana@cafe.mx", "guess", ip=f"198.51.100.{n}").outcome == LoginOutcome.WRONG_PASSWORD
    blocked = login("ana@cafe.mx", PASSWORD, ip="198.51.100.9")  # even the right password, from anywhere
    assert blocked.outcome == LoginOutcome.THROTTLED and blocked.retry_after_seconds == 13 * 60 + 1
    assert login("bob@cafe.mx", "guess", ip="198.51.100.9").outcome == LoginOutcome.UNKNOWN_ACCOUNT  # others: no
    at(T0 + timedelta(minutes=15, seconds=1))  # the first failure left the window
    assert login("ana@cafe.mx").outcome == LoginOutcome.SUCCEEDED


def test_guesses_from_one_address_are_throttled_across_accounts(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_LOGIN_MAX_FAILURES_PER_ADDRESS", "4")
    add_staff("ana@cafe.mx")
    for n in range(4):
        assert login(f"user{n}@cafe.mx", "guess", ip="192.0.2.1").outcome == LoginOutcome.UNKNOWN_ACCOUNT
    assert login("ana@cafe.mx", ip="192.0.2.1").outcome == LoginOutcome.THROTTLED
    assert login("ana@cafe.mx", ip="192.0.2.2").outcome == LoginOutcome.SUCCEEDED
    with new_session() as session:
        outcomes = session.execute(select(m.LoginAttempt.outcome).order_by(m.LoginAttempt.id)).scalars().all()
    assert outcomes[-2:] == [LoginOutcome.THROTTLED, LoginOutcome.SUCCEEDED]


def test_personal_tokens_are_stored_hashed_and_stop_when_revoked_or_disabled(demo):
    add_staff("ana@cafe.mx")
    token = personal_token("ana@cafe.mx")
    other = personal_token("ana@cafe.mx")
    assert token.startswith(staff.TOKEN_PREFIX) and len(token) > 40
    with transaction() as session:
        assert staff.token_member(session, token).email == "ana@cafe.mx"
        rows = staff.list_tokens(session, staff.find_staff(session, "ana@cafe.mx"))
        assert all(token not in (r.token_hash, r.prefix) for r in rows) and rows[0].last_used_at == T0
        assert staff.token_member(session, token[:-1] + "x") is None
        assert staff.token_member(session, "Bearer nonsense") is None
        user = staff.find_staff(session, "ana@cafe.mx")
        assert staff.revoke_tokens(session, TEST_ACTOR, user, [rows[0].id]) == [rows[0].id]
        assert staff.revoke_tokens(session, TEST_ACTOR, user, [rows[0].id]) == []  # already revoked
        with pytest.raises(NotFound):
            staff.revoke_tokens(session, TEST_ACTOR, user, [999])
    with transaction() as session:
        assert staff.token_member(session, token) is None and staff.token_member(session, other) is not None
        staff.disable_staff(session, TEST_ACTOR, staff.find_staff(session, "ana@cafe.mx"))
    with transaction() as session:
        assert staff.token_member(session, other) is None


def test_every_query_is_scoped_by_the_members_stores(demo):
    centro_order = queued_order()
    roma_order = queued_order(ROMA_CUSTOMER, items=(("CONCHA", 1),))
    add_staff("ana@cafe.mx", stores=["centro"])
    add_staff("rosa@cafe.mx", stores=["roma"])
    add_staff("dueno@cafe.mx", role="owner")
    ana, rosa, owner = member("ana@cafe.mx"), member("rosa@cafe.mx"), member("dueno@cafe.mx")
    assert owner.store_ids == {"centro", "roma"} and owner.is_owner
    with new_session() as session:
        assert staff.visible_order(session, ana, centro_order).id == centro_order
        with pytest.raises(NotFound):
            staff.visible_order(session, ana, roma_order)
        with pytest.raises(NotFound):
            staff.visible_order(session, rosa, centro_order)
        assert staff.visible_order(session, owner, roma_order).id == roma_order
        with pytest.raises(NotFound):
            staff.visible_conversation(session, rosa, "centro:whatsapp:+525511112222")
        ana_customers = session.execute(staff.visible_customers(select(m.Customer.phone), ana)).scalars().all()
        rosa_customers = session.execute(staff.visible_customers(select(m.Customer.phone), rosa)).scalars().all()
        assert (ana_customers, rosa_customers) == (["+525511112222"], ["+525533334444"])
        with pytest.raises(NotFound):
            staff.visible_customer(session, rosa, session.get(m.Order, centro_order).customer_id)
        assert staff.store_filter(ana, None) == ["centro"] and staff.store_filter(owner, "roma") == ["roma"]
        with pytest.raises(NotFound):
            staff.store_filter(ana, "roma")


def test_the_last_owner_stays_and_access_changes_are_audited(demo):
    add_staff("dueno@cafe.mx", role="owner")
    add_staff("ana@cafe.mx")
    with transaction() as session:
        owner = staff.find_staff(session, "dueno@cafe.mx")
        with pytest.raises(InvalidInput):
            staff.disable_staff(session, TEST_ACTOR, owner)
        with pytest.raises(InvalidInput):
            staff.change_access(session, TEST_ACTOR, owner, "manager", ["centro"])
        ana = staff.find_staff(session, "ana@cafe.mx")
        staff.change_access(session, TEST_ACTOR, ana, "manager", ["roma", "centro"])
    assert member("ana@cafe.mx").store_ids == {"roma", "centro"}
    with transaction() as session:
        staff.change_access(session, TEST_ACTOR, staff.find_staff(session, "ana@cafe.mx"), "owner", [])
        staff.disable_staff(session, TEST_ACTOR, staff.find_staff(session, "dueno@cafe.mx"))  # another owner now
        actions = session.execute(select(m.AuditEvent.action).order_by(m.AuditEvent.id)).scalars().all()
    assert actions[-3:] == ["staff.access_changed", "staff.access_changed", "staff.disabled"]


def test_a_new_password_ends_sessions_and_the_demo_owner_is_made_once(demo):
    with transaction() as session:
        email, password = staff.create_demo_owner(session, TEST_ACTOR)
        assert staff.create_demo_owner(session, TEST_ACTOR) is None
    assert email == "owner@cafe-esquina.example" and member(email).is_owner
    session_token = login(email, password).token
    with transaction() as session:
        generated = staff.set_password(session, TEST_ACTOR, staff.find_staff(session, email))
    assert session_member(session_token) is None
    assert login(email, password).outcome == LoginOutcome.WRONG_PASSWORD
    assert login(email, generated).outcome == LoginOutcome.SUCCEEDED


def test_the_csrf_token_belongs_to_its_session():
    assert staff.csrf_matches("session-a", staff.csrf_token("session-a"))
    assert not staff.csrf_matches("session-b", staff.csrf_token("session-a"))
    assert not staff.csrf_matches("session-a", None) and not staff.csrf_matches("session-a", "")
