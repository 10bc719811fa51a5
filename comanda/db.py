"""Engine and sessions for the one database (SQLite by default, PostgreSQL in production).

SQLite is written by several processes at once (Rasa, the action server, the back office), so every
connection turns on WAL and waits on a busy lock instead of failing. Keep transactions short.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from comanda.errors import ConfigError
from comanda.settings import database_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
# libpq's: a PostgreSQL that takes the TCP connection but never answers (a restart, a partition) fails a
# connection attempt after 10 s instead of hanging a worker thread forever, and a peer that vanished is
# noticed by TCP keepalives within about a minute. A URL's own values win.
POSTGRESQL_CONNECT_ARGS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: object = None) -> None:
    """WAL lets readers run beside one writer; the busy timeout queues writers instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def check_url(url: str) -> str:
    """Validate a database URL early, with one clear line instead of a traceback later."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"COMANDA_DATABASE_URL is not a database URL: {url!r}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"COMANDA_DATABASE_URL must be sqlite:/// or postgresql://, not {parsed.drivername!r}")
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        _create_private_file(Path(parsed.database))
    return url


def _create_private_file(path: Path) -> None:
    """Create the SQLite file owner-only (0600) before SQLite would create it world-readable; its -wal
    and -shm files take the same mode. An existing file is left as the operator set it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # another process created it first
    except OSError as exc:
        raise ConfigError(f"cannot create the SQLite database {path}: {exc.strerror}") from exc


def ensure_reachable(url: Optional[str] = None) -> None:
    """Connect once: a database that cannot be reached is one clear error, not a driver's traceback."""
    try:
        with get_engine(url).connect():
            pass
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())
        raise ConfigError(f"cannot reach the database at COMANDA_DATABASE_URL: {reason}") from exc


_engines: Dict[str, Engine] = {}
_factories: Dict[str, sessionmaker] = {}


def get_engine(url: Optional[str] = None) -> Engine:
    """The process's engine for a URL (default: COMANDA_DATABASE_URL), created once."""
    url = database_url(url)
    if url not in _engines:
        _engines[url] = _create_engine(check_url(url))
    return _engines[url]


def _create_engine(url: str) -> Engine:
    backend = make_url(url).get_backend_name()
    try:
        if backend == "sqlite":
            engine = create_engine(url, future=True, **_sqlite_pooling(url))
            event.listen(engine, "connect", configure_sqlite_connection)
            return engine
        own = make_url(url).query
        connect_args = {key: value for key, value in POSTGRESQL_CONNECT_ARGS.items() if key not in own}
        return create_engine(
            url, future=True, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args
        )
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"no database driver for {make_url(url).drivername!r}: {exc}") from exc


def _sqlite_pooling(url: str) -> Dict[str, Any]:
    """A file database keeps a pool of open connections, as SQLAlchemy 2.0 does by default (1.4 opens one
    per checkout): each new connection costs an open and four PRAGMAs, which profiles of the bot under load
    showed as a fifth of its database time; the pool holds as many as a server's threads use at once (its
    event loop's executor, the NLU, inbox and sender threads), since connections beyond it are closed when
    given back. A pooled connection moves between threads, never shared by two at once (the pool hands it to
    one holder), hence ``check_same_thread`` off. ``:memory:`` keeps 1.4's
    one connection per thread (a pool would give each thread a different empty database)."""
    connect_args: Dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    database = make_url(url).database
    if not database or database == ":memory:":
        return {"connect_args": connect_args}
    connect_args["check_same_thread"] = False
    return {"connect_args": connect_args, "poolclass": QueuePool, "pool_size": 12, "max_overflow": 20}


def new_session(url: Optional[str] = None) -> Session:
    url = database_url(url)
    if url not in _factories:
        _factories[url] = sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)
    return _factories[url]()


@contextmanager
def transaction(url: Optional[str] = None) -> Iterator[Session]:
    """One short unit of work: commits on success, rolls back on any error."""
    with new_session(url) as session, session.begin():
        yield session


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A part of a bigger transaction that may fail on its own: on an error only this part is undone
    (the error goes on to the caller), and the rest of the transaction can still commit.

    On SQLite the part is about to write after reading: its transaction takes the write lock first
    (``BEGIN IMMEDIATE``, waiting on the busy timeout), because a read snapshot that later wants to write
    fails at once when another process committed in between."""
    _begin_before_savepoint(session, immediate=True)
    with session.begin_nested():
        yield


def insert_unless_duplicate(session: Session, row: Any) -> Optional[Any]:
    """Add a row inside a savepoint; its primary key, or None when a unique constraint says it is
    there already.

    This is how redeliveries and replays are dropped: the database, not a prior read, decides. Any
    other integrity error (a foreign key, a NOT NULL) is a bug and is raised, not taken for a replay.
    """
    _begin_before_savepoint(session)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        if not _is_unique_violation(exc):
            raise
        return None
    identity = inspect(row).identity
    return identity[0] if len(identity) == 1 else identity


def _is_unique_violation(exc: IntegrityError) -> bool:
    """PostgreSQL's unique_violation (SQLSTATE 23505), or SQLite's "UNIQUE constraint failed" (which
    a primary key conflict raises too)."""
    code = getattr(exc.orig, "pgcode", None)
    return code == "23505" if code is not None else "UNIQUE constraint failed" in str(exc.orig)


def _begin_before_savepoint(session: Session, immediate: bool = False) -> None:
    """pysqlite opens a transaction only before INSERT/UPDATE/DELETE, not before SAVEPOINT: a savepoint
    that comes first would be the outermost transaction, and releasing it would commit the row at
    once, beyond the reach of a later rollback. So SQLite gets its BEGIN first. Reads before it stay
    outside the transaction, as pysqlite keeps them, which WAL needs to let several processes write."""
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def dispose_engines() -> None:
    """Close every pooled connection (tests switch databases; forked workers must not share them)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _factories.clear()
