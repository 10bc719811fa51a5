"""Live pages over server-sent events, replica-safe: each back office polls the database for changes
(every COMANDA_CONSOLE_POLL_SECONDS, one cheap query per topic for the whole process, only while a page
of that topic is open) and wakes its own open streams, which render again and send what changed. A change
made on any replica is in the database, so every replica's pages see it within a poll; nothing lives only
in one process.

Topics: ``queue`` (the queue display and the board) and ``inbox`` (the handoff inbox and conversations).
The queue's signature is the newest ``order_status_changes`` id and how many rows lie above a floor just
under it: a transaction that took a lower id but committed later still changes the count, so it is not
missed. The inbox's is the newest change time of tickets, staff replies' delivery and the customer's
messages (indexed columns). Streams also send a comment every HEARTBEAT_SECONDS (proxies and Sanic's
response timeout keep the connection open) and re-render then, to be safe: a change whose time sorts
before one already seen still shows within a heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import func, select

from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session
from comanda.settings import setting

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 15.0
FLOOR_BELOW = 1000  # rows above (newest id - this) are counted in the signature
MAX_STREAMS = 500  # per process: the public board is open to anyone
Signature = Tuple[Any, ...]


def queue_signature(previous: Signature) -> Signature:
    floor = max(0, int(previous[0] or 0) - FLOOR_BELOW) if previous else 0
    with new_session() as session:
        count, newest = session.execute(
            select(func.count(), func.coalesce(func.max(m.OrderStatusChange.id), 0)).where(
                m.OrderStatusChange.id > floor
            )
        ).one()
    return newest, count


def inbox_signature(_previous: Signature) -> Signature:
    with new_session() as session:
        return tuple(
            session.execute(
                select(
                    select(func.max(m.HandoffTicket.updated_at)).scalar_subquery(),
                    select(func.max(m.OutboundMessage.updated_at)).scalar_subquery(),
                    select(func.max(m.InboundMessage.id)).scalar_subquery(),
                    select(func.max(m.InboundMessage.processed_at)).scalar_subquery(),
                )
            ).one()
        )


TOPICS: Dict[str, Callable[[Signature], Signature]] = {"queue": queue_signature, "inbox": inbox_signature}


class Watcher:
    """One per topic and process: the open streams wait on it; it polls the database while any is open."""

    def __init__(self, signature: Callable[[Signature], Signature]) -> None:
        self.streams = 0
        self.closing = False
        self._signature_of = signature
        self._signature: Signature = ()
        self._changed = asyncio.Event()

    def _wake(self) -> None:
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    async def run(self, seconds: float) -> None:
        while not self.closing:
            if self.streams:
                try:
                    signature = await in_thread(self._signature_of, self._signature)
                    if signature != self._signature:
                        self._signature = signature
                        self._wake()
                except Exception:  # noqa: BLE001 - the database may be away for a moment; displays keep their page
                    log.exception("live watch failed; trying again")
            await asyncio.sleep(seconds)

    async def wait(self, timeout: float) -> bool:
        """True when the queue changed (or the server is stopping), False after ``timeout``."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def close(self) -> None:
        self.closing = True
        self._wake()


def watcher(app: Sanic, topic: str) -> Watcher:
    return app.ctx.live_watchers[topic]


def mount(app: Sanic) -> None:
    app.ctx.live_watchers = {topic: Watcher(signature) for topic, signature in TOPICS.items()}

    @app.after_server_start
    async def start_watch(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        seconds = float(setting("COMANDA_CONSOLE_POLL_SECONDS"))
        for topic in TOPICS:
            app.add_task(watcher(app, topic).run(seconds), name=f"console_{topic}_watch")

    @app.before_server_stop
    async def stop_watch(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        for topic in TOPICS:
            watcher(app, topic).close()  # open streams end now instead of holding the shutdown
            await app.cancel_task(f"console_{topic}_watch", raise_exception=False)


def event(name: str, data: str) -> str:
    """One server-sent event; every line of ``data`` gets its own ``data:`` field."""
    lines = "\n".join(f"data: {line}" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n\n"


async def stream(
    request: Request,
    name: str,
    render: Callable[[], str],
    still_allowed: Optional[Callable[[], Awaitable[bool]]] = None,
    topic: str = "queue",
) -> Optional[HTTPResponse]:
    """Send ``render()`` as event ``name`` now and whenever ``topic`` changes, until the client leaves,
    ``still_allowed()`` (checked every heartbeat) says no — then a ``logout`` event — or the server stops."""
    live = watcher(request.app, topic)
    if live.streams >= MAX_STREAMS:
        from sanic import response

        return response.text("too many live pages open", status=503, headers={"Retry-After": "30"})
    resp = await request.respond(
        content_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    live.streams += 1
    try:
        clock = asyncio.get_running_loop().time
        sent = await in_thread(render)
        await resp.send(event(name, sent))
        checked = clock()
        while not live.closing:
            changed = await live.wait(HEARTBEAT_SECONDS)
            if still_allowed is not None and clock() - checked >= HEARTBEAT_SECONDS:
                checked = clock()
                if not await still_allowed():
                    await resp.send(event("logout", ""))
                    break
            fresh = await in_thread(render)
            if fresh != sent:
                sent = fresh
                await resp.send(event(name, fresh))
            elif not changed:
                await resp.send(": still here\n\n")
        await resp.eof()
    finally:
        live.streams -= 1
    return None
