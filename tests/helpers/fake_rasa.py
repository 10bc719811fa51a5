"""A Rasa server's HTTP API as the back office and the command line call it: it records what reaches each
conversation (events appended, responses executed, intents triggered), serves each conversation's tracker
from what was appended (plus ``events`` a test puts there), and can refuse the next calls."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List
from urllib.parse import unquote

from tests.helpers.fake_http import Answer, FakeHTTP, Request

TOKEN = "rasa-test-token"


class FakeRasa(FakeHTTP):
    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []  # {"conversation", "path": "tracker/events"|"trigger_intent", "body"}
        self.refuse = 0  # how many of the next calls get a 503
        self.events: Dict[str, List[Dict[str, Any]]] = {}  # conversation → its tracker's events
        self.queries: List[Dict[str, List[str]]] = []  # each accepted POST's query (without the token)
        super().__init__()

    def respond(self, request: Request) -> Answer:
        _, _, conversation, *path = request.path.split("/")
        name = unquote(conversation)
        if request.query.get("token") != [TOKEN]:
            return 401, {"message": "no"}
        if self.refuse:
            self.refuse -= 1
            return 503, {"message": "no"}
        if request.method == "GET":
            return 200, {"sender_id": name, "events": self.events.get(name, [])}
        body, where = request.json(), "/".join(path)
        self.received.append({"conversation": name, "path": where, "body": body})
        self.queries.append({k: v for k, v in request.query.items() if k != "token"})
        if where == "tracker/events":
            self.events.setdefault(name, []).extend(body)
        elif where == "execute":
            self.events.setdefault(name, []).append({"event": "bot", "text": body["name"], "timestamp": 0})
        return 200, {"tracker": {}}


def serve_fake_rasa(monkeypatch) -> Iterator[FakeRasa]:
    """A fake Rasa at COMANDA_RASA_URL with COMANDA_RASA_TOKEN (for a fixture: ``yield from``)."""
    fake = FakeRasa()
    monkeypatch.setenv("COMANDA_RASA_URL", fake.url)
    monkeypatch.setenv("COMANDA_RASA_TOKEN", TOKEN)
    yield fake
    fake.close()
