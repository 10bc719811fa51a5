"""WhatsApp end to end: the simulator plays Meta (signed webhooks in, fake Graph API out), the real
connector, Rasa, the action server and the outbox do the rest. Runs after test_stack.py; the last
tests restart and stop the stack."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import requests
from sqlalchemy import func, select, update

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import inbox
from integrations.whatsapp.webhook import parse_webhook, sign
from tests.helpers.documents import PDF, invoice_for
from tests.helpers.paths import ROOT
from tests.helpers.simulator import (
    CENTRO,
    ROMA,
    answered_and_sent,
    bot_messages,
    customer_says,
    new_wa_id,
    post_signed,
    text_message,
    texts,
    wait_replies,
    webhook,
)
from tests.helpers.stack import TOKEN
from tests.helpers.waiting import wait_for


def inbox_count():
    with new_session() as session:
        return session.execute(select(func.count()).select_from(m.InboundMessage)).scalar()


def test_webhook_verification(stack):
    url = f"{stack.rasa}/webhooks/whatsapp/webhook"
    good = requests.get(
        url,
        params={"hub.mode": "subscribe", "hub.verify_token": stack.verify_token, "hub.challenge": "1158201444"},
        timeout=10,
    )
    assert good.status_code == 200 and good.text == "1158201444"
    assert (
        requests.get(
            url, params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}, timeout=10
        ).status_code
        == 403
    )
    assert (
        requests.get(
            url,
            params={"hub.mode": "unsubscribe", "hub.verify_token": stack.verify_token, "hub.challenge": "1"},
            timeout=10,
        ).status_code
        == 403
    )


def test_unsigned_or_forged_posts_are_refused_and_nothing_is_stored(stack):
    before = inbox_count()
    payload = webhook([text_message(new_wa_id(), "hola")])
    assert post_signed(stack, payload, header=False).status_code == 401
    assert post_signed(stack, payload, secret="not-the-secret").status_code == 403
    assert inbox_count() == before


def post_signed_bytes(stack, raw):
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(stack.app_secret, raw)}
    return requests.post(f"{stack.rasa}/webhooks/whatsapp/webhook", data=raw, headers=headers, timeout=30)


def test_signed_bodies_that_are_not_plain_json_are_400_and_other_customers_go_on(stack):
    """Never a 500 for a body that will always fail: Meta would deliver it again for days."""
    wa_id = new_wa_id()
    good = json.dumps(webhook([text_message(wa_id, "gracias")]))
    for raw in (
        good.replace('"timestamp": "', '"timestamp": Infinity, "t": "').encode(),
        good.replace('"timestamp": "', '"timestamp": 1e999999, "t": "').encode(),
        b'{"entry": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"object": "whatsapp_business_account", "entry": [' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"]}",
    ):
        assert post_signed_bytes(stack, raw).status_code == 400
    odd = text_message(new_wa_id(), "hola")
    odd["type"] = "t" * 300
    assert post_signed(stack, webhook([odd, text_message(wa_id, "gracias")])).status_code == 200
    assert len(wait_replies(stack, wa_id)) == 1
    with new_session() as session:
        row = session.execute(select(m.InboundMessage).where(m.InboundMessage.external_id == odd["id"])).scalar_one()
    assert row.status == "ignored" and row.message_type == "t" * 30


def test_spanish_chat_in_the_simulator(stack):
    wa_id = new_wa_id()
    customer_says(stack, wa_id, "hola, ¿qué tienen?", name="Lupita")
    [record] = wait_replies(stack, wa_id)
    interactive = record["message"]["interactive"]
    assert interactive["type"] == "list" and interactive["body"]["text"].startswith(
        "Esto tenemos hoy en Café Esquina Centro"
    )
    rows = interactive["action"]["sections"][0]["rows"]
    assert rows[0]["title"] == "Bubble tea" and rows[0]["description"].startswith("Té de taro con leche")
    with new_session() as session:
        customer = session.execute(select(m.Customer).where(m.Customer.phone == "+52" + wa_id[3:])).scalar_one()
        assert customer.name == "Lupita"
        conversation = session.get(m.Conversation, f"centro:whatsapp:+52{wa_id[3:]}")
        assert conversation.recipient == wa_id and conversation.language == "es"

    # the simulator reports sent → delivered → read, which the outbox records
    def read():
        with new_session() as session:
            return (
                session.execute(
                    select(m.OutboundMessage.status).where(m.OutboundMessage.recipient == wa_id)
                ).scalar_one()
                == "read"
            )

    assert wait_for(read, timeout=15)


def test_one_person_two_branches_two_conversations_in_english(stack):
    wa_id = new_wa_id()
    customer_says(stack, wa_id, "hi, what's on the menu?", phone_number_id=ROMA)
    customer_says(stack, wa_id, "what time do you open?", phone_number_id=CENTRO)
    [roma_reply] = wait_replies(stack, wa_id, phone_number_id=ROMA)
    [centro] = texts(wait_replies(stack, wa_id, phone_number_id=CENTRO))
    roma = roma_reply["message"]["interactive"]
    assert roma["body"]["text"].startswith("Here's what we have today at Café Esquina Roma")
    assert "Tacos" not in [row["title"] for row in roma["action"]["sections"][0]["rows"]]
    assert "Mon–Fri 07:30–21:00" in centro
    with new_session() as session:
        ids = session.execute(select(m.Conversation.id).where(m.Conversation.recipient == wa_id)).scalars().all()
    assert sorted(ids) == [f"centro:whatsapp:+52{wa_id[3:]}", f"roma:whatsapp:+52{wa_id[3:]}"]


def test_a_redelivered_message_is_answered_once(stack):
    wa_id = new_wa_id()
    payload = webhook([text_message(wa_id, "gracias")])
    for _ in range(3):
        assert post_signed(stack, payload).status_code == 200
    wait_replies(stack, wa_id)
    assert wait_for(lambda: answered_and_sent([wa_id]))  # nothing of this customer's left to answer or send
    assert len(bot_messages(stack, wa_id)) == 1


def test_every_message_of_a_batch_is_answered(stack):
    customers = [new_wa_id() for _ in range(3)]
    payload = webhook([text_message(customers[0], "hola")])
    payload["entry"][0]["changes"].append(webhook([text_message(customers[1], "hello")])["entry"][0]["changes"][0])
    payload["entry"].append(webhook([text_message(customers[2], "gracias")])["entry"][0])
    assert post_signed(stack, payload).status_code == 200
    for wa_id in customers:
        assert len(wait_replies(stack, wa_id)) == 1, wa_id


def test_messages_of_one_conversation_are_answered_in_order(stack):
    wa_id = new_wa_id()
    payload = webhook(
        [
            text_message(wa_id, "a que hora abren?"),
            text_message(wa_id, "donde estan?"),
            text_message(wa_id, "aceptan tarjeta?"),
        ]
    )
    assert post_signed(stack, payload).status_code == 200
    replies = texts(wait_replies(stack, wa_id, count=3))
    assert len(replies) == 3
    assert "lun–vie" in replies[0] and "Av. 5 de Mayo" in replies[1] and "tarjeta" in replies[2]


def test_replies_leave_in_the_order_the_bot_produced_them_in_every_conversation(stack):
    """Many customers writing at once: each conversation's replies reach the Graph API in the order the
    bot produced them (the outbox rows' order), and the simulator's chat, polled as its page polls it,
    shows them in that order too (issue 11 item 5)."""
    customers = [new_wa_id() for _ in range(6)]
    lines = ["2 de pastor", "y una horchata", "¿a qué hora abren?"]
    seen: Dict[str, List[str]] = {wa_id: [] for wa_id in customers}
    cursors = {wa_id: 0 for wa_id in customers}
    polling = threading.Event()

    def poll_like_the_page():  # every 700 ms, as backoffice/simulator/static/simulator.js does
        while not polling.wait(0.7):
            for wa_id in customers:
                answer = requests.get(
                    f"{stack.backoffice}/simulator/api/messages",
                    params={"phone_number_id": CENTRO, "wa_id": wa_id, "after": cursors[wa_id]},
                    timeout=10,
                ).json()
                seen[wa_id] += [r["id"] for r in answer["messages"] if r["id"] not in seen[wa_id]]
                cursors[wa_id] = answer["seq"]

    poller = threading.Thread(target=poll_like_the_page)
    poller.start()
    try:
        with ThreadPoolExecutor(max_workers=len(customers)) as pool:
            for line in lines:
                list(pool.map(lambda wa_id, line=line: customer_says(stack, wa_id, line), customers))

        def all_answered():
            with new_session() as session:
                rows = session.execute(
                    select(m.InboundMessage.status).where(m.InboundMessage.sender.in_(customers))
                ).scalars()
                statuses = list(rows)
            pending = select(func.count()).where(
                m.OutboundMessage.recipient.in_(customers), m.OutboundMessage.status.in_(("queued", "sending"))
            )
            with new_session() as session:
                unsent = session.execute(pending).scalar()
            return len(statuses) == len(lines) * len(customers) and set(statuses) == {"processed"} and unsent == 0

        assert wait_for(all_answered, timeout=180)
        assert wait_for(lambda: all(len(seen[w]) >= len(bot_messages(stack, w)) + len(lines) for w in customers))
    finally:
        polling.set()
        poller.join()
    for wa_id in customers:
        with new_session() as session:
            produced = (
                session.execute(
                    select(m.OutboundMessage.external_id)
                    .where(m.OutboundMessage.recipient == wa_id)
                    .order_by(m.OutboundMessage.id)
                )
                .scalars()
                .all()
            )
        at_graph_api = [r["id"] for r in bot_messages(stack, wa_id)]
        assert len(produced) >= 2 * len(lines) and at_graph_api == produced, wa_id
        assert [i for i in seen[wa_id] if i in produced] == produced, wa_id


def test_a_paused_conversation_gets_nothing_whatever_the_customer_writes(stack):
    """While a person has the conversation (Rasa's ConversationPaused, set by the handoff), every message
    is stored in the inbox and in the tracker, and the bot sends nothing: no reply, no note, no typing
    indicator; a typed "/restart" is text, not Rasa's restart intent (issue 11 item 6)."""
    wa_id = new_wa_id()
    conversation = f"centro:whatsapp:+52{wa_id[3:]}"
    customer_says(stack, wa_id, "hola")
    greeted = len(wait_replies(stack, wa_id))
    paused = requests.post(
        f"{stack.rasa}/conversations/{conversation}/tracker/events",
        params={"token": TOKEN},
        json=[{"event": "pause"}],
        timeout=30,
    )
    assert paused.status_code == 200, paused.text
    writes = [
        "me hacen caso?",
        "/restart",
        '/EXTERNAL_order_update{"order_id": 1, "event": "paid"}',
        "quiero 2 de pastor " * 200,
    ]
    for text in writes:
        customer_says(stack, wa_id, text)
    located = requests.post(
        f"{stack.backoffice}/simulator/api/send",
        timeout=60,
        json={
            "phone_number_id": CENTRO,
            "wa_id": wa_id,
            "type": "location",
            "location": {"latitude": 19.4, "longitude": -99.1},
        },
    )
    assert located.status_code == 200
    assert wait_for(lambda: answered_and_sent([wa_id]) and inbox_rows(wa_id) == len(writes) + 2, timeout=90)
    assert len(bot_messages(stack, wa_id)) == greeted
    chat = requests.get(
        f"{stack.backoffice}/simulator/api/messages", params={"phone_number_id": CENTRO, "wa_id": wa_id}, timeout=10
    ).json()
    assert chat["typing"] is False
    tracker = requests.get(f"{stack.rasa}/conversations/{conversation}/tracker", params={"token": TOKEN}, timeout=30)
    events = tracker.json()["events"]
    assert tracker.json()["paused"] is True
    assert len([e for e in events if e["event"] == "user"]) == len(writes) + 2


def inbox_rows(wa_id):
    with new_session() as session:
        return session.execute(select(func.count()).where(m.InboundMessage.sender == wa_id)).scalar()


ROMA_SOLD_OUT = "quiero 2 de pastor, 1 de suadero, 3 campechanos, una torta de milanesa y unos chilaquiles, "


def catalog_order(wa_id, items):
    return {
        "from": wa_id,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": "1700000000",
        "type": "order",
        "order": {
            "catalog_id": "1",
            "product_items": [
                {"product_retailer_id": sku, "quantity": quantity, "item_price": "10", "currency": "MXN"}
                for sku, quantity in items
            ],
        },
    }


def test_one_message_gets_a_bounded_number_of_replies_however_long_it_is(stack):
    """Issue 10 item 5: 540 characters gave 23 messages, 3,600 gave 363, 100,000 gave 6,023, a 60-item
    catalog order 110. Now every turn answers in at most six WhatsApp messages, and a message longer
    than the bot reads says so."""
    for length in (540, 3_600, 100_000):
        wa_id = new_wa_id()
        text = (ROMA_SOLD_OUT * (length // len(ROMA_SOLD_OUT) + 1))[:length]
        customer_says(stack, wa_id, text, phone_number_id=ROMA)
        assert wait_for(lambda wa_id=wa_id: answered_and_sent([wa_id]), timeout=120), length
        replies = bot_messages(stack, wa_id, ROMA)
        assert 1 <= len(replies) <= 6, (length, len(replies))
        if length > 1000:
            assert any("1,000" in t or "1000" in t for t in texts(replies)), texts(replies)
    skus = ["TACO-PASTOR", "TACO-SUADERO", "TACO-CAMPECHANO", "TORTA-MILA", "CHILAQUILES", "NOPE-1", "HORCHATA"]
    wa_id = new_wa_id()
    items = [(f"{skus[i % len(skus)]}" if i < 50 else f"NOPE-{i}", 1 + i % 3) for i in range(60)]
    assert post_signed(stack, webhook([catalog_order(wa_id, items)], phone_number_id=ROMA)).status_code == 200
    assert wait_for(lambda: answered_and_sent([wa_id]), timeout=120)
    assert 1 <= len(bot_messages(stack, wa_id, ROMA)) <= 6


def test_photos_get_an_answer_and_a_ticket_for_a_person(stack):
    wa_id = new_wa_id()
    message = {
        "from": wa_id,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": "1700000000",
        "type": "image",
        "image": {"mime_type": "image/jpeg", "sha256": "x", "id": "1234"},
    }
    assert post_signed(stack, webhook([message])).status_code == 200
    [reply] = texts(wait_replies(stack, wa_id))
    assert "solo leo texto" in reply
    with new_session() as session:
        ticket = session.execute(
            select(m.HandoffTicket).where(m.HandoffTicket.conversation_id == f"centro:whatsapp:+52{wa_id[3:]}")
        ).scalar_one()
        assert ticket.reason == "media" and ticket.status == "waiting"


def test_a_shared_location_becomes_the_delivery_location(stack):
    wa_id = new_wa_id()
    customer_says(stack, wa_id, "hola")
    wait_replies(stack, wa_id)
    answer = requests.post(
        f"{stack.backoffice}/simulator/api/send",
        timeout=60,
        json={
            "phone_number_id": CENTRO,
            "wa_id": wa_id,
            "type": "location",
            "location": {"latitude": 19.4326, "longitude": -99.1332},
        },
    )
    assert answer.status_code == 200
    replies = texts(wait_replies(stack, wa_id, count=2))
    assert replies[-1].startswith("📍")
    with new_session() as session:
        cart = session.execute(
            select(m.Cart).where(m.Cart.conversation_id == f"centro:whatsapp:+52{wa_id[3:]}")
        ).scalar_one()
        assert str(cart.delivery_latitude) == "19.432600" and str(cart.delivery_longitude) == "-99.133200"


def test_a_catalog_order_fills_the_cart(stack):
    wa_id = new_wa_id()
    order = {
        "from": wa_id,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": "1700000000",
        "type": "order",
        "order": {
            "catalog_id": "1",
            "product_items": [
                {"product_retailer_id": "TARO-MT", "quantity": "2", "item_price": "75", "currency": "MXN"},
                {"product_retailer_id": "COCA-600", "quantity": 1, "item_price": "30", "currency": "MXN"},
            ],
        },
    }
    assert post_signed(stack, webhook([order])).status_code == 200
    added, cart = texts(wait_replies(stack, wa_id, count=2))
    assert added.startswith("✅ Agregué: 2 × Té de taro con leche (mediano)")
    assert "2 × Té de taro con leche (mediano) — $170.00" in cart and "Total: $200.00" in cart


def test_reactions_and_unknown_numbers_get_no_reply(stack):
    wa_id = new_wa_id()
    reaction = {
        "from": wa_id,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": "1700000000",
        "type": "reaction",
        "reaction": {"message_id": "wamid.x", "emoji": "👍"},
    }
    assert post_signed(stack, webhook([reaction])).status_code == 200
    stranger = text_message(new_wa_id(), "hola")
    assert post_signed(stack, webhook([stranger], phone_number_id="999999")).status_code == 200

    def statuses():
        with new_session() as session:
            return (
                session.execute(
                    select(m.InboundMessage.status).where(
                        m.InboundMessage.external_id.in_([reaction["id"], stranger["id"]])
                    )
                )
                .scalars()
                .all()
            )

    assert wait_for(lambda: statuses() == ["ignored", "ignored"])  # both closed: nothing will come of them
    assert bot_messages(stack, wa_id) == []


def test_sends_are_retried_after_server_errors(stack):
    requests.post(f"{stack.backoffice}/simulator/api/faults", json={"count": 2, "status": 500}, timeout=10)
    wa_id = new_wa_id()
    customer_says(stack, wa_id, "gracias")
    [reply] = wait_replies(stack, wa_id, timeout=60)
    with new_session() as session:
        row = session.execute(select(m.OutboundMessage).where(m.OutboundMessage.recipient == wa_id)).scalar_one()
    assert row.attempts == 3 and row.status in ("sent", "delivered", "read")


def test_a_closed_24_hour_window_queues_the_reengagement_template(stack):
    wa_id = new_wa_id()
    customer_says(stack, wa_id, "hola")
    wait_replies(stack, wa_id)
    requests.post(f"{stack.backoffice}/simulator/api/faults", json={"webhook_error": 131047}, timeout=10)
    reply = requests.post(
        f"{stack.rasa}/conversations/centro:whatsapp:+52{wa_id[3:]}/trigger_intent",
        params={"token": TOKEN, "output_channel": "latest"},
        json={"name": "greet"},
        timeout=30,
    )
    assert reply.status_code == 200
    templates = wait_for(lambda: [r for r in bot_messages(stack, wa_id) if r["message"]["type"] == "template"])
    assert templates and templates[0]["message"]["template"]["name"] == "comanda_reengagement"
    assert templates[0]["message"]["template"]["language"]["code"] == "es_MX"


def test_proactive_messages_reach_whatsapp_through_rasas_external_events(stack):
    wa_id = new_wa_id()
    customer_says(stack, wa_id, "hello there")
    wait_replies(stack, wa_id)
    reply = requests.post(
        f"{stack.rasa}/conversations/centro:whatsapp:+52{wa_id[3:]}/trigger_intent",
        params={"token": TOKEN, "output_channel": "latest"},
        json={"name": "thank"},
        timeout=30,
    )
    assert reply.status_code == 200
    assert texts(wait_replies(stack, wa_id, count=2))[-1] == "You're welcome! 😊"


def bot_says(stack, wa_id, *custom_or_text):
    """Bot events appended through Rasa's HTTP API (the Rasa token), sent on WhatsApp as side effects."""
    events = [
        {"event": "bot", "text": item} if isinstance(item, str) else {"event": "bot", "data": {"custom": item}}
        for item in custom_or_text
    ]
    reply = requests.post(
        f"{stack.rasa}/conversations/centro:whatsapp:+52{wa_id[3:]}/tracker/events",
        params={"token": TOKEN, "output_channel": "latest", "execute_side_effects": "true"},
        json=events,
        timeout=30,
    )
    assert reply.status_code == 200, reply.text


def test_a_file_path_in_a_bot_message_is_never_read_nor_sent(stack):
    """The Rasa token must not read the server's files (issue 10 item 3): the sandbox's webhook secret
    would let its holder forge "paid" webhooks."""
    wa_id = new_wa_id()
    customer_says(stack, wa_id, "hola")
    wait_replies(stack, wa_id)
    secret = ROOT / "var" / "secrets" / "sandbox-webhook-secret"
    bot_says(
        stack,
        wa_id,
        {"type": "document", "document": {"path": str(secret), "filename": "factura.pdf"}},
        {"whatsapp": {"type": "image", "image": {"path": "/etc/passwd"}}},
        "¿Algo más?",
    )
    replies = wait_replies(stack, wa_id, count=2)
    assert [r["message"]["type"] for r in replies] == ["text", "text"]
    assert texts(replies)[-1] == "¿Algo más?"
    with new_session() as session:
        queued = select(m.OutboundMessage.payload).where(m.OutboundMessage.recipient == wa_id)
        assert [payload["type"] for payload in session.execute(queued).scalars()] == ["text", "text"]


def test_documents_go_by_their_id_in_the_document_store_and_only_to_their_conversation(stack):
    wa_id, other = new_wa_id(), new_wa_id()
    for customer in (wa_id, other):
        customer_says(stack, customer, "hola")
        wait_replies(stack, customer)
    with transaction() as session:
        mine = invoice_for(session, f"centro:whatsapp:+52{wa_id[3:]}")
        theirs = invoice_for(session, f"centro:whatsapp:+52{other[3:]}")
    bot_says(
        stack,
        wa_id,
        {"type": "document", "document": {"invoice_id": mine, "format": "pdf", "caption": "Tu factura"}},
        {"type": "document", "document": {"invoice_id": theirs, "format": "pdf"}},
        "Listo",
    )
    replies = wait_replies(stack, wa_id, count=3)
    assert [r["message"]["type"] for r in replies] == ["text", "document", "text"]
    document = replies[1]["message"]["document"]
    assert document["filename"].startswith("factura-F") and document["caption"] == "Tu factura"
    assert set(document) == {"id", "filename", "caption"}
    media = requests.get(
        f"{stack.backoffice}/simulator/graph/v21.0/{document['id']}",
        timeout=10,
        headers={"Authorization": "Bearer comanda-demo-access-token"},
    ).json()
    assert requests.get(media["url"], timeout=10).content == PDF


def test_a_message_left_by_a_replica_that_died_is_answered_without_a_restart(stack):
    """Another replica acknowledged and claimed this message, then died: the running server takes it over
    once nobody renews its lease, instead of waiting for its own next start-up (issue 10 item 6)."""
    wa_id = new_wa_id()
    [message], _ = parse_webhook(webhook([text_message(wa_id, "gracias")]))
    with transaction() as session:
        inbox.record_inbound(session, "whatsapp", message.message_id, "text", message.to_record(), sender=wa_id)
        session.execute(
            update(m.InboundMessage).where(m.InboundMessage.sender == wa_id).values(status="processing", attempts=1)
        )
    assert len(wait_replies(stack, wa_id, timeout=60)) == 1
    assert wait_for(lambda: answered_and_sent([wa_id]))
    assert len(bot_messages(stack, wa_id)) == 1


def test_a_crash_between_ack_and_reply_loses_nothing_and_answers_once(stack):
    """Acknowledged means stored in the inbox: what a dead process had stored, or had claimed and was
    answering, is answered once after a quick restart (issue 10 item 6: a claim younger than 2 minutes
    used to wait for the next start-up, forever in practice)."""
    assert stack.stop() == 0
    stored, claimed = new_wa_id(), new_wa_id()
    with transaction() as session:  # what the webhook had stored, and what a worker had claimed, at the crash
        for wa_id in (stored, claimed):
            [message], _ = parse_webhook(webhook([text_message(wa_id, "gracias")]))
            inbox.record_inbound(session, "whatsapp", message.message_id, "text", message.to_record(), sender=wa_id)
        session.execute(
            update(m.InboundMessage).where(m.InboundMessage.sender == claimed).values(status="processing", attempts=1)
        )
    stack.start()
    for wa_id in (stored, claimed):
        assert len(wait_replies(stack, wa_id)) == 1
    assert wait_for(lambda: answered_and_sent([stored, claimed]))
    for wa_id in (stored, claimed):
        assert len(bot_messages(stack, wa_id)) == 1


def test_ctrl_c_stops_every_process(stack):
    assert stack.stop() == 0
    for port in stack.ports.values():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
