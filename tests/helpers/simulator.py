"""Speaking to the bot as WhatsApp customers do, through the simulator (which plays Meta), reading what the
bot sent at its Graph API, and what staff and the stock see meanwhile (orders moved on, stock levels).
``stack`` is any running stack with ``rasa`` and ``backoffice`` URLs and the WhatsApp ``app_secret``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, List

import requests
from sqlalchemy import func, select

from comanda import models as m
from comanda.db import new_session
from comanda.enums import InboxStatus, OutboxStatus
from integrations.whatsapp.webhook import sign
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_for

CENTRO, ROMA = "106540352242922", "106540352242933"
DONE = (InboxStatus.PROCESSED, InboxStatus.PARKED, InboxStatus.IGNORED)
UNSENT = (OutboxStatus.QUEUED, OutboxStatus.SENDING)


def customer_says(stack, wa_id, text, phone_number_id=CENTRO, name="Ana"):
    answer = requests.post(
        f"{stack.backoffice}/simulator/api/send",
        timeout=60,
        json={"phone_number_id": phone_number_id, "wa_id": wa_id, "name": name, "type": "text", "text": text},
    )
    assert answer.status_code == 200 and answer.json()["status"] == 200, answer.text
    return answer.json()["id"]


def bot_messages(stack, wa_id, phone_number_id=CENTRO):
    answer = requests.get(
        f"{stack.backoffice}/simulator/api/messages",
        timeout=10,
        params={"phone_number_id": phone_number_id, "wa_id": wa_id},
    )
    return sorted((r for r in answer.json()["messages"] if r["direction"] == "out"), key=lambda r: r["n"])


def texts(records):
    out = []
    for record in records:
        message = record["message"]
        if message.get("type") == "text":
            out.append(message["text"]["body"])
        elif message.get("type") == "interactive":
            out.append(message["interactive"]["body"]["text"])
    return out


def wait_replies(stack, wa_id, count=1, phone_number_id=CENTRO, timeout=40):
    return wait_for(
        lambda: (lambda r: r if len(r) >= count else None)(bot_messages(stack, wa_id, phone_number_id)), timeout=timeout
    ) or bot_messages(stack, wa_id, phone_number_id)


def new_wa_id():
    return "52155" + str(uuid.uuid4().int)[:8]


def webhook(messages, phone_number_id=CENTRO, contacts=None):
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "525512345678", "phone_number_id": phone_number_id},
                            "contacts": contacts
                            or [{"profile": {"name": "Test"}, "wa_id": msg["from"]} for msg in messages],
                            "messages": messages,
                        },
                    }
                ],
            }
        ],
    }


def text_message(wa_id, body):
    return {
        "from": wa_id,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": body},
    }


def post_signed(stack, payload, secret=None, header=True):
    raw = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if header:
        headers["X-Hub-Signature-256"] = sign(secret or stack.app_secret, raw)
    return requests.post(f"{stack.rasa}/webhooks/whatsapp/webhook", data=raw, headers=headers, timeout=30)


def tap(stack, wa_id: str, record: Dict[str, Any], title: str, phone_number_id: str = CENTRO) -> None:
    """Tap the button or list row with this title on a bot message, as WhatsApp posts it."""
    interactive = record["message"]["interactive"]
    if interactive["type"] == "button":
        choices = [b["reply"] for b in interactive["action"]["buttons"]]
        kind = "button_reply"
    else:
        choices = [row for section in interactive["action"]["sections"] for row in section["rows"]]
        kind = "list_reply"
    [choice] = [c for c in choices if c["title"] == title]
    answer = requests.post(
        f"{stack.backoffice}/simulator/api/send",
        timeout=60,
        json={
            "phone_number_id": phone_number_id,
            "wa_id": wa_id,
            "type": kind,
            "context_id": record["id"],
            kind: {"id": choice["id"], "title": choice["title"]},
        },
    )
    assert answer.status_code == 200 and answer.json()["status"] == 200, answer.text


def say_and_wait(stack, wa_id: str, text: str, new: int = 1, timeout: float = 40, **kwargs: Any) -> List[Dict]:
    before = len(bot_messages(stack, wa_id))
    customer_says(stack, wa_id, text, **kwargs)
    return wait_replies(stack, wa_id, count=before + new, timeout=timeout)[before:]


def tap_and_wait(
    stack, wa_id: str, record: Dict[str, Any], title: str, new: int = 1, timeout: float = 40
) -> List[Dict]:
    before = len(bot_messages(stack, wa_id))
    tap(stack, wa_id, record, title)
    return wait_replies(stack, wa_id, count=before + new, timeout=timeout)[before:]


def stock(sku: str, env: Dict[str, str]) -> Dict[str, Any]:
    """A stock level at Centro as `comanda stock SKU --json` shows it, in the stack's environment ``env``."""
    shown = subprocess.run(
        [sys.executable, "-m", "cli", "stock", sku, "--store", "centro", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def last_reply(stack, wa_id: str, containing: str, timeout: float = 40) -> Dict[str, Any]:
    """Wait for the bot's message whose text contains ``containing`` (pushed messages included)."""
    found = wait_for(
        lambda: next((r for r in reversed(bot_messages(stack, wa_id)) if containing in (texts([r]) or [""])[0]), None),
        timeout=timeout,
    )
    assert found, f"no message with {containing!r}; got {texts(bot_messages(stack, wa_id))}"
    return found


def move(stack, order_id: int, status: str) -> requests.Response:
    """Staff move an order on, through the order-queue API with their personal token."""
    return requests.post(
        f"{stack.backoffice}/api/orders/{order_id}/status",
        json={"status": status},
        timeout=30,
        headers={"Authorization": f"Bearer {stack.staff_token}"},
    )


def order_of(wa_id: str) -> m.Order:
    """The customer's latest order at Centro."""
    with new_session() as session:
        return (
            session.execute(
                select(m.Order)
                .where(m.Order.conversation_id == f"centro:whatsapp:+52{wa_id[3:]}")
                .order_by(m.Order.id.desc())
            )
            .scalars()
            .first()
        )


def answered_and_sent(customers, db_url=None, closed=(InboxStatus.PROCESSED,)):
    """Every message of these customers closed (processed; ``closed`` may allow parked), and nothing of theirs
    left to send."""
    with new_session(db_url) as session:
        statuses = set(
            session.execute(select(m.InboundMessage.status).where(m.InboundMessage.sender.in_(customers))).scalars()
        )
        unsent = session.execute(
            select(func.count()).where(
                m.OutboundMessage.recipient.in_(customers),
                m.OutboundMessage.status.in_((OutboxStatus.QUEUED, OutboxStatus.SENDING)),
            )
        ).scalar()
    return bool(statuses) and statuses <= set(closed) and unsent == 0


def deliver_as_meta(stack: Any, payload: Dict[str, Any], deadline: float = 120) -> int:
    """Meta's delivery of a webhook: signed, and posted again (the same message id) until it is answered 200,
    as a replica that dies mid-request or a balancer with no replica to give it never answers; the tries."""
    until = time.monotonic() + deadline
    tries = 0
    while True:
        tries += 1
        try:
            if post_signed(stack, payload).status_code == 200:
                return tries
        except requests.RequestException:
            pass
        assert time.monotonic() < until, "the webhook was never acknowledged"
        time.sleep(0.5)  # the scenario: Meta's pace between deliveries of a webhook not yet acknowledged


def conversation_id(wa_id: str, phone_number_id: str = CENTRO) -> str:
    """The bot's conversation id for a simulator customer (a Mexican mobile: 521… becomes +52…)."""
    store = "roma" if phone_number_id == ROMA else "centro"
    return f"{store}:whatsapp:+52{wa_id[3:]}"


class Chat:
    """One customer in the simulator, speaking turn by turn: each call returns exactly the bot's replies to
    that message, once the message is processed and every reply it queued has reached the Graph API (no
    counting of expected replies, no sleeps)."""

    def __init__(self, stack: Any, phone_number_id: str = CENTRO, name: str = "Ana") -> None:
        self.stack, self.phone_number_id, self.name = stack, phone_number_id, name
        self.wa_id = new_wa_id()
        self.id = conversation_id(self.wa_id, phone_number_id)

    def says(self, text: str) -> Replies:
        return self._turn({"type": "text", "text": text})

    def taps(self, title: str) -> Replies:
        """Tap the button or list row titled ``title`` on the bot's latest message that has one."""
        for record in reversed(self.messages()):
            interactive = record["message"].get("interactive") or {}
            if interactive.get("type") == "button":
                choices, kind = [b["reply"] for b in interactive["action"]["buttons"]], "button_reply"
            elif interactive.get("type") == "list":
                rows = [row for section in interactive["action"]["sections"] for row in section["rows"]]
                choices, kind = rows, "list_reply"
            else:
                continue
            chosen = [c for c in choices if c["title"] == title]
            if chosen:
                reply = {"id": chosen[0]["id"], "title": chosen[0]["title"]}
                return self._turn({"type": kind, "context_id": record["id"], kind: reply})
        raise AssertionError(f"no button {title!r} in {texts(self.messages())}")

    def shares_location(self, latitude: float, longitude: float) -> Replies:
        return self._turn({"type": "location", "location": {"latitude": latitude, "longitude": longitude}})

    def messages(self) -> List[Dict[str, Any]]:
        return bot_messages(self.stack, self.wa_id, self.phone_number_id)

    def _turn(self, message: Dict[str, Any]) -> Replies:
        before = len(self.messages())
        answer = requests.post(
            f"{self.stack.backoffice}/simulator/api/send",
            timeout=60,
            json={"phone_number_id": self.phone_number_id, "wa_id": self.wa_id, "name": self.name, **message},
        )
        assert answer.status_code == 200 and answer.json()["status"] == 200, answer.text
        external_id = answer.json()["id"]
        assert wait_for(lambda: _answered(external_id, self.id), timeout=90), f"{message} not answered"
        return Replies(self.messages()[before:])


def _answered(external_id: str, conversation: str) -> bool:
    """The message is done with and nothing the bot queued for this conversation is still to be sent."""
    with new_session() as session:
        status = session.execute(
            select(m.InboundMessage.status).where(m.InboundMessage.external_id == external_id)
        ).scalar_one_or_none()
        pending = session.execute(
            select(m.OutboundMessage.id)
            .where(m.OutboundMessage.conversation_id == conversation, m.OutboundMessage.status.in_(UNSENT))
            .limit(1)
        ).first()
    return status in DONE and pending is None


class Replies(list):
    """The bot's messages for one turn."""

    @property
    def texts(self) -> List[str]:
        return texts(self)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    def shows(self, *fragments: str) -> Replies:
        """Assert every fragment is in these messages' texts (the failure shows what the bot said)."""
        for fragment in fragments:
            assert fragment in self.text, f"{fragment!r} not in the bot's replies:\n{self.text}"
        return self

    def never(self, *fragments: str) -> Replies:
        for fragment in fragments:
            assert fragment not in self.text, f"{fragment!r} in the bot's replies:\n{self.text}"
        return self

    def buttons(self) -> List[str]:
        """The titles of every button and list row in these messages."""
        titles = []
        for record in self:
            interactive = record["message"].get("interactive") or {}
            if interactive.get("type") == "button":
                titles += [b["reply"]["title"] for b in interactive["action"]["buttons"]]
            elif interactive.get("type") == "list":
                titles += [row["title"] for s in interactive["action"]["sections"] for row in s["rows"]]
        return titles
