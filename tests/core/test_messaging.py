"""Inbox, outbox and customer identity: the pieces that make the WhatsApp channel lose nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.errors import InvalidInput
from comanda.services import inbox, outbox
from comanda.services.carts import add_skus, cart_view, open_cart
from comanda.services.customers import find_or_create_customer, normalize_phone, touch_conversation


def test_phone_numbers_are_e164_and_mexican_mobiles_lose_the_old_1():
    assert normalize_phone("5215512345678") == "+525512345678"
    assert normalize_phone("+52 55 1234 5678") == "+525512345678"
    assert normalize_phone("16315551234") == "+16315551234"
    with pytest.raises(InvalidInput):
        normalize_phone("PHONE_NUMBER")


def conversation(session, phone="+525512345678", store="centro"):
    customer = find_or_create_customer(session, phone, None, "Ana")
    return touch_conversation(session, store, customer, "whatsapp", phone.lstrip("+"))


def test_one_customer_two_stores_two_conversations(demo):
    with transaction() as session:
        a = conversation(session, store="centro")
        b = conversation(session, store="roma")
        assert a.customer_id == b.customer_id and a.id != b.id
        assert a.id == "centro:whatsapp:+525512345678"
        customer = find_or_create_customer(session, "+525512345678", "MX.123", "Otra")
        assert customer.name == "Ana" and customer.whatsapp_user_id == "MX.123"
        assert find_or_create_customer(session, None, "MX.123").id == customer.id


def test_inbox_drops_redeliveries_and_claims_once(demo):
    with transaction() as session:
        first = inbox.record_inbound(session, "whatsapp", "wamid.1", "text", {"text": "hola"}, lease_owner="a")
        again = inbox.record_inbound(session, "whatsapp", "wamid.1", "text", {"text": "hola"}, lease_owner="a")
        assert first and again is None
    with transaction() as session:
        assert inbox.claim(session, first, "a", 30) == 1
    with transaction() as session:
        assert inbox.claim(session, first, "b", 30) is None  # replica a holds it
        assert inbox.expired(session, "whatsapp") == []
    clock.set_clock(lambda: clock.datetime.now(clock.timezone.utc) + timedelta(minutes=5))
    try:
        with transaction() as session:
            assert [r.id for r in inbox.expired(session, "whatsapp")] == [first]  # replica a stopped renewing
            assert inbox.claim(session, first, "b", 30) == 2
            inbox.finish(session, first)
        with new_session() as session:
            assert inbox.expired(session, "whatsapp") == []
    finally:
        clock.set_clock(None)


def test_outbox_sends_each_row_once_in_conversation_order(demo):
    with transaction() as session:
        ids = [
            outbox.enqueue(
                session, "whatsapp", "521", {"n": n}, store_id="centro", conversation_id="c1", dedupe_key=f"wamid.9:{n}"
            )
            for n in range(3)
        ]
        other = outbox.enqueue(session, "whatsapp", "522", {"n": 9}, store_id="centro", conversation_id="c2")
        assert (
            outbox.enqueue(session, "whatsapp", "521", {"n": 0}, conversation_id="c1", dedupe_key="wamid.9:0") is None
        )
    with transaction() as session:
        claimed = outbox.claim_due(session, "whatsapp")
    assert sorted(i.id for i in claimed) == sorted([ids[0], other])
    with transaction() as session:
        assert outbox.claim_due(session, "whatsapp") == []  # c1's first is still being sent
        outbox.mark_sent(session, ids[0], "wamid.out.0")
    with transaction() as session:
        [item] = outbox.claim_due(session, "whatsapp")
        assert item.id == ids[1]
        status = outbox.mark_failed(session, item, "HTTP 500", retryable=True)
        assert status == "queued"
    with transaction() as session:
        assert outbox.claim_due(session, "whatsapp") == []  # backing off; row 3 waits behind row 2
    clock.set_clock(lambda: clock.datetime.now(clock.timezone.utc) + timedelta(minutes=10))
    try:
        with transaction() as session:
            [item] = outbox.claim_due(session, "whatsapp")
            assert item.id == ids[1] and item.attempts == 2
    finally:
        clock.set_clock(None)


def test_outbox_gives_up_after_the_bound_and_never_resends_interrupted_rows(demo):
    with transaction() as session:
        row_id = outbox.enqueue(session, "whatsapp", "521", {}, conversation_id="c3")
    item = outbox.OutboxItem(row_id, "whatsapp", None, "c3", "521", {}, outbox.MAX_ATTEMPTS)
    with transaction() as session:
        assert outbox.mark_failed(session, item, "HTTP 503", retryable=True) == "given_up"
        assert outbox.mark_failed(session, item, "HTTP 400", retryable=False) == "failed"
        interrupted = outbox.enqueue(session, "whatsapp", "521", {}, conversation_id="c4")
    with transaction() as session:
        outbox.claim_due(session, "whatsapp")
    clock.set_clock(lambda: clock.datetime.now(clock.timezone.utc) + timedelta(minutes=5))
    try:
        with transaction() as session:
            assert outbox.claim_due(session, "whatsapp") == []
            assert session.get(m.OutboundMessage, interrupted).status == "given_up"
    finally:
        clock.set_clock(None)


def test_statuses_only_move_forward(demo):
    with transaction() as session:
        row_id = outbox.enqueue(session, "whatsapp", "521", {}, conversation_id="c5")
        outbox.mark_sent(session, row_id, "wamid.s")
        outbox.apply_status(session, "wamid.s", "read")
        outbox.apply_status(session, "wamid.s", "delivered")
        assert session.get(m.OutboundMessage, row_id).status == "read"
        outbox.apply_status(session, "wamid.s", "failed", "131047")
        assert session.get(m.OutboundMessage, row_id).status == "failed"
        assert outbox.apply_status(session, "wamid.unknown", "read") is None


def test_catalog_order_lines_join_the_conversation_cart(demo):
    with transaction() as session:
        conv = conversation(session)
        cart = open_cart(session, conv.id)
        result = add_skus(session, cart, [("TARO-MT", 2), ("PLAYERA-G-NEGRO", 1), ("NOPE", 1), ("TARO-MT", 1)], "en")
        assert result.unknown == ["NOPE"]
        lines, total = cart_view(session, cart, "en")
        assert [(cl.sku, cl.quantity) for cl in lines] == [("TARO-MT", 3), ("PLAYERA-G-NEGRO", 1)]
        assert lines[0].name == "Taro milk tea (medium)"  # the default size, which costs 10 more
        assert lines[1].name == "Café Esquina T-shirt (L / black)"
        assert total == Decimal("505.00")
        assert open_cart(session, conv.id).id == cart.id
