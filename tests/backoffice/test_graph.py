"""The fake Cloud API: what Meta accepts, what it refuses and how, statuses by webhook, media, faults."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Dict, List

import pytest
import requests

from tests.helpers.graph import TEXT, TOKEN, WA_ID, arm, message, sent, statuses_of, value_of, verified
from tests.helpers.paths import WHATSAPP_FIXTURES
from tests.helpers.simulator import CENTRO, ROMA


def buttons(*titles: str, ids: List[str] = None) -> Dict[str, Any]:
    ids = ids or [f"b{i}" for i in range(len(titles))]
    return {
        "type": "button",
        "body": {"text": "¿Algo más?"},
        "action": {
            "buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in zip(ids, titles, strict=False)]
        },
    }


def menu(rows: List[Dict[str, str]], label: str = "Ver menú", sections: int = 1) -> Dict[str, Any]:
    size = -(-len(rows) // sections)
    return {
        "type": "list",
        "body": {"text": "Elige"},
        "action": {
            "button": label,
            "sections": [{"title": f"Sección {n}", "rows": rows[n * size : (n + 1) * size]} for n in range(sections)],
        },
    }


def rows(count: int, title: str = "Café", description: str = "Con leche") -> List[Dict[str, str]]:
    return [{"id": f"r{i}", "title": title, "description": description} for i in range(count)]


ACCEPTED = {
    "text": TEXT,
    "text_4096": message("text", {"body": "x" * 4096}),
    "buttons_3_at_limits": message(
        "interactive", buttons("a" * 20, "b" * 20, "c" * 20, ids=["1" * 256, "2" * 256, "3" * 256])
    ),
    "buttons_with_header_footer": message(
        "interactive",
        {**buttons("Sí"), "header": {"type": "text", "text": "Pedido"}, "footer": {"text": "Café Esquina"}},
    ),
    "list_10_rows_at_limits": message("interactive", menu(rows(10, "t" * 24, "d" * 72), label="l" * 20, sections=2)),
    "cta_url": message(
        "interactive",
        {
            "type": "cta_url",
            "body": {"text": "Paga aquí"},
            "action": {"name": "cta_url", "parameters": {"display_text": "Pagar", "url": "https://pay.example/1"}},
        },
    ),
    "image_link": message("image", {"link": "https://example.com/menu.jpg", "caption": "Menú"}),
    "document": message("document", {"link": "https://example.com/f.pdf", "filename": "factura.pdf"}),
    "template": message(
        "template",
        {
            "name": "order_ready",
            "language": {"code": "es_MX"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "17"}]}],
        },
    ),
    "location": message("location", {"latitude": 19.4326, "longitude": -99.1332, "name": "Centro"}),
    "reaction": message("reaction", {"message_id": "wamid.X", "emoji": "👍"}),
    "to_with_plus": message("text", {"body": "hola"}, to="+5215512345678"),
}

REFUSED = {
    "no_messaging_product": {**message("text", {"body": "hi"}), "messaging_product": None},
    "bad_to": message("text", {"body": "hi"}, to="not-a-number"),
    "unknown_type": message("hologram", {"body": "hi"}),
    "empty_text": message("text", {"body": ""}),
    "text_4097": message("text", {"body": "x" * 4097}),
    "no_buttons": message("interactive", buttons()),
    "four_buttons": message("interactive", buttons("a", "b", "c", "d")),
    "button_title_21": message("interactive", buttons("a" * 21)),
    "duplicate_button_titles": message("interactive", buttons("Sí", "Sí")),
    "button_id_257": message("interactive", buttons("Sí", ids=["x" * 257])),
    "eleven_rows": message("interactive", menu(rows(11), sections=2)),
    "row_title_25": message("interactive", menu(rows(1, title="t" * 25))),
    "row_description_73": message("interactive", menu(rows(1, description="d" * 73))),
    "list_label_21": message("interactive", menu(rows(1), label="l" * 21)),
    "media_without_id_or_link": message("image", {"caption": "?"}),
    "template_without_language": message("template", {"name": "order_ready"}),
    "header_61": message("interactive", {**buttons("Sí"), "header": {"type": "text", "text": "h" * 61}}),
}


def test_health(backoffice):
    answer = requests.get(f"{backoffice}/health", timeout=5)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_the_graph_api_needs_the_access_token(graph, token):
    answer = graph.send(ACCEPTED["text"], token=token)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["type"] == "OAuthException" and error["code"] == 190 and error["message"] and error["fbtrace_id"]
    no_header = requests.post(f"{graph.base}/{CENTRO}/messages", json=ACCEPTED["text"], timeout=5)
    assert no_header.status_code == 401


@pytest.mark.parametrize("name", ACCEPTED)
def test_every_kind_of_message_is_accepted_and_kept(graph, backoffice, name):
    body = ACCEPTED[name]
    answer = graph.send(body)
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["messaging_product"] == "whatsapp"
    assert reply["contacts"] == [{"input": body["to"], "wa_id": WA_ID}]
    message_id = reply["messages"][0]["id"]
    assert message_id.startswith("wamid.")
    kept = [m for m in sent(backoffice) if m["id"] == message_id]
    assert len(kept) == 1 and kept[0]["message"] == body and kept[0]["wa_id"] == WA_ID


def test_message_ids_are_unique(graph):
    ids = {graph.send(ACCEPTED["text"]).json()["messages"][0]["id"] for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("name", REFUSED)
def test_what_meta_refuses_is_refused_in_graphs_shape(graph, backoffice, name):
    before = len(sent(backoffice))
    answer = graph.send(REFUSED[name])
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == 100 and error["type"] == "OAuthException" and error["message"] == "(#100) Invalid parameter"
    assert error["error_data"]["messaging_product"] == "whatsapp" and error["error_data"]["details"]
    assert len(sent(backoffice)) == before


def test_a_body_that_is_not_json_is_refused(graph):
    answer = requests.post(
        f"{graph.base}/{CENTRO}/messages", data=b"{nope", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100


def test_an_unknown_phone_number_id_is_refused(graph):
    answer = graph.send(ACCEPTED["text"], phone_number_id="999")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100


@pytest.mark.parametrize("version", ["v21.0", "v19.0", "v25.0"])
def test_any_graph_version_is_served(backoffice, version):
    answer = requests.post(
        f"{backoffice}/simulator/graph/{version}/{CENTRO}/messages",
        json=ACCEPTED["text"],
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 200


def test_statuses_come_back_by_signed_webhook_in_order(graph, receiver):
    message_id = graph.send(message("text", {"body": "¿qué tal?"}, to="5215500000001"), phone_number_id=ROMA).json()[
        "messages"
    ][0]["id"]
    posts = receiver.wait_for(statuses_of(message_id), count=3)
    payloads = [verified(p) for p in posts]
    assert [value_of(p)["statuses"][0]["status"] for p in payloads] == ["sent", "delivered", "read"]
    for payload in payloads:
        assert payload["object"] == "whatsapp_business_account"
        change = payload["entry"][0]["changes"][0]
        assert change["field"] == "messages"
        value = change["value"]
        assert value["messaging_product"] == "whatsapp"
        assert value["metadata"] == {"display_phone_number": "525587654321", "phone_number_id": ROMA}
        update = value["statuses"][0]
        assert update["recipient_id"] == "5215500000001"
        assert update["timestamp"].isdigit() and abs(int(update["timestamp"]) - time.time()) < 60
    assert payloads[0]["entry"][0]["changes"][0]["value"]["statuses"][0]["conversation"]["origin"] == {
        "type": "service"
    }
    assert posts[0].headers["Content-Type"] == "application/json"


def test_the_chat_shows_the_statuses(graph, backoffice, receiver):
    message_id = graph.send(message("text", {"body": "hola"}, to="5215500000002")).json()["messages"][0]["id"]
    receiver.wait_for(statuses_of(message_id), count=3)
    chat = requests.get(
        f"{backoffice}/simulator/api/messages", params={"phone_number_id": CENTRO, "wa_id": "5215500000002"}, timeout=5
    ).json()
    assert [(m["id"], m["status"], m["direction"]) for m in chat["messages"]] == [(message_id, "read", "out")]
    later = requests.get(
        f"{backoffice}/simulator/api/messages",
        params={"phone_number_id": CENTRO, "wa_id": "5215500000002", "after": chat["seq"]},
        timeout=5,
    ).json()
    assert later["messages"] == [] and later["seq"] == chat["seq"]


def test_mark_as_read_with_typing_indicator(graph, backoffice):
    customer = {"phone_number_id": CENTRO, "wa_id": "5215500000003"}
    inbound = requests.post(
        f"{backoffice}/simulator/api/send", json={**customer, "name": "Eva", "type": "text", "text": "hola"}, timeout=10
    ).json()
    answer = graph.send(
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": inbound["id"],
            "typing_indicator": {"type": "text"},
        }
    )
    assert answer.status_code == 200 and answer.json() == {"success": True}
    chat = requests.get(f"{backoffice}/simulator/api/messages", params=customer, timeout=5).json()
    assert chat["typing"] is True
    assert [(m["id"], m["status"], m["direction"]) for m in chat["messages"]] == [(inbound["id"], "read", "in")]
    graph.send(message("text", {"body": "¡Hola Eva!"}, to="5215500000003"))
    assert requests.get(f"{backoffice}/simulator/api/messages", params=customer, timeout=5).json()["typing"] is False


def test_media_upload_and_download(graph, backoffice):
    data = b"\x89PNG\r\n\x1a\nnot really a picture"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    upload = requests.post(
        f"{graph.base}/{CENTRO}/media",
        headers=auth,
        timeout=5,
        data={"messaging_product": "whatsapp", "type": "image/png"},
        files={"file": ("menu.png", data, "image/png")},
    )
    assert upload.status_code == 200, upload.text
    media_id = upload.json()["id"]
    info = requests.get(f"{graph.base}/{media_id}", headers=auth, timeout=5).json()
    assert info["id"] == media_id and info["mime_type"] == "image/png" and info["file_size"] == len(data)
    assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["messaging_product"] == "whatsapp"
    download = requests.get(info["url"], headers=auth, timeout=5)
    assert download.content == data and download.headers["Content-Type"] == "image/png"
    assert graph.send(message("image", {"id": media_id})).status_code == 200
    assert requests.get(f"{graph.base}/{media_id}", timeout=5).status_code == 401
    assert (
        requests.post(
            f"{graph.base}/{CENTRO}/media", headers=auth, data={"messaging_product": "whatsapp"}, timeout=5
        ).status_code
        == 400
    )


def test_two_sends_fail_with_500_then_it_works(graph, backoffice):
    assert arm(backoffice, {"count": 2, "status": 500}).status_code == 200
    for _ in range(2):
        failed = graph.send(ACCEPTED["text"])
        assert failed.status_code == 500
        error = failed.json()["error"]
        assert error["code"] == 131000 and error["type"] == "OAuthException"
        assert error["message"] == "(#131000) Something went wrong"
    assert graph.send(ACCEPTED["text"]).status_code == 200


def test_throttling_answers_429_with_130429(graph, backoffice):
    arm(backoffice, {"status": 429, "code": 130429})
    throttled = graph.send(ACCEPTED["text"])
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == 130429
    assert throttled.json()["error"]["error_data"]["details"] == "Cloud API message throughput has been reached."
    assert graph.send(ACCEPTED["text"]).status_code == 200


def test_reengagement_failure_arrives_as_a_failed_status(graph, backoffice, receiver):
    arm(backoffice, {"webhook_error": 131047})
    accepted = graph.send(message("text", {"body": "¿Sigues ahí?"}, to="5215500000004"))
    assert accepted.status_code == 200
    message_id = accepted.json()["messages"][0]["id"]
    [post] = receiver.wait_for(statuses_of(message_id))
    update = value_of(verified(post))["statuses"][0]
    expected_error = json.loads((WHATSAPP_FIXTURES / "pywa__error_object__131047_ReEngagementMessage.json").read_text())
    assert update["status"] == "failed" and update["errors"] == [expected_error]
    assert update["recipient_id"] == "5215500000004"
    fixture = value_of(json.loads((WHATSAPP_FIXTURES / "pywa__message_status__failed.json").read_text()))["statuses"][0]
    assert set(update) == set(fixture)
    # the next send's statuses all came back: the failed one's, reported from earlier on, would have come first
    following = graph.send(message("text", {"body": "¿Hola?"}, to="5215500000004")).json()["messages"][0]["id"]
    receiver.wait_for(statuses_of(following), count=3)
    assert len([p for p in receiver.posts if statuses_of(message_id)(json.loads(p.body))]) == 1
    record = [m for m in sent(backoffice) if m["id"] == message_id][0]
    assert record["status"] == "failed" and record["errors"][0]["code"] == 131047


def test_mark_as_read_does_not_use_up_a_fault(graph, backoffice):
    arm(backoffice, {"status": 500})
    assert graph.send({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}).status_code == 200
    assert graph.send(ACCEPTED["text"]).status_code == 500


def test_faults_can_be_cleared(graph, backoffice):
    arm(backoffice, {"count": 5, "status": 503})
    assert requests.delete(f"{backoffice}/simulator/api/faults", timeout=5).json() == {"faults": []}
    assert graph.send(ACCEPTED["text"]).status_code == 200


@pytest.mark.parametrize(
    "fault",
    [{}, {"count": 0, "status": 500}, {"status": 200}, {"status": "500"}, {"status": 500, "webhook_error": 131047}],
)
def test_nonsense_faults_are_refused(backoffice, fault):
    assert arm(backoffice, fault).status_code == 400
