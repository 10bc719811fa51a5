"""The staff console and the staff API over real HTTP, in the back-office process as `comanda run` starts it,
on SQLite and PostgreSQL: login and its cookie, CSRF, throttling, disabled accounts, expired sessions, per-store
access (another store's order is 404), personal tokens, live updates across two replicas, the public board,
and owners managing staff."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import List

import pytest
import requests
from sqlalchemy import select, update

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import staff
from tests.helpers.console import (
    PASSWORD,
    TEST_ACTOR,
    ConsoleClient,
    EventStream,
    add_staff,
    order_row,
    personal_token,
    queued_order,
)

ROMA_CUSTOMER = "roma:whatsapp:+525533334444"


@pytest.fixture
def people(demo):
    add_staff("ana@cafe.mx", stores=["centro"])
    add_staff("rosa@cafe.mx", stores=["roma"], language="en")
    add_staff("dueno@cafe.mx", role="owner")


def cookie_header(response: requests.Response) -> str:
    return next(v for k, v in response.raw.headers.items() if k.lower() == "set-cookie" and "comanda_session=" in v)


def audit_actions(action: str) -> List[tuple]:
    with new_session() as session:
        return session.execute(
            select(m.AuditEvent.actor, m.AuditEvent.ip).where(m.AuditEvent.action == action).order_by(m.AuditEvent.id)
        ).all()


def test_login_sets_a_strict_session_cookie_and_logout_ends_it(people, console_url):
    client = ConsoleClient(console_url)
    assert client.get("/console/queue").headers["Location"] == "/console/login?next=/console/queue"
    answer = client.login("ANA@cafe.mx")
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/queue"
    cookie = cookie_header(answer)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here: a Secure cookie would never come back
    page = client.get("/console/queue")
    assert page.status_code == 200 and "Fila de pedidos" in page.text and "Ana" in page.text
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'src="http' not in page.text and 'href="http' not in page.text  # nothing from the internet
    assert client.post("/console/logout", htmx=False).status_code == 303
    assert client.get("/console/queue").status_code == 303
    ana = f"staff:{staff_id('ana@cafe.mx')}"
    assert audit_actions("staff.login") == [(ana, "127.0.0.1")] and audit_actions("staff.logout") == [
        (ana, "127.0.0.1")
    ]


def staff_id(email: str) -> int:
    with new_session() as session:
        return staff.find_staff(session, email).id


def test_a_login_without_its_csrf_token_or_with_a_wrong_password_is_refused(people, console_url):
    client = ConsoleClient(console_url)
    bare = requests.post(
        f"{console_url}/console/login", data={"email": "ana@cafe.mx", "password": PASSWORD}, allow_redirects=False
    )
    assert bare.status_code == 403 and "comanda_session=" not in bare.headers.get("Set-Cookie", "")
    wrong = client.login("ana@cafe.mx", "not the password")
    assert wrong.status_code == 401 and "Correo o contraseña incorrectos." in wrong.text
    unknown = client.login("nobody@cafe.mx")
    assert unknown.status_code == 401 and "Correo o contraseña incorrectos." in unknown.text  # the same answer
    english = ConsoleClient(console_url, **{"Accept-Language": "en-US,en;q=0.8"}).login("ana@cafe.mx", "nope")
    assert "Wrong e-mail or password." in english.text
    assert client.login("ana@cafe.mx").status_code == 303


def test_repeated_wrong_passwords_are_throttled_for_the_account(people, offices):
    base = offices.start(COMANDA_LOGIN_MAX_FAILURES_PER_ACCOUNT="3")
    client = ConsoleClient(base)
    for _ in range(3):
        assert client.login("ana@cafe.mx", "guess").status_code == 401
    throttled = client.login("ana@cafe.mx")  # the right password, too late
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 800
    assert "Demasiados intentos fallidos" in throttled.text
    assert ConsoleClient(base).login("rosa@cafe.mx").status_code == 303  # other accounts are not held up
    with transaction() as session:  # fifteen minutes later
        session.execute(update(m.LoginAttempt).values(created_at=clock.now() - timedelta(minutes=16)))
    assert client.login("ana@cafe.mx").status_code == 303


def test_a_disabled_account_is_refused_and_loses_its_open_session(people, console_url):
    client = ConsoleClient(console_url)
    assert client.login("ana@cafe.mx").status_code == 303
    with transaction() as session:
        staff.disable_staff(session, TEST_ACTOR, staff.find_staff(session, "ana@cafe.mx"))
    assert client.get("/console/queue").status_code == 303
    refused = ConsoleClient(console_url).login("ana@cafe.mx")
    assert refused.status_code == 403 and "desactivada" in refused.text


def test_an_expired_session_sends_the_person_back_to_login(people, console_url):
    client = ConsoleClient(console_url)
    client.login("ana@cafe.mx")
    token = client.csrf()
    with transaction() as session:
        session.execute(update(m.StaffSession).values(last_seen_at=clock.now() - timedelta(hours=13)))
    page = client.get("/console/queue?store=centro")
    assert page.status_code == 303 and page.headers["Location"] == "/console/login?next=/console/queue%3Fstore%3Dcentro"
    htmx = client.post("/console/queue/recall", csrf=token)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/console/login")
    assert client.get("/console/queue/stream", headers={"Accept": "text/event-stream"}).status_code == 401
    with new_session() as session:
        assert session.execute(select(m.StaffSession.end_reason)).scalar_one() == "idle"
    client.login("ana@cafe.mx")
    with transaction() as session:  # used all the time, but older than COMANDA_CONSOLE_SESSION_HOURS
        session.execute(update(m.StaffSession).values(expires_at=clock.now() - timedelta(seconds=1)))
    assert client.get("/console/queue").status_code == 303


def test_every_state_changing_request_needs_the_sessions_csrf_token(people, console_url):
    order_id = queued_order()
    ana, other = ConsoleClient(console_url), ConsoleClient(console_url)
    ana.login("ana@cafe.mx")
    other.login("dueno@cafe.mx")
    bump = f"/console/queue/orders/{order_id}/bump"
    assert ana.post(bump, {"expected": "received"}, csrf=None).status_code == 403
    assert ana.post(bump, {"expected": "received"}, csrf=other.csrf()).status_code == 403
    assert ana.post(bump, {"expected": "received", "csrf_token": "0" * 64}, csrf=None, htmx=False).status_code == 403
    assert ana.post("/console/preferences", {"language": "en"}, csrf=None).status_code == 403
    assert ana.post("/console/logout", csrf=None).status_code == 403
    assert ana.post("/console/queue/recall", csrf=None).status_code == 403
    assert order_row(order_id).status == "received"
    moved = ana.post(bump, {"expected": "received"})
    assert moved.status_code == 200 and "C-001: En preparación. Le avisamos al cliente." in moved.text
    assert order_row(order_id).status == "preparing"
    again = ana.post(bump, {"expected": "received"})  # a second tap on the old card
    assert "Alguien ya había movido ese pedido" in again.text and order_row(order_id).status == "preparing"
    plain = ana.post(bump, {"expected": "preparing", "csrf_token": ana.csrf()}, csrf=None, htmx=False)
    assert plain.status_code == 303 and order_row(order_id).status == "ready"  # works without JavaScript too


def test_staff_see_and_move_only_their_stores_orders(people, console_url):
    centro = queued_order(name="Ana López")
    roma = queued_order(ROMA_CUSTOMER, name="Raúl Pérez")
    rosa = ConsoleClient(console_url)
    rosa.login("rosa@cafe.mx")
    page = rosa.get("/console/queue")
    assert "R-001" in page.text and "Raúl" in page.text and "C-001" not in page.text and "Ana" not in page.text
    assert "Order queue" in page.text  # Rosa's console speaks English
    assert rosa.get("/console/queue?store=centro").status_code == 404
    assert rosa.get("/console/queue/columns?store=centro").status_code == 404
    assert rosa.post(f"/console/queue/orders/{centro}/bump", {"expected": "received"}).status_code == 404
    assert rosa.post("/console/queue/recall", {"store": "centro"}).status_code == 404
    assert rosa.get("/console/staff").status_code == 403  # owners manage staff
    assert order_row(centro).status == "received"
    assert rosa.post(f"/console/queue/orders/{roma}/bump", {"expected": "received"}).status_code == 200
    owner = ConsoleClient(console_url)
    owner.login("dueno@cafe.mx")
    both = owner.get("/console/queue").text
    assert "C-001" in both and "R-001" in both and "Todas mis sucursales" in both
    assert "R-001" not in owner.get("/console/queue?store=centro").text


def test_the_api_works_on_personal_tokens_with_the_same_store_rules(people, console_url, receiver):
    centro = queued_order(
        "centro:whatsapp:+525577778888",
        items=(("TACO-PASTOR", 8),),
        name="Luis",
        fulfilment="delivery",
        address="Donceles 45 interior 2",
        postal_code="06000",
        location=("19.435100", "-99.138200"),
    )
    roma = queued_order(ROMA_CUSTOMER)
    api = f"{console_url}/api/orders"
    ana, rosa = personal_token("ana@cafe.mx"), personal_token("rosa@cafe.mx")
    auth = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    assert requests.get(api, timeout=10).status_code == 401
    assert requests.get(api, headers=auth("e2e-staff-token"), timeout=10).status_code == 401  # no shared token
    listed = requests.get(api, headers=auth(rosa), timeout=10).json()["orders"]
    assert [o["id"] for o in listed] == [roma]
    assert requests.get(f"{api}/{centro}", headers=auth(rosa), timeout=10).status_code == 404
    assert requests.get(api, params={"store": "centro"}, headers=auth(rosa), timeout=10).status_code == 404
    for path, body in (("status", {"status": "ready"}), ("recall", {}), ("spei-received", {"amount": "1.00"})):
        answer = requests.post(f"{api}/{centro}/{path}", json=body, headers=auth(rosa), timeout=10)
        assert answer.status_code == 404, path
    shown = requests.get(f"{api}/{centro}", headers=auth(ana), timeout=10).json()
    assert shown["customer"] == {"name": "Luis", "phone": "+525577778888"}
    assert shown["delivery"] == {
        "address": "Donceles 45 interior 2",
        "postal_code": "06000",
        "location": {
            "latitude": "19.435100",
            "longitude": "-99.138200",
            "maps_url": "https://www.google.com/maps/search/?api=1&query=19.435100,-99.138200",
        },
    }
    moved = requests.post(f"{api}/{centro}/status", json={"status": "preparing"}, headers=auth(ana), timeout=10)
    assert moved.status_code == 200 and moved.json()["history"][-1]["actor"] == f"staff:{staff_id('ana@cafe.mx')}"
    undone = requests.post(f"{api}/{centro}/recall", headers=auth(ana), timeout=10)
    assert undone.status_code == 200 and undone.json()["status"] == "received"
    assert requests.post(f"{api}/{centro}/recall", headers=auth(ana), timeout=10).status_code == 404
    with transaction() as session:
        user = staff.find_staff(session, "ana@cafe.mx")
        staff.revoke_tokens(session, TEST_ACTOR, user, [t.id for t in staff.list_tokens(session, user)])
    assert requests.get(api, headers=auth(ana), timeout=10).status_code == 401
    assert audit_actions("order.moved") == [(f"staff:{staff_id('ana@cafe.mx')}", "127.0.0.1")]


def columns_of(html: str) -> dict:
    """Ticket codes per column of a rendered queue."""
    columns = {}
    for stage, body in re.findall(r'data-column="(\w+)".*?>(.*?)</section>', html, re.S):
        columns[stage] = re.findall(r'data-ticket="([^"]+)"', body)
    return columns


def test_the_queue_stream_shows_moves_made_on_another_replica(people, offices):
    first, second = offices.start(), offices.start()
    order_id = queued_order()
    ana = ConsoleClient(second)
    ana.login("ana@cafe.mx")
    live = EventStream(f"{second}/console/queue/stream?store=centro", ana.http)
    try:
        assert live.status == 200
        live.wait_for(lambda name, data: name == "queue" and columns_of(data).get("received") == ["C-001"])
        token = personal_token("dueno@cafe.mx")
        for target in ("preparing", "ready"):
            moved = requests.post(
                f"{first}/api/orders/{order_id}/status",
                json={"status": target},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert moved.status_code == 200
        live.wait_for(lambda name, data: columns_of(data).get("ready") == ["C-001"])
        newcomer = queued_order("centro:whatsapp:+525500001111")
        live.wait_for(lambda name, data: columns_of(data).get("received") == ["C-002"])
    finally:
        live.close()
    rosa = ConsoleClient(second)
    rosa.login("rosa@cafe.mx")
    assert EventStream(f"{second}/console/queue/stream?store=centro", rosa.http).status == 404
    assert order_row(newcomer).status == "received"


def test_the_board_is_public_read_only_and_live(people, console_url):
    first = queued_order()
    page = requests.get(f"{console_url}/board/centro", timeout=10)
    assert page.status_code == 200 and "Café Esquina Centro" in page.text and "C-001" in page.text
    assert "Ana" not in page.text and "csrf" not in page.text.lower()
    assert "Ready for pickup" in requests.get(f"{console_url}/board/centro?lang=en", timeout=10).text
    assert requests.get(f"{console_url}/board/polanco", timeout=10).status_code == 404
    assert requests.post(f"{console_url}/board/centro", timeout=10).status_code == 405
    live = EventStream(f"{console_url}/board/centro/stream")
    try:
        live.wait_for(lambda name, data: name == "board" and "C-001" in data)
        with transaction() as session:
            order = session.get(m.Order, first)
            from comanda.services import orders

            orders.set_status(session, order, "ready", "test")
        live.wait_for(lambda name, data: re.search(r'class="ready".*C-001', data, re.S) is not None)
    finally:
        live.close()


def test_owners_add_and_disable_staff_and_see_a_new_password_once(people, console_url):
    owner = ConsoleClient(console_url)
    owner.login("dueno@cafe.mx")
    listing = owner.get("/console/staff")
    assert listing.status_code == 200 and "rosa@cafe.mx" in listing.text and "$argon2" not in listing.text
    added = owner.post(
        "/console/staff",
        {"name": "Beto", "email": "beto@cafe.mx", "role": "staff", "stores": ["centro"], "language": "es"},
        htmx=False,
    )
    assert added.status_code == 200 and "Cuenta creada: beto@cafe.mx." in added.text
    password = re.search(r"<code>([^<]+)</code>", added.text).group(1)
    assert password not in owner.get("/console/staff").text  # shown once
    assert ConsoleClient(console_url).login("beto@cafe.mx", password).status_code == 303
    duplicate = owner.post(
        "/console/staff", {"name": "B", "email": "beto@cafe.mx", "role": "staff", "stores": ["centro"]}
    )
    assert duplicate.status_code == 409
    beto = staff_id("beto@cafe.mx")
    assert owner.post(f"/console/staff/{beto}/disable").status_code == 200
    assert ConsoleClient(console_url).login("beto@cafe.mx", password).status_code == 403
    moved = owner.post(f"/console/staff/{beto}/access", {"role": "manager", "stores": ["roma"]})
    assert moved.status_code == 200
    with new_session() as session:
        user = staff.find_staff(session, "beto@cafe.mx")
        assert (user.role, [s.id for s in user.stores], user.active) == ("manager", ["roma"], False)
    assert owner.post("/console/staff/99999/disable").status_code == 404
    assert owner.post(f"/console/staff/{staff_id('dueno@cafe.mx')}/disable").status_code == 400  # the last owner


def test_behind_a_proxy_the_cookie_is_secure_and_the_clients_address_is_kept(people, offices):
    base = offices.start(COMANDA_BACKOFFICE_PROXIES="1")
    http = requests.Session()
    http.headers.update({"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"})
    form = http.get(f"{base}/console/login", timeout=10)
    assert "Secure" in form.headers["Set-Cookie"]  # the login form's cookie too
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    answer = http.post(  # the proxy spoke HTTPS to the browser; this test speaks plain HTTP to the back office
        f"{base}/console/login",
        data={"email": "ana@cafe.mx", "password": PASSWORD, "csrf_token": token},
        headers={"Cookie": f"comanda_login_csrf={token}"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303 and "Secure" in cookie_header(answer)
    assert audit_actions("staff.login") == [(f"staff:{staff_id('ana@cafe.mx')}", "203.0.113.50")]
