"""Blocking work (SQL, files, a synchronous SDK) off an asyncio event loop: the one helper for it.

Sanic apps (the Rasa server's channels, the action server, the back office) answer on one event loop;
a database call made on it stalls every request. ``in_thread`` runs the call in a worker thread and
awaits it, on the loop's default pool or on a given one (e.g. one thread reserved for model inference),
with the caller's context variables (as ``asyncio.to_thread`` does).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from concurrent.futures import Executor
from functools import partial
from typing import Any, Awaitable, Callable, Optional, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


async def in_thread(work: Callable[..., T], *args: Any, executor: Optional[Executor] = None, **kwargs: Any) -> T:
    """``work(*args, **kwargs)`` in a worker thread, without blocking the event loop."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(executor, partial(context.run, work, *args, **kwargs))


def in_background(work: Awaitable[Any], what: str) -> asyncio.Future[Any]:
    """Run ``work`` on the event loop without waiting for it; if it fails, the error is logged as ``what``."""
    task = asyncio.ensure_future(work)

    def report(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("%s failed", what, exc_info=done.exception())

    task.add_done_callback(report)
    return task
