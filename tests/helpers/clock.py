"""The one clock (comanda/clock.py) pinned for a test: at a moment, or some seconds from now."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Iterator

from comanda import clock


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    clock.set_clock(lambda: moment)
    try:
        yield
    finally:
        clock.set_clock(None)


@contextmanager
def later(seconds: float) -> Iterator[None]:
    """The clock ``seconds`` ahead of now, for as long as the block lasts."""
    with clock_at(clock.now() + timedelta(seconds=seconds)):
        yield
