"""The one fake HTTP server every fake outside service is built on (Stripe, Mercado Pago, the PACs, Rasa,
Twilio, the connector's webhook): threaded, on a free local port, recording every request, answering each
with its ``respond``. Standard library only: the Rasa venv's tests use it too."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Tuple, Union
from urllib.parse import parse_qs, urlsplit

Answer = Union[Tuple[int, Any], Tuple[int, Any, Dict[str, str]]]  # (status, body[, headers])


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, percent-encoding kept, without the query
    query: Dict[str, List[str]]
    headers: Message  # case-insensitive, as http.server reads them
    body: bytes

    @property
    def params(self) -> Dict[str, str]:
        """The query with one value a name (the last), as most APIs read it."""
        return {name: values[-1] for name, values in self.query.items()}

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def form(self) -> Dict[str, List[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


class FakeHTTP:
    """Answers every request with the subclass's ``respond(request)``, scripted as the test needs, one at a time
    under ``lock``, which also guards ``requests``; a body that is neither bytes nor text goes as JSON."""

    def __init__(self) -> None:
        self.requests: List[Request] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Request(self.command, url.path, parse_qs(url.query), self.headers, body)
                with fake.lock:
                    fake.requests.append(request)
                    status, content, *extra = fake.respond(request)
                headers = extra[0] if extra else {}
                if isinstance(content, str):
                    content, kind = content.encode(), "text/plain; charset=utf-8"
                elif isinstance(content, bytes):
                    kind = "application/octet-stream"
                else:
                    content, kind = json.dumps(content).encode(), "application/json"
                self.send_response(status)
                for name, value in {"Content-Type": kind, **headers, "Content-Length": str(len(content))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def respond(self, request: Request) -> Answer:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeHTTP:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
