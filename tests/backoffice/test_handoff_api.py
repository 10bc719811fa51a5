"""The handoff inbox over real HTTP, in the back-office process as `comanda run` starts it, on SQLite and
PostgreSQL, with a fake Rasa HTTP API (tests.helpers.fake_rasa) and the simulator's Graph API: the staff API
on personal tokens (lists, another store's ticket 404, someone else's chat 409, replies through the outbox
and into the tracker, templates outside the 24-hour window, notes, resolve resuming the bot, the customer's
files), and the console's pages (CSRF, per-store 404, a disabled account, the live list)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Dict

import pytest
import requests
from sqlalchemy import select, update

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import inbox, staff
from tests.helpers.console import TEST_ACTOR, ConsoleClient, EventStream, add_staff, personal_token, whatsapp_ticket
from tests.helpers.fake_rasa import TOKEN, serve_fake_rasa
from tests.helpers.graph import TOKEN as GRAPH_TOKEN
from tests.helpers.simulator import CENTRO


@pytest.fixture
def fake_rasa(monkeypatch):
    yield from serve_fake_rasa(monkeypatch)


@pytest.fixture
def office(demo, offices, fake_rasa) -> str:
    add_staff("ana@cafe.mx", stores=["centro"])
    add_staff("beto@cafe.mx", stores=["centro"])
    add_staff("rita@cafe.mx", stores=["roma"])
    return offices.start(COMANDA_RASA_URL=fake_rasa.url, COMANDA_RASA_TOKEN=TOKEN)


def bearer(email: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {personal_token(email)}"}


def api(base: str, method: str, path: str, who: Dict[str, str], **kwargs) -> requests.Response:
    return requests.request(method, f"{base}/api/handoffs{path}", headers=who, timeout=30, **kwargs)


def staff_id(email: str) -> int:
    with new_session() as session:
        return staff.find_staff(session, email).id


def test_the_api_lists_shows_and_hides_other_stores(office):
    ticket, conversation = whatsapp_ticket()
    roma, _ = whatsapp_ticket("5215599998888", store="roma")
    ana, rita = bearer("ana@cafe.mx"), bearer("rita@cafe.mx")
    assert requests.get(f"{office}/api/handoffs", timeout=10).status_code == 401
    listed = api(office, "GET", "?status=waiting", ana).json()
    assert [t["id"] for t in listed] == [ticket]
    first = listed[0]
    assert {k: first[k] for k in ("conversation_id", "store", "customer", "reason", "status", "assignee")} == {
        "conversation_id": conversation,
        "store": "centro",
        "customer": {"name": "Ana López", "phone": "+525511112222"},
        "reason": "requested",
        "status": "waiting",
        "assignee": None,
    }
    assert first["waiting_since"]
    assert api(office, "GET", "?store=roma", ana).status_code == 404
    assert api(office, "GET", "?status=closed", ana).status_code == 400
    for method, path in (("GET", f"/{roma}"), ("POST", f"/{roma}/claim"), ("POST", f"/{roma}/resolve")):
        assert api(office, method, path, ana).status_code == 404
    assert api(office, "POST", f"/{roma}/messages", ana, json={"text": "hola"}).status_code == 404
    assert api(office, "POST", f"/{roma}/notes", ana, json={"text": "hola"}).status_code == 404
    assert [t["id"] for t in api(office, "GET", "", rita).json()] == [roma]


def test_claim_reply_note_resolve_through_the_api(office, fake_rasa):
    ticket, conversation = whatsapp_ticket()
    ana, beto = bearer("ana@cafe.mx"), bearer("beto@cafe.mx")
    claimed = api(office, "POST", f"/{ticket}/claim", ana)
    assert claimed.status_code == 200 and claimed.json()["assignee"]["email"] == "ana@cafe.mx"
    assert fake_rasa.received[-1] == {
        "conversation": conversation,
        "path": "tracker/events",
        "body": [{"event": "pause"}],
    }
    assert api(office, "POST", f"/{ticket}/claim", beto).status_code == 409
    assert api(office, "POST", f"/{ticket}/messages", beto, json={"text": "yo"}).status_code == 409
    assert api(office, "POST", f"/{ticket}/resolve", beto).status_code == 409

    sent = api(office, "POST", f"/{ticket}/messages", ana, json={"text": "¡Hola Ana! Ya lo reviso.", "client_id": "a1"})
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert (message["from"], message["text"]) == ("staff", "¡Hola Ana! Ya lo reviso.")
    again = api(
        office, "POST", f"/{ticket}/messages", ana, json={"text": "¡Hola Ana! Ya lo reviso.", "client_id": "a1"}
    )
    assert again.json()["id"] == message["id"]  # a retried request sends once
    tracked = [r for r in fake_rasa.received if r["path"] == "tracker/events" and r["body"][0]["event"] == "bot"]
    assert len(tracked) == 1
    event = tracked[0]["body"][0]
    assert event["text"] == "¡Hola Ana! Ya lo reviso."
    assert event["metadata"]["from"] == "staff" and event["metadata"]["staff_id"] == staff_id("ana@cafe.mx")
    assert {"execute_side_effects": ["false"]}.items() <= fake_rasa.queries[
        fake_rasa.received.index(tracked[0])
    ].items()
    with new_session() as session:
        [row] = session.execute(select(m.OutboundMessage)).scalars().all()
        assert row.payload["type"] == "text" and row.payload["text"]["body"] == "¡Hola Ana! Ya lo reviso."
        assert row.recipient == "5215511112222" and row.conversation_id == conversation
        assert session.get(m.HandoffTicket, ticket).first_response_at is not None

    note = api(office, "POST", f"/{ticket}/notes", beto, json={"text": "pidió factura la vez pasada"})
    assert note.status_code == 201 and note.json()["staff"] == "Beto"
    assert api(office, "POST", f"/{ticket}/notes", beto, json={"text": ""}).status_code == 400

    shown = api(office, "GET", f"/{ticket}", ana).json()
    assert [(x["from"], x["text"], x["status"]) for x in shown["messages"]] == [
        ("staff", "¡Hola Ana! Ya lo reviso.", "sending")
    ]
    assert [n["text"] for n in shown["notes"]] == ["pidió factura la vez pasada"]
    assert shown["window_open"] is True and shown["history_complete"] is True
    assert [c["key"] for c in shown["canned_replies"]] == ["hello", "checking", "done"]

    resolved = api(office, "POST", f"/{ticket}/resolve", ana)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert [(r["path"], r["body"]) for r in fake_rasa.received[-3:]] == [
        ("tracker/events", [{"event": "resume"}]),
        ("execute", {"name": "utter_handoff_resolved"}),
        ("tracker/events", [{"event": "action", "name": "action_listen"}]),
    ]
    with new_session() as session:
        row = session.get(m.HandoffTicket, ticket)
        assert (row.resolved_by, row.assigned_to) == (staff_id("ana@cafe.mx"),) * 2
        actions = (
            session.execute(
                select(m.AuditEvent.action)
                .where(m.AuditEvent.entity_type == "handoff_ticket", m.AuditEvent.entity_id == str(ticket))
                .order_by(m.AuditEvent.id)
            )
            .scalars()
            .all()
        )
        assert actions == ["handoff.claim", "handoff.reply", "handoff.note", "handoff.resolve"]
    assert api(office, "POST", f"/{ticket}/messages", ana, json={"text": "otra"}).status_code == 409


def test_outside_the_window_the_api_sends_a_template(office, fake_rasa):
    ticket, conversation = whatsapp_ticket()
    with transaction() as session:
        session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == conversation)
            .values(last_inbound_at=clock.now() - timedelta(hours=30))
        )
    ana = bearer("ana@cafe.mx")
    refused = api(office, "POST", f"/{ticket}/messages", ana, json={"text": "hola"})
    assert refused.status_code == 409 and refused.json()["code"] == "window_closed"
    shown = api(office, "GET", f"/{ticket}", ana).json()
    assert shown["window_open"] is False and shown["templates"][0]["language"] == "es_MX"
    sent = api(
        office,
        "POST",
        f"/{ticket}/messages",
        ana,
        json={"template": "comanda_staff_follow_up", "params": ["Ana", "Café Esquina Centro"]},
    )
    assert sent.status_code == 201 and sent.json()["template"] == "comanda_staff_follow_up"
    paused = [r for r in fake_rasa.received if r["body"] == [{"event": "pause"}]]
    assert [r["conversation"] for r in paused] == [conversation]  # answering a waiting chat claimed it
    with new_session() as session:
        [row] = session.execute(select(m.OutboundMessage)).scalars().all()
    assert row.payload["type"] == "template"
    assert row.payload["template"]["name"] == "comanda_staff_follow_up"
    assert row.payload["template"]["language"] == {"code": "es_MX"}
    assert [p["text"] for p in row.payload["template"]["components"][0]["parameters"]] == ["Ana", "Café Esquina Centro"]
    bad = api(office, "POST", f"/{ticket}/messages", ana, json={"template": "comanda_staff_follow_up", "params": []})
    assert bad.status_code == 400


def test_a_customers_photo_is_downloaded_once_and_kept(office):
    ticket, conversation = whatsapp_ticket()
    photo = b"\x89PNG\r\n\x1a\n fake photo bytes"
    uploaded = requests.post(
        f"{office}/simulator/graph/v21.0/{CENTRO}/media",
        headers={"Authorization": f"Bearer {GRAPH_TOKEN}"},
        data={"messaging_product": "whatsapp", "type": "image/png"},
        files={"file": ("foto.png", photo, "image/png")},
        timeout=10,
    )
    media_id = uploaded.json()["id"]
    raw = {
        "from": "5215511112222",
        "id": "wamid.photo1",
        "type": "image",
        "image": {"id": media_id, "mime_type": "image/png"},
    }
    with transaction() as session:
        inbound_id = inbox.record_inbound(
            session,
            "whatsapp",
            "wamid.photo1",
            "image",
            {"message": raw, "parsed": {"kind": "media", "media_type": "image", "phone_number_id": CENTRO}},
            store_id="centro",
            conversation_id=conversation,
        )
    ana = bearer("ana@cafe.mx")
    shown = api(office, "GET", f"/{ticket}", ana).json()
    [message] = shown["messages"]
    assert message["from"] == "customer" and message["media"]["type"] == "image"
    got = requests.get(f"{office}{message['media']['url']}", headers=ana, timeout=10)
    assert got.status_code == 200 and got.content == photo and got.headers["Content-Type"] == "image/png"
    requests.delete(f"{office}/simulator/api/chats", params={"wa_id": "5215511112222"}, timeout=10)
    with new_session() as session:
        kept = session.execute(select(m.CustomerMedia)).scalar_one()
        assert (kept.inbound_message_id, kept.size) == (inbound_id, len(photo))
    assert api(office, "GET", f"/media/{inbound_id}", bearer("rita@cafe.mx")).status_code == 404


def test_the_console_inbox_checks_csrf_stores_and_accounts(office):
    ticket, _ = whatsapp_ticket()
    roma, _ = whatsapp_ticket("5215599998888", store="roma")
    client = ConsoleClient(office)
    assert client.login("ana@cafe.mx", next_path="/console/inbox").status_code == 303
    page = client.get("/console/inbox")
    assert (
        page.status_code == 200 and f'data-ticket="{ticket}"' in page.text and f'data-ticket="{roma}"' not in page.text
    )
    assert client.get(f"/console/inbox/{roma}").status_code == 404
    assert client.post(f"/console/inbox/{roma}/claim").status_code == 404
    assert client.post(f"/console/inbox/{ticket}/claim", csrf=None, htmx=False).status_code == 403
    claimed = client.post(f"/console/inbox/{ticket}/claim", htmx=False)
    assert claimed.status_code == 303 and claimed.headers["Location"].startswith(
        f"/console/inbox/{ticket}?done=claimed"
    )
    beto = ConsoleClient(office)
    beto.login("beto@cafe.mx", next_path="/console/inbox")
    taken = beto.post(f"/console/inbox/{ticket}/claim", htmx=False)
    assert taken.status_code == 409 and "otra persona ya atiende" in taken.text
    with transaction() as session:
        staff.disable_staff(session, TEST_ACTOR, staff.find_staff(session, "beto@cafe.mx"))
    assert beto.get(f"/console/inbox/{ticket}").status_code == 303  # back to the login page
    sent = client.post(f"/console/inbox/{ticket}/reply", {"text": "Hola, soy Ana", "client_key": "x"}, htmx=False)
    assert sent.status_code == 303
    page = client.get(f"/console/inbox/{ticket}")
    assert "Hola, soy Ana" in page.text and "Mensaje en camino" not in page.text  # the flash needs ?done=
    assert "Mensaje en camino" in client.get(f"/console/inbox/{ticket}?done=sent").text


def test_the_inbox_stream_shows_a_new_chat_and_a_claim_made_elsewhere(office):
    client = ConsoleClient(office)
    client.login("ana@cafe.mx", next_path="/console/inbox")
    live = EventStream(f"{office}/console/inbox/stream?status=waiting", client.http)
    try:
        assert live.status == 200
        live.wait_for(lambda name, data: name == "inbox" and "data-ticket" not in data)
        ticket, _ = whatsapp_ticket()
        live.wait_for(lambda name, data: f'data-ticket="{ticket}"' in data)
        api(office, "POST", f"/{ticket}/claim", bearer("beto@cafe.mx"))
        live.wait_for(lambda name, data: f'data-ticket="{ticket}"' not in data)
    finally:
        live.close()
    page = client.get("/console/inbox?status=open")
    assert re.search(r"La atiende Beto", page.text)
