"""The webhook's inbox write, on SQLite and PostgreSQL. A burst is one INSERT (issue 17: a savepoint per
message, three round trips each on PostgreSQL, was most of the acknowledgement's time). Poison input never
blocks other customers (issue 10 item 8): what the inbox cannot take as it came is fitted to its columns,
and a row that still fails is parked on its own."""

from sqlalchemy import event, select

from comanda import models as m
from comanda.db import get_engine, new_session
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

    def failing_group(session, channel, messages, *args, **kwargs):
        if any(m.external_id == "wamid.poison" for m in messages):
            raise RuntimeError("this row always fails")
        return original_group(session, channel, messages, *args, **kwargs)

    original_group = inbox.record_inbound_many
    monkeypatch.setattr(inbox, "record_inbound", failing)
    monkeypatch.setattr(inbox, "record_inbound_many", failing_group)
    stored = store_messages([message("wamid.before"), message("wamid.poison"), message("wamid.after")])
    assert [s.message_id for s in stored] == ["wamid.before", "wamid.after"]
    found = rows()
    assert found["wamid.poison"].status == "parked" and "this row always fails" in found["wamid.poison"].error
    assert store_messages([message("wamid.poison")]) == []  # Meta's redelivery finds it parked: no loop


def test_a_burst_is_one_insert_and_redeliveries_are_dropped(migrated, caplog):
    assert [s.message_id for s in store_messages([message("wamid.known")])] == ["wamid.known"]
    inserts = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO INBOUND_MESSAGES"):
            inserts.append(statement)

    event.listen(get_engine(), "before_cursor_execute", count)
    try:
        burst = [message(f"wamid.{i}", sender=f"52155000000{i:02d}") for i in range(30)]
        stored = store_messages([*burst[:10], message("wamid.known"), burst[3], *burst[10:]])
    finally:
        event.remove(get_engine(), "before_cursor_execute", count)
    assert [s.message_id for s in stored] == [f"wamid.{i}" for i in range(30)]  # once each, in order
    assert [s.inbox_id for s in stored] == sorted(s.inbox_id for s in stored)  # ids in arrival order
    assert len(inserts) == 1 and "group commit" not in caplog.text
    found = rows()
    assert len(found) == 31 and all(found[s.message_id].id == s.inbox_id for s in stored)
