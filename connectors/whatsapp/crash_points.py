"""Named points of the WhatsApp channel's path where a test can make the Rasa server die, as kill -9 would.

tests/e2e/test_whatsapp_crashes.py starts the server with COMANDA_CRASH_AT=<point>, lets it die there,
starts it again and checks that every message is still answered exactly once. Unset (always, outside
that test), a crash point does nothing.
"""

from __future__ import annotations

import logging
import os
import signal

from comanda.settings import setting

log = logging.getLogger(__name__)


def crash_point(name: str) -> None:
    if setting("COMANDA_CRASH_AT") == name:
        log.warning("COMANDA_CRASH_AT=%s: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)
