"""A turn whose custom action fails is interrupted, not carried on without that action's events.

When a custom action cannot be run (the action server is down, times out, or answers an error), Rasa's
``MessageProcessor._run_action`` logs "Encountered an exception while running action … Bot will
continue, but the actions events are lost" and goes on predicting: the customer gets the answers that
follow (a "¿Algo más?" without the "✅ Agregué" before it) and the turn is saved as if it had happened.

Inside ``interrupt_on_failed_action()`` (the WhatsApp worker's turns only: a context variable scopes it to
the asyncio task running the turn) that log record raises ``ActionFailed`` instead, from within Rasa's
handler, so the turn stops where the action failed and Rasa never saves it. The worker then runs the
whole turn again through Rasa (``agent.handle_message``): Rasa's tracker is as before the turn, replies
already queued keep their outbox dedupe keys (sent once), and the action server answers a repeated
action run per (conversation, inbound message id, action) from what it stored the first time.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Optional

PROCESSOR_LOGGER = "rasa.core.processor"
FAILED_ACTION_LOG = "Encountered an exception while running action"

_interrupting: ContextVar[bool] = ContextVar("whatsapp_turn_interrupting", default=False)


class ActionFailed(Exception):
    """A custom action of the turn failed; the turn was interrupted before Rasa saved it."""

    def __init__(self, message: str, cause: Optional[BaseException]) -> None:
        super().__init__(f"{message} ({type(cause).__name__}: {cause})" if cause else message)
        self.cause = cause


class _InterruptOnFailedAction(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _interrupting.get() and record.getMessage().startswith(FAILED_ACTION_LOG):
            cause = record.exc_info[1] if record.exc_info else None
            raise ActionFailed(record.getMessage().split(".")[0], cause)
        return True


_filter = _InterruptOnFailedAction()


def install() -> None:
    """Watch Rasa's processor log (once per process; harmless to repeat)."""
    logging.getLogger(PROCESSOR_LOGGER).addFilter(_filter)


@contextmanager
def interrupt_on_failed_action() -> Iterator[None]:
    """Within this block (and the asyncio task running it), a failed custom action raises ActionFailed."""
    token = _interrupting.set(True)
    try:
        yield
    finally:
        _interrupting.reset(token)
