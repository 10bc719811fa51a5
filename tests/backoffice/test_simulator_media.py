"""The customer's attachments and the reset, through the simulator's control API (the page's buttons use it)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Dict

import pytest
import requests

from tests.helpers.graph import TOKEN, messages_with, value_of, verified
from tests.helpers.simulator import CENTRO, ROMA

CUSTOMER = {"phone_number_id": CENTRO, "wa_id": "5215587654321", "name": "Ana"}


def upload(backoffice: str, name: str, mime_type: str, data: bytes) -> Dict[str, Any]:
    answer = requests.post(f"{backoffice}/simulator/api/media", files={"file": (name, data, mime_type)}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def send(backoffice: str, **fields: Any) -> requests.Response:
    return requests.post(f"{backoffice}/simulator/api/send", json={**CUSTOMER, **fields}, timeout=10)


def test_a_voice_note_is_metas_audio_message_and_its_bytes_are_at_the_graph_api(backoffice, receiver, graph):
    data = b"OggS\0fake opus"
    media = upload(backoffice, "voice.ogg", "audio/ogg", data)
    assert media["mime_type"] == "audio/ogg; codecs=opus" and media["file_size"] == len(data)
    sent = send(backoffice, type="audio", media_id=media["id"], voice=True)
    assert sent.status_code == 200, sent.text
    [post] = receiver.wait_for(messages_with(sent.json()["id"]))
    message = value_of(verified(post))["messages"][0]
    assert message["type"] == "audio"
    assert message["audio"] == {
        "mime_type": "audio/ogg; codecs=opus",
        "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "id": media["id"],
        "voice": True,
    }
    auth = {"Authorization": f"Bearer {TOKEN}"}
    info = requests.get(f"{graph.base}/{media['id']}", headers=auth, timeout=5).json()
    assert requests.get(info["url"], headers=auth, timeout=5).content == data


@pytest.mark.parametrize(
    ("file", "fields", "error"),
    [
        (("a.pdf", "application/pdf", b"%PDF"), {"type": "image"}, "cannot be sent as image"),
        (("a.png", "image/png", b"\x89PNG"), {"type": "audio"}, "cannot be sent as audio"),
        (("a.png", "image/png", b"\x89PNG"), {"type": "image", "voice": True}, "'voice'"),
        (("a.pdf", "application/pdf", b"%PDF"), {"type": "document", "caption": "x" * 1025}, "'caption'"),
        (None, {"type": "document", "media_id": "nope"}, "needs 'media_id'"),
    ],
    ids=["pdf as photo", "photo as audio", "voice photo", "long caption", "unknown media"],
)
def test_attachments_that_whatsapp_would_not_send_are_refused(backoffice, file, fields, error):
    media_id = upload(backoffice, *file)["id"] if file else None
    answer = send(backoffice, **({"media_id": media_id} if media_id else {}), **fields)
    assert answer.status_code == 400 and error in answer.json()["error"]


def test_an_upload_needs_a_file(backoffice):
    answer = requests.post(f"{backoffice}/simulator/api/media", data={"x": "y"}, timeout=10)
    assert answer.status_code == 400


def test_reset_forgets_one_customers_chats_only(backoffice, graph):
    def chat(store: str, wa_id: str) -> list:
        query = {"phone_number_id": store, "wa_id": wa_id}
        return requests.get(f"{backoffice}/simulator/api/messages", params=query, timeout=5).json()["messages"]

    for store in (CENTRO, ROMA):
        body = {"messaging_product": "whatsapp", "to": "5215511110000", "type": "text", "text": {"body": "hola"}}
        assert graph.send(body, store).status_code == 200
    assert graph.send({**body, "to": "5215511110001"}).status_code == 200
    answer = requests.delete(f"{backoffice}/simulator/api/chats", params={"wa_id": "5215511110000"}, timeout=5)
    assert answer.json() == {"wa_id": "5215511110000", "removed": 2}
    assert chat(CENTRO, "5215511110000") == [] and chat(ROMA, "5215511110000") == []
    assert len(chat(CENTRO, "5215511110001")) == 1
    assert requests.delete(f"{backoffice}/simulator/api/chats", params={"wa_id": "+52"}, timeout=5).status_code == 400
