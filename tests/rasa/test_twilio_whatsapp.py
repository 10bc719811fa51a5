"""The Twilio WhatsApp channel over real HTTP: Rasa registers it on a Sanic server on a free port,
requests are signed the way Twilio signs them (Twilio's own RequestValidator), messages land in the
demo database's inbox, and replies go to a local fake of Twilio's Messages API."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Awaitable, Callable, Dict, Iterator, List, Optional
from urllib.parse import urlencode

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from comanda import models as m
from comanda.db import new_session
from connectors.twilio_whatsapp import MAX_BODY, TwilioWhatsAppInput
from integrations.whatsapp.messages import split_text
from tests.helpers.fake_http import Answer, FakeHTTP, Request
from tests.helpers.net import free_port
from tests.helpers.paths import WHATSAPP_FIXTURES

FIXTURE = WHATSAPP_FIXTURES / "twilio__whatsapp_inbound_button_form_fields.json"
ACCOUNT_SID, AUTH_TOKEN = "AC" + "0" * 32, "test-auth-token"
SHOP_NUMBER = "whatsapp:+14155238886"
CUSTOMER = "whatsapp:+5215512345678"


class FakeTwilio(FakeHTTP):
    """Twilio's Messages API as far as the channel uses it: form posts, a message resource back."""

    def __init__(self) -> None:
        self.fail_with: Optional[int] = None
        super().__init__()

    def respond(self, request: Request) -> Answer:
        if self.fail_with:
            return self.fail_with, {
                "code": 21211,
                "message": "Invalid 'To' Phone Number",
                "status": self.fail_with,
                "more_info": "https://www.twilio.com/docs/errors/21211",
            }
        form = request.form()
        return 201, {
            "sid": "SM" + uuid.uuid4().hex,
            "status": "queued",
            "account_sid": ACCOUNT_SID,
            "to": form["To"][0],
            "from": form["From"][0],
            "body": form.get("Body", [""])[0],
        }


@pytest.fixture(autouse=True, scope="module")
def sanic_test_mode() -> Iterator[None]:
    """Several apps in one process, as sanic-testing allows: keeps Sanic's method rewriting from stacking."""
    Sanic.test_mode = True
    yield
    Sanic.test_mode = False


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def channel(twilio, demo) -> TwilioWhatsAppInput:
    return TwilioWhatsAppInput.from_credentials(
        {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "twilio_number": SHOP_NUMBER, "api_base_url": twilio.url}
    )


