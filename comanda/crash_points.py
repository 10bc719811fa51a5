"""Named points where a test can make a process die, as kill -9 would: the WhatsApp channel's path in the
Rasa server, and the payment webhook in the back office.

tests/chaos/ starts a process with COMANDA_CRASH_AT=<point>, lets it die there, starts it again and
checks that nothing is lost or done twice. Unset (always, outside those tests), a crash point does
nothing. It lives in the core so that every process can name its points.
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
