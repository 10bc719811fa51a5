"""Blocking work off an event loop: the one helper every async server in Comanda uses."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from typing import Any, Callable, TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in the loop's default thread pool and await its result, so database and
    network calls never stall the loop that serves other conversations. Context variables go along."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(context.run, fn, *args))
