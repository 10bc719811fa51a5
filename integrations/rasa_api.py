"""Rasa's HTTP API, as the back office and the command line speak to a conversation: its tracker read,
events appended to it (``ConversationPaused`` when staff claim a chat, their messages, ``ConversationResumed``
when they resolve it), responses said and intents triggered in it; and to the server itself: which model it
runs (``GET /status``) and a new one loaded (``PUT /model``, `comanda train`).

The token goes in the query, as Rasa's token auth wants, and is never logged.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional
from urllib.parse import quote

import requests

from comanda.errors import ComandaError
from comanda.settings import setting

TIMEOUT_SECONDS = 10
# Rasa's web server takes the conversation id from the path as it is: our ids' characters
# ("centro:whatsapp:+5255…") go as they are, anything else is escaped.
SENDER_SAFE = ":+@.-_~"
# Resumed, and listening: a message the customer sent while paused is in the tracker with no action after
# it, and Rasa's rules only follow a user turn that comes after action_listen.
RESUME = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
LISTEN = [{"event": "action", "name": "action_listen"}]
PAUSE = [{"event": "pause"}]


class RasaUnavailable(ComandaError):
    """The Rasa server could not be reached or refused the call."""

    code = "rasa_unavailable"


class RasaApi:
    def __init__(self, url: str, token: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    @classmethod
    def from_settings(cls) -> RasaApi:
        return cls(setting("COMANDA_RASA_URL"), setting("COMANDA_RASA_TOKEN"))

    def append_events(self, conversation_id: str, events: List[Dict[str, Any]], send: bool = True) -> None:
        """Events appended to the conversation's tracker; bot messages among them are sent to the customer
        unless ``send`` is False (a staff message the outbox sends itself, recorded for the history)."""
        self._post(conversation_id, "tracker/events", events, execute_side_effects="true" if send else "false")

    def tracker(self, conversation_id: str) -> Dict[str, Any]:
        """The conversation's whole tracker (every event, every session)."""
        url = f"{self.url}/conversations/{quote(conversation_id, safe=SENDER_SAFE)}/tracker"
        try:
            answer = requests.get(url, params={"include_events": "ALL", "token": self.token}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RasaUnavailable(f"Rasa is unreachable at {self.url} ({type(exc).__name__})") from None
        if not answer.ok:
            raise RasaUnavailable(f"Rasa answered {answer.status_code} to tracker: {answer.text[:300]}")
        found = answer.json()
        return found if isinstance(found, dict) else {}

    def pause(self, conversation_id: str) -> None:
        """The bot stays silent in this conversation whatever the customer writes (``ConversationPaused``)."""
        self.append_events(conversation_id, PAUSE, send=False)

    def resume_saying(self, conversation_id: str, response: str) -> None:
        """Resume the bot and say a response of the domain (rendered by Rasa in the customer's language),
        then listen: the customer's next message gets the bot's usual answer."""
        self.append_events(conversation_id, [{"event": "resume"}], send=False)
        self._post(conversation_id, "execute", {"name": response})
        self.append_events(conversation_id, LISTEN, send=False)

    def trigger_intent(self, conversation_id: str, name: str, entities: Optional[Dict[str, Any]] = None) -> None:
        """The intent as if the customer had said it: Rasa runs its rule and the customer hears the answer."""
        self._post(conversation_id, "trigger_intent", {"name": name, "entities": entities or {}})

    def resume(self, conversation_id: str) -> None:
        """The bot speaks in this conversation again (Rasa's ``ConversationResumed``)."""
        self.append_events(conversation_id, RESUME)

    def status(self) -> Optional[Dict[str, Any]]:
        """The server's ``GET /status`` (its model file among it), or None when nothing answers there."""
        try:
            answer = requests.get(f"{self.url}/status", params={"token": self.token}, timeout=self.timeout)
        except requests.RequestException:
            return None
        if not answer.ok:
            raise RasaUnavailable(f"Rasa at {self.url} answered {answer.status_code} to /status")
        return dict(answer.json())

    def load_model(self, model_file: str, timeout: float = 600) -> None:
        """Rasa loads the model, then swaps it in (``PUT /model``). Rasa 3.6 loads it on the server's event loop,
        so requests that arrive meanwhile wait (they are not refused) and are answered by the new model; a turn
        already under way finishes on the old one."""
        try:
            answer = requests.put(
                f"{self.url}/model", params={"token": self.token}, json={"model_file": model_file}, timeout=timeout
            )
        except requests.RequestException as exc:
            raise RasaUnavailable(f"Rasa is unreachable at {self.url} ({type(exc).__name__})") from None
        if answer.status_code != 204:
            raise RasaUnavailable(
                f"Rasa at {self.url} did not load {model_file}: {answer.status_code} {answer.text[:300]}"
            )

    def _post(self, conversation_id: str, path: str, body: Any, **params: str) -> None:
        url = f"{self.url}/conversations/{quote(conversation_id, safe=SENDER_SAFE)}/{path}"
        try:
            answer = requests.post(
                url,
                params={"output_channel": "latest", "token": self.token, **params},
                json=body,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise RasaUnavailable(f"Rasa is unreachable at {self.url} ({type(exc).__name__})") from None
        if not answer.ok:
            raise RasaUnavailable(f"Rasa answered {answer.status_code} to {path}: {answer.text[:300]}")
