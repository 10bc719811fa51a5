"""Poison input never blocks other customers (issue 10 item 8), on SQLite and PostgreSQL: what the inbox
cannot take as it came is fitted to its columns, and a row that still fails is parked on its own."""

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from comanda.enums import InboxStatus
from comanda.services import inbox
from connectors.whatsapp.inbox_writer import store_messages
from integrations.whatsapp.webhook import parse_webhook

CENTRO = "106540352242922"


def message(message_id, text="hola", message_type="text", sender="5215512345678"):
    raw = {"from": sender, "id": message_id, "timestamp": "1700000000", "type": message_type}
    raw[message_type] = {"body": text}
    payload = {
        "entry": [
            {"changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": CENTRO}, "messages": [raw]}}]}
        ]
    }
    [parsed], _ = parse_webhook(payload)
    return parsed


def rows():
    with new_session() as session:
        return {r.external_id: r for r in session.execute(select(m.InboundMessage)).scalars()}


def test_a_type_longer_than_its_column_does_not_fail_the_group(migrated):
    odd = message("wamid.long-type", message_type="t" * 300)
    fine = message("wamid.fine")
    stored = store_messages([odd, fine])
    assert [s.message_id for s in stored] == ["wamid.fine"]
    found = rows()
    assert found["wamid.long-type"].message_type == "t" * 30 and found["wamid.long-type"].status == "ignored"
    assert found["wamid.fine"].status == "received"


def test_nul_characters_lone_surrogates_and_long_ids_are_stored(migrated):
    odd = message("wamid." + "9" * 400, text="ho\x00la \ud800 ✅", sender="52155" + "1" * 300)
    [stored] = store_messages([odd])
    row = rows()[inbox.stored_id(stored.message_id)]
    assert len(row.external_id) <= 200 and len(row.sender) <= 160
    assert row.payload["parsed"]["text"] == "hola \ufffd ✅"
    assert store_messages([odd]) == []  # a redelivery is still recognised


def test_a_row_that_cannot_be_written_is_parked_and_the_others_are_stored(migrated, monkeypatch):
    original = inbox.record_inbound

    def failing(session, channel, external_id, *args, **kwargs):
        if external_id == "wamid.poison" and kwargs.get("status") != InboxStatus.PARKED:
            raise RuntimeError("this row always fails")
        return original(session, channel, external_id, *args, **kwargs)

    monkeypatch.setattr(inbox, "record_inbound", failing)
    stored = store_messages([message("wamid.before"), message("wamid.poison"), message("wamid.after")])
    assert [s.message_id for s in stored] == ["wamid.before", "wamid.after"]
    found = rows()
    assert found["wamid.poison"].status == "parked" and "this row always fails" in found["wamid.poison"].error
    assert store_messages([message("wamid.poison")]) == []  # Meta's redelivery finds it parked: no loop
