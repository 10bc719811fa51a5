"""What the simulator remembers, in the back office's memory: a dev tool need not survive restarts.

Every message either side sent is a record with two counters: ``n`` orders the chat, ``seq`` changes
whenever the record does (a new status), so a page polling with ``after=<seq>`` sees ticks move;
what it gets back is in chat order.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

TYPING_SECONDS = 25  # Meta hides the typing indicator after 25 s or at the next message


@dataclass
class Record:
    id: str
    n: int
    seq: int
    phone_number_id: str
    wa_id: str
    direction: str  # in: the customer wrote; out: the business sent
    message: Dict[str, Any]
    status: str  # in: received | read; out: accepted | sent | delivered | read | failed
    timestamp: float
    errors: List[Dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "n": self.n,
            "seq": self.seq,
            "phone_number_id": self.phone_number_id,
            "wa_id": self.wa_id,
            "direction": self.direction,
            "message": self.message,
            "status": self.status,
            "errors": self.errors,
            "timestamp": self.timestamp,
        }


@dataclass
class Fault:
    """The next ``remaining`` sends fail: at once with an HTTP ``http_status``, or later by webhook."""

    remaining: int
    code: int
    http_status: Optional[int]  # None: accept the send, then post a `failed` status
    hang_seconds: int = 0  # wait this long before answering http_status (a timeout at the sender)


@dataclass
class Media:
    id: str
    mime_type: str
    filename: str
    data: bytes


class Simulator:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.records: Dict[str, Record] = {}
        self.media: Dict[str, Media] = {}
        self.faults: List[Fault] = []
        self.names: Dict[str, str] = {}  # wa_id -> profile name the customer last used
        self._chats: Dict[Tuple[str, str], List[Record]] = {}
        self._typing: Dict[Tuple[str, str], float] = {}

    def add(
        self, record_id: str, phone_number_id: str, wa_id: str, direction: str, message: Dict[str, Any], status: str
    ) -> Record:
        seq = next(self._counter)
        record = Record(record_id, seq, seq, phone_number_id, wa_id, direction, message, status, time.time())
        self.records[record_id] = record
        self._chats.setdefault((phone_number_id, wa_id), []).append(record)
        if direction == "out":
            self._typing.pop((phone_number_id, wa_id), None)
        return record

    def set_status(self, record_id: str, status: str, errors: Optional[List[Dict[str, Any]]] = None) -> None:
        record = self.records.get(record_id)
        if record is not None:
            record.status, record.errors, record.seq = status, errors or [], next(self._counter)

    def start_typing(self, phone_number_id: str, wa_id: str) -> None:
        self._typing[(phone_number_id, wa_id)] = time.monotonic() + TYPING_SECONDS

    def is_typing(self, phone_number_id: str, wa_id: str) -> bool:
        return self._typing.get((phone_number_id, wa_id), 0) > time.monotonic()

    def chat(self, phone_number_id: str, wa_id: str, after: int = 0) -> List[Record]:
        """Records of one chat changed after ``after``, in chat order (``n``): a page that appends the new
        ones must show them in the order they were sent, even when an earlier message's status changed
        after a later message arrived."""
        found = [r for r in self._chats.get((phone_number_id, wa_id), []) if r.seq > after]
        return sorted(found, key=lambda r: r.n)

    def reset(self, wa_id: str) -> int:
        """Forget one customer's chats with every store (the bot's memory of them is not the simulator's);
        how many messages went."""
        chats = [key for key in self._chats if key[1] == wa_id]
        gone = sum(len(self._chats[key]) for key in chats)
        for key in chats:
            for record in self._chats.pop(key):
                self.records.pop(record.id, None)
            self._typing.pop(key, None)
        self.names.pop(wa_id, None)
        return gone

    def sent(self) -> List[Record]:
        return sorted((r for r in self.records.values() if r.direction == "out"), key=lambda r: r.n)

    def take_fault(self) -> Optional[Fault]:
        """The fault the next send meets, if any, used up by one."""
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self.faults.pop(0)
        return fault

    def store_media(self, mime_type: str, filename: str, data: bytes) -> Media:
        media = Media(str(uuid.uuid4().int)[:16], mime_type, filename, data)
        self.media[media.id] = media
        return media