@dataclass
class Server:
    url: str
    received: List[UserMessage] = field(default_factory=list)

    async def post(
        self,
        fields: Dict[str, str],
        signature: Optional[str] = "sign",
        token: str = AUTH_TOKEN,
        signed_url: Optional[str] = None,
        body: Optional[Dict[str, str]] = None,
    ) -> int:
        """POST form fields as Twilio does: signed over the URL and the fields (or a given signature)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "sign":
            signature = RequestValidator(token).compute_signature(signed_url or self.url, fields)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url, data=urlencode(body or fields), headers=headers) as answer:
                return answer.status


def serve(channel: TwilioWhatsAppInput, scenario: Callable[[Server], Awaitable[None]]) -> Server:
    """Run a scenario against the channel registered by Rasa on a real Sanic server."""

    async def main() -> Server:
        app = Sanic("twilio_test", configure_logging=False)
        port = free_port()
        server = Server(f"http://127.0.0.1:{port}/webhooks/twilio_whatsapp/webhook")

        async def handle_message(message: UserMessage) -> None:  # what Rasa's agent receives
            server.received.append(message)

        app.ctx.agent = SimpleNamespace(handle_message=handle_message)
        register([channel], app, "/webhooks/")
        running = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
        await running.startup()
        try:
            await scenario(server)
        finally:
            running.close()
            await running.wait_closed()
        return server

    return asyncio.run(main())


def text_fields(sid: str = "SM00000000000000000000000000000001", body: str = "hola, ¿qué tienen?") -> Dict[str, str]:
    return {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": "Ana",
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": "5215512345678",
        "SmsStatus": "received",
        "Body": body,
        "To": SHOP_NUMBER,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": CUSTOMER,
        "ApiVersion": "2010-04-01",
    }


def inbox() -> List[tuple]:
    with new_session() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(m.InboundMessage.external_id, m.InboundMessage.status, m.InboundMessage.channel).order_by(
                    m.InboundMessage.id
                )
            )
        ]


def customers() -> int:
    with new_session() as session:
        return session.execute(select(func.count()).select_from(m.Customer)).scalar()


def test_a_signed_text_reaches_the_bot(channel):
    async def scenario(server: Server) -> None:
        assert await server.post(text_fields()) == 204

    [message] = serve(channel, scenario).received
    assert message.text == "hola, ¿qué tienen?"
    assert message.sender_id == "centro:twilio:+525512345678"  # one person, one E.164 number on every channel
    assert message.input_channel == "twilio_whatsapp" and message.message_id == "SM00000000000000000000000000000001"
    assert message.metadata == {
        "channel": "twilio",
        "message_id": message.message_id,
        "store_id": "centro",
        "profile_name": "Ana",
        "media": [],
    }
    assert message.output_channel.name() == "twilio_whatsapp"
    assert inbox() == [("SM00000000000000000000000000000001", "processed", "twilio")]
    with new_session() as session:
        conversation = session.get(m.Conversation, "centro:twilio:+525512345678")
        assert conversation.recipient == CUSTOMER and conversation.channel == "twilio"
        assert session.get(m.Customer, conversation.customer_id).name == "Ana"


@pytest.mark.parametrize("case", ["missing", "wrong token", "tampered body", "other url"])
def test_without_a_valid_signature_nothing_is_processed(channel, case):
    async def scenario(server: Server) -> None:
        fields = text_fields()
        status = await server.post(
            fields,
            **{
                "missing": {"signature": None},
                "wrong token": {"token": "not-the-token"},
                "tampered body": {"body": {**fields, "Body": "cancela todo"}},
                "other url": {"signed_url": "https://elsewhere.example/webhooks/twilio_whatsapp/webhook"},
            }[case],
        )
        assert status == 403

    assert serve(channel, scenario).received == []
    assert inbox() == [] and customers() == 0


def test_the_public_url_is_what_twilio_signed(twilio, demo):
    public = "https://shop.example.com/webhooks/twilio_whatsapp/webhook"
    channel = TwilioWhatsAppInput.from_credentials(
        {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "twilio_number": SHOP_NUMBER,
            "webhook_url": public,
            "store": "roma",
        }
    )

    async def scenario(server: Server) -> None:
        assert await server.post(text_fields(), signed_url=public) == 204
        assert await server.post(text_fields("SM2")) == 403  # signed for the local URL Twilio never calls

    [message] = serve(channel, scenario).received
    assert message.sender_id == "roma:twilio:+525512345678"


def test_a_repeated_message_sid_is_processed_once(channel):
    async def scenario(server: Server) -> None:
        for _ in range(3):
            assert await server.post(text_fields("SMREPEATED")) == 204
        assert await server.post(text_fields("SMOTHER", "otra")) == 204

    assert [m.text for m in serve(channel, scenario).received] == ["hola, ¿qué tienen?", "otra"]
    assert inbox() == [("SMREPEATED", "processed", "twilio"), ("SMOTHER", "processed", "twilio")]


def test_a_tapped_button_sends_its_payload(channel):
    captured = {k: v for k, v in json.loads(FIXTURE.read_text()).items() if v is not None}
    captured.update(From="whatsapp:+201012345678", WaId="201012345678")  # the capture masked the number

    async def scenario(server: Server) -> None:
        assert await server.post(captured) == 204

    [message] = serve(channel, scenario).received
    assert message.text == captured["ButtonPayload"] == "قبول الدعوة"
    assert message.sender_id == "centro:twilio:+201012345678" and message.message_id == captured["MessageSid"]


def test_media_tells_the_bot_it_received_media(channel):
    fields = {
        **text_fields("SMMEDIA", body=""),
        "NumMedia": "1",
        "MessageType": "image",
        "MediaContentType0": "image/jpeg",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC/Media/ME1",
    }

    async def scenario(server: Server) -> None:
        assert await server.post(fields) == 204  # the blank Body is part of the signature

    [message] = serve(channel, scenario).received
    assert message.text == '/received_media{"media_type": "image"}'
    assert message.metadata["media"] == [{"url": fields["MediaUrl0"], "content_type": "image/jpeg"}]


def test_a_location_becomes_share_location(channel):
    fields = {
        **text_fields("SMLOC", body=""),
        "MessageType": "location",
        "Latitude": "19.4326",
        "Longitude": "-99.1332",
        "Address": "Zócalo, CDMX",
    }

    async def scenario(server: Server) -> None:
        assert await server.post(fields) == 204

    [message] = serve(channel, scenario).received
    assert message.text == '/share_location{"latitude": 19.4326, "longitude": -99.1332}'


def test_unusable_senders_and_empty_messages_reach_nobody(channel):
    async def scenario(server: Server) -> None:
        assert await server.post({**text_fields("SMBADNUMBER"), "From": "whatsapp:+1"}) == 204
        assert await server.post(text_fields("SMEMPTY", body="  ")) == 204

    assert serve(channel, scenario).received == []
    assert inbox() == [("SMEMPTY", "ignored", "twilio")]


def test_replies_reach_twilio_and_a_number_picks_a_button(channel, twilio):
    async def scenario(server: Server) -> None:
        assert await server.post(text_fields("SMHOLA", body="hola")) == 204
        out, recipient = server.received[0].output_channel, server.received[0].sender_id
        await out.send_response(recipient, {"text": "¡Hola!\nBienvenida a Café Esquina"})
        await out.send_response(
            recipient,
            {
                "text": "¿Confirmas?",
                "buttons": [{"title": "Sí", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
            },
        )
        await out.send_response(recipient, {"image": "https://shop.example.com/menu.jpg"})
        assert await server.post(text_fields("SMPICK", body="2")) == 204
        assert await server.post(text_fields("SMOUT", body="7")) == 204

    assert [m.text for m in serve(channel, scenario).received] == ["hola", "/deny", "7"]
    assert [p.path for p in twilio.requests] == [f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"] * 3
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert all(p.headers.get("Authorization") == expected_auth for p in twilio.requests)
    forms = [{k: v[0] for k, v in p.form().items()} for p in twilio.requests]
    assert all(f["To"] == CUSTOMER and f["From"] == SHOP_NUMBER for f in forms)  # the address Twilio gave
    assert forms[0]["Body"] == "¡Hola!\nBienvenida a Café Esquina"
    assert forms[1]["Body"] == "¿Confirmas?\n\n1. Sí\n2. No"
    assert forms[2]["MediaUrl"] == "https://shop.example.com/menu.jpg" and "Body" not in forms[2]


def test_a_refused_send_is_logged_not_raised(channel, twilio, caplog):
    twilio.fail_with = 400

    async def scenario(server: Server) -> None:
        await channel.get_output_channel().send_text_message("centro:twilio:+5215512345678", "hola")

    serve(channel, scenario)
    assert len(twilio.requests) == 1
    assert "Twilio did not take a message to whatsapp:+5215512345678" in caplog.text


def test_long_texts_are_split_at_paragraphs_within_twilios_limit():
    text = "\n\n".join(["a" * 900, "b" * 900, "c" * 3500])
    parts = split_text(text, MAX_BODY)
    assert all(len(p) <= 1600 for p in parts) and "".join(parts).replace("\n\n", "") == text.replace("\n\n", "")
    assert parts[0] == "a" * 900 and parts[1] == "b" * 900 and len(parts) == 5
    assert split_text("hola\n\nadiós", MAX_BODY) == ["hola\n\nadiós"]
