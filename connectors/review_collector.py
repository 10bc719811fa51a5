"""The review inbox's collector on the Rasa server: every saved tracker's latest customer message (and the
one before, which a correction or a request for a person speaks about) goes to comanda.services.review,
which keeps what the bot was unsure about. Here the parse data is complete (intent ranking, order lines,
unplaced words), for every channel, whichever replica answered.

Collecting never holds up or breaks a turn: the database work runs on a worker thread only when the
message gives a reason, a message already looked at is skipped in memory, and a failure is logged.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import List, Optional

from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from comanda.concurrency import in_thread
from comanda.db import transaction
from comanda.services import review

log = logging.getLogger(__name__)
REMEMBERED = 2000  # message ids already looked at, per process


class ReviewCollector:
    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, tracker: DialogueStateTracker) -> None:
        said = latest_two(tracker)
        if not said:
            return
        latest, before = said[0], (said[1] if len(said) > 1 else None)
        key = f"{tracker.sender_id}|{latest.message_id}"
        if key in self._seen:
            return
        self._remember(key)
        if not review.reasons(latest) and review.afterthought(latest) is None:
            return
        try:
            await in_thread(self._collect, tracker.sender_id, latest, before)
        except Exception:  # noqa: BLE001 - the inbox is a help, never a reason for a turn to fail
            log.exception("review: could not keep message %s of %s", latest.message_id, tracker.sender_id)

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)

    @staticmethod
    def _collect(conversation_id: str, latest: review.Said, before: Optional[review.Said]) -> None:
        with transaction() as session:
            review.collect(session, conversation_id, latest, before)


def latest_two(tracker: DialogueStateTracker) -> List[review.Said]:
    """The latest customer message and the one before it, newest first."""
    found: List[review.Said] = []
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered) and event.text is not None:
            message_id = event.message_id or f"at:{event.timestamp}"
            found.append(review.Said(event.text, str(message_id), dict(event.parse_data or {})))
            if len(found) == 2:
                break
    return found
