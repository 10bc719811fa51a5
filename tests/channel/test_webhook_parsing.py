"""Meta's webhook payloads: every real fixture parses, and no JSON can make the parser raise."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.whatsapp.inbox_worker import bot_text
from integrations.whatsapp.webhook import check_signature, parse_webhook, sign
from tests.helpers.paths import WHATSAPP_FIXTURES

WEBHOOKS = sorted(
    p for p in WHATSAPP_FIXTURES.glob("*.json") if "error_object" not in p.name and not p.name.startswith("twilio")
)


@pytest.mark.parametrize("path", WEBHOOKS, ids=lambda p: p.name)
def test_every_real_payload_parses(path):
    messages, statuses = parse_webhook(json.loads(path.read_text()))
    assert messages or statuses or "system" in path.name
    for message in messages:
        assert message.message_id and message.phone_number_id
        text, _ = bot_text(message, None)
        assert (text is not None) == (message.kind != "ignored")


def load(name):
    return parse_webhook(json.loads((WHATSAPP_FIXTURES / name).read_text()))


def test_kinds_of_messages():
    assert load("pywa__message__text.json")[0][0].text == "Body Text"
    [reply] = load("netflie__interactive_button_reply.json")[0]
    assert reply.kind == "reply" and reply.reply_id
    [row] = load("pywa__callback_selection__description.json")[0]
    assert row.kind == "reply"
    [quick] = load("netflie__template_quick_reply_button.json")[0]
    assert quick.kind == "reply"
    [placeholder] = load("netflie__location.json")[0]
    assert placeholder.kind == "ignored"  # "LOCATION_LATITUDE" is not a coordinate
    [location] = load("pywa__message__chosen_location.json")[0]
    assert location.kind == "location" and isinstance(location.location["latitude"], float)
    assert bot_text(location, None)[0].startswith("/share_location{")
    [order] = load("pywa__message__order.json")[0]
    assert order.kind == "order" and order.items and all(i["quantity"] > 0 for i in order.items)
    assert json.loads(bot_text(order, None)[0][len("/catalog_order") :])["catalog_items"] == order.items
    for name in (
        "pywa__message__image.json",
        "pywa__message__voice.json",
        "netflie__sticker.json",
        "netflie__document.json",
        "pywa__message__audio.json",
    ):
        [media] = load(name)[0]
        assert media.kind == "media" and bot_text(media, None)[0].startswith("/received_media")
    for name in (
        "pywa__message__reaction.json",
        "netflie__system_user_changed_number.json",
        "pywa__message__unsupported.json",
        "netflie__unsupported_type_unknown.json",
        "netflie__interactive_nfm_reply_flow.json",
        "pywa__message__contacts.json",
    ):
        assert all(m.kind == "ignored" for m in load(name)[0]), name


def test_batched_changes_give_every_message():
    messages, _ = load("netflie__batched_two_changes_text.json")
    assert [m.text for m in messages] == ["MESSAGE_BODY", "MESSAGE_BODY2"]


def test_bsuid_only_sender_and_profile_name():
    [message] = load("netflie__text_bsuid_only_no_from.json")[0]
    assert message.wa_id is None and message.user_id == "BSUID_123" and message.sender == "BSUID_123"
    assert message.profile_name == "NAME"
    [message] = load("pywa__message__text.json")[0]
    assert message.wa_id == "972987654321" and message.user_id == "US.13491208655302741918"
    [message] = load("netflie__text_without_contact_profile.json")[0]
    assert message.profile_name is None and message.wa_id


def test_failed_status_carries_its_error_code():
    [status] = load("pywa__message_status__failed.json")[1]
    assert status.status == "failed" and status.error_codes


def test_numbered_answers_and_long_ids_map_back_to_payloads():
    [message] = load("pywa__message__text.json")[0]
    message.text = " 2 "
    assert bot_text(message, ["/a", "/b", "/c"]) == ("/b", False)
    message.text = "12"
    assert bot_text(message, ["/a"]) == ("12", False)
    [reply] = load("netflie__interactive_button_reply.json")[0]
    reply.reply_id = "#2"
    assert bot_text(reply, ["/a", '/add_items{"sku": "X"}']) == ('/add_items{"sku": "X"}', False)


def test_signature():
    body = b'{"entry": []}'
    good = sign("secret", body)
    assert good.startswith("sha256=") and check_signature("secret", body, good) is None
    assert check_signature("secret", body, None) == "missing"
    assert check_signature("secret", body, "sha256=" + "0" * 64) == "invalid"
    assert check_signature("secret", body + b" ", good) == "invalid"
    assert check_signature("", body, good) == "invalid"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "entry",
                    "changes",
                    "value",
                    "messages",
                    "statuses",
                    "metadata",
                    "phone_number_id",
                    "id",
                    "from",
                    "type",
                    "text",
                    "body",
                    "interactive",
                    "button_reply",
                    "list_reply",
                    "location",
                    "latitude",
                    "longitude",
                    "order",
                    "product_items",
                    "quantity",
                    "product_retailer_id",
                    "contacts",
                    "wa_id",
                    "user_id",
                    "profile",
                    "name",
                    "status",
                    "errors",
                    "code",
                    "field",
                    "button",
                    "payload",
                    "image",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_parser_never_raises(data):
    messages, statuses = parse_webhook(data)
    for message in messages:
        bot_text(message, ["/x"])
    for status in statuses:
        assert isinstance(status.error_codes, list)


def test_typed_text_is_never_an_intent_and_is_read_up_to_1000_characters():
    [message] = load("pywa__message__text.json")[0]
    message.text = " /restart "
    assert bot_text(message, None) == ("restart", False)
    message.text = '/EXTERNAL_order_update{"order_id": 1, "event": "paid"}'
    assert bot_text(message, None)[0].startswith("EXTERNAL_order_update{")
    message.text = "2 de pastor " * 200
    text, truncated = bot_text(message, None)
    assert truncated and 500 < len(text) <= 1000 and message.text.strip()[len(text)] == " "  # cut between words
    message.text = "x" * 5000
    assert bot_text(message, None) == ("x" * 1000, True)
