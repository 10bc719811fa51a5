"""What stands at COMANDA_RASA_URL for the back office's tests: the connector's webhook, where the simulator
posts Meta's signed webhooks, and Rasa's HTTP API, where order updates are triggered. It keeps every post and
answers ``status`` (the connector's answer, changeable per test)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List

from tests.helpers.fake_http import Answer, FakeHTTP, Request
from tests.helpers.graph import WEBHOOK_PATH
from tests.helpers.waiting import wait_for


class Receiver(FakeHTTP):
    def __init__(self) -> None:
        self.status = 200
        super().__init__()

    def respond(self, request: Request) -> Answer:
        return self.status, b""

    @property
    def posts(self) -> List[Request]:
        return self.requests

    def webhooks(self, match: Callable[[Dict[str, Any]], bool]) -> List[Request]:
        with self.lock:
            return [p for p in self.requests if p.path == WEBHOOK_PATH and match(json.loads(p.body))]

    def wait_for(self, match: Callable[[Dict[str, Any]], bool], count: int = 1, timeout: float = 10) -> List[Request]:
        """The first ``count`` webhook posts whose JSON matches, waiting for them to arrive."""
        found = wait_for(lambda: len(self.webhooks(match)) >= count, timeout=timeout, interval=0.05)
        assert found, f"expected {count} webhook posts, got {len(self.webhooks(match))}"
        return self.webhooks(match)[:count]


def order_events(receiver: Receiver, order_id: int) -> List[str]:
    """The order updates Rasa was asked to tell the customer (trigger_intent calls), in order."""
    with receiver.lock:
        bodies = [json.loads(p.body) for p in receiver.posts if "/trigger_intent" in p.path]
    return [b["entities"]["event"] for b in bodies if b.get("entities", {}).get("order_id") == order_id]
