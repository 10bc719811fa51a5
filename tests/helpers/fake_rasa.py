"""A Rasa server's HTTP API as the back office and the command line call it: it records what reaches each
conversation (events appended, responses executed, intents triggered), serves each conversation's tracker
from what was appended (plus ``events`` a test puts there), and can refuse the next calls."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "rasa-test-token"


class FakeRasa:
    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []  # {"conversation", "path": "tracker/events"|"trigger_intent", "body"}
        self.refuse = 0  # how many of the next calls get a 503
        self.events: Dict[str, List[Dict[str, Any]]] = {}  # conversation → its tracker's events
        self.queries: List[Dict[str, List[str]]] = []  # each accepted POST's query (without the token)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                _, _, conversation, *path = url.path.split("/")
                query = parse_qs(url.query)
                status = 200
                if query.get("token") != [TOKEN]:
                    status = 401
                elif fake.refuse:
                    fake.refuse, status = fake.refuse - 1, 503
                else:
                    name, where = unquote(conversation), "/".join(path)
                    fake.received.append({"conversation": name, "path": where, "body": body})
                    fake.queries.append({k: v for k, v in query.items() if k != "token"})
                    if where == "tracker/events":
                        fake.events.setdefault(name, []).extend(body)
                    elif where == "execute":
                        fake.events.setdefault(name, []).append({"event": "bot", "text": body["name"], "timestamp": 0})
                self._answer(status, {"tracker": {}} if status == 200 else {"message": "no"})

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                _, _, conversation, *_ = url.path.split("/")
                if parse_qs(url.query).get("token") != [TOKEN]:
                    return self._answer(401, {"message": "no"})
                if fake.refuse:
                    fake.refuse -= 1
                    return self._answer(503, {"message": "no"})
                name = unquote(conversation)
                self._answer(200, {"sender_id": name, "events": fake.events.get(name, [])})

            def _answer(self, status: int, body: Any) -> None:
                answer = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_fake_rasa(monkeypatch) -> Iterator[FakeRasa]:
    """A fake Rasa at COMANDA_RASA_URL with COMANDA_RASA_TOKEN (for a fixture: ``yield from``)."""
    fake = FakeRasa()
    monkeypatch.setenv("COMANDA_RASA_URL", fake.url)
    monkeypatch.setenv("COMANDA_RASA_TOKEN", TOKEN)
    yield fake
    fake.close()
