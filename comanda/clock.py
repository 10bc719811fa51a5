"""The one clock. Everything that needs the time asks here, so tests can move time."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Callable, Optional
from zoneinfo import ZoneInfo

_source: Optional[Callable[[], datetime]] = None


def now() -> datetime:
    """Aware UTC time."""
    return _source() if _source else datetime.now(timezone.utc)


def local_now(tz_name: str) -> datetime:
    return now().astimezone(ZoneInfo(tz_name))


def local_date(tz_name: str) -> date:
    return local_now(tz_name).date()


def set_clock(source: Optional[Callable[[], datetime]]) -> None:
    """Tests pin the time with ``set_clock(lambda: fixed)``; ``set_clock(None)`` restores it."""
    global _source
    _source = source
