"""Rasa's own SQL tracker store, pointed at Comanda's one database (COMANDA_DATABASE_URL).

Rasa wants the URL in pieces; this splits it, and on SQLite adds the busy timeout and WAL mode that
let the Rasa server, the action server and the back office share the file; on PostgreSQL, the connect
timeout, keepalives and pool pre-ping of Comanda's own engine (a restart costs no turn). After each save, the
latest customer message goes to the review inbox's collector (connectors.review_collector). Channels may register work
that must be durable before Rasa records a turn as done (``before_save``): the WhatsApp channel queues
the replies a turn held back, so that a crash right after the save cannot lose them.

Rasa's SQL tracker store is synchronous inside its async methods: reading a conversation (its query and
the replay of every event) and saving one ran on the Rasa server's event loop, and every webhook due
meanwhile waited for them. Here both run on a worker thread (without an event broker, Rasa's ``save``
never suspends; with one, it stays on the loop, where the broker expects it).
"""

from typing import Any, Awaitable, Callable, Coroutine, List, Optional, TypeVar

from rasa.core.agent import Agent
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from comanda.concurrency import in_thread
from comanda.db import POSTGRESQL_CONNECT_ARGS, SQLITE_BUSY_TIMEOUT_MS, check_url, configure_sqlite_connection
from comanda.settings import database_url
from connectors.review_collector import ReviewCollector

T = TypeVar("T")
BeforeSave = Callable[[DialogueStateTracker], Awaitable[None]]
_before_save: List[BeforeSave] = []


def before_save(hook: BeforeSave) -> None:
    """Run ``hook`` before every save of a tracker (once, however often it is registered)."""
    if hook not in _before_save:
        _before_save.append(hook)


def failing_loudly(agent: Agent) -> Agent:
    """The agent, its tracker store made to raise. Rasa wraps every tracker store in FailSafeTrackerStore,
    which on a database error saves the turn in memory only and reads the conversation as a new one, so a
    turn that failed looks done (found by the chaos tests: PostgreSQL refusing one turn's events). With
    its error callback raising, the error is the turn's, and the WhatsApp worker runs the turn again."""
    store = agent.tracker_store
    if isinstance(store, FailSafeTrackerStore):
        store._on_tracker_store_error = _raise
    return agent


def _raise(error: Exception) -> None:
    raise error


def _complete(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run to its end a coroutine that never suspends (synchronous work behind an async signature)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        value: T = done.value
        return value
    coroutine.close()
    raise RuntimeError("the tracker store suspended on a worker thread")


class ComandaTrackerStore(SQLTrackerStore):
    def __init__(
        self, domain: Optional[Domain] = None, event_broker: Optional[EventBroker] = None, **kwargs: Any
    ) -> None:
        kwargs.pop("host", None)  # Rasa passes endpoints.yml's `url` as host; the URL comes from settings
        url = make_url(check_url(database_url()))
        query = dict(url.query)
        sqlite = url.get_backend_name() == "sqlite"
        if sqlite:
            query.setdefault("timeout", str(SQLITE_BUSY_TIMEOUT_MS / 1000))
        else:
            query = {**POSTGRESQL_CONNECT_ARGS, **query}
        super().__init__(
            domain,
            dialect=url.drivername,
            host=url.host,
            port=url.port,
            db=url.database,
            username=url.username,
            password=url.password,
            event_broker=event_broker,
            query=query,
            **kwargs,
        )
        if sqlite:
            event.listen(self.engine, "connect", configure_sqlite_connection)
        else:
            # Rasa's engine has no pre-ping: after a PostgreSQL restart every pooled connection would fail
            # one turn. The same engine with pre-ping replaces it (the tables exist by now).
            self.engine.dispose()
            self.engine = create_engine(self.engine.url, pool_pre_ping=True, **create_engine_kwargs(self.engine.url))
            self.sessionmaker = sessionmaker(bind=self.engine)
        self.review = ReviewCollector()  # what the bot was unsure about goes to the review inbox

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        read = super()._retrieve
        return await in_thread(lambda: _complete(read(sender_id, fetch_events_from_all_sessions)))

    async def save(self, tracker: DialogueStateTracker) -> None:
        for hook in _before_save:
            await hook(tracker)
        write = super().save
        if self.event_broker is None:
            await in_thread(lambda: _complete(write(tracker)))
        else:
            await write(tracker)
        await self.review(tracker)
