"""The one way a test waits: on a condition, with a bound. Never a fixed sleep, which is either too short
on a loaded machine (a flaky test) or longer than needed (a slow one), and proves nothing by itself."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 30, interval: float = 0.2) -> T:
    """Call ``condition`` until it returns something truthy, for at most ``timeout`` seconds: that value, or
    the last falsy one once the time is up (the caller asserts on it, with a message that says what it saw).
    ``interval`` is only the polling pace."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)  # the polling pace, not a wait for something to happen
