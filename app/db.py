"""Database engine, per-request sessions, and the declarative base."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, *, threads: int = 8, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: SQLite in WAL mode with foreign keys, or PostgreSQL.

    ``threads``: the worker threads that may each hold a connection at once; the pool is
    sized so they never wait for one (background jobs get the overflow).
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=threads, max_overflow=8, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy own transactions: pysqlite's implicit BEGIN handling is wrong.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives a power cut, so "logged before disclosed" holds on disk too.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Deleted content is overwritten with zeros: an erased person leaves no bytes behind.
            cur.execute("PRAGMA secure_delete=ON")
            # After a checkpoint the WAL file is cut back to this size, not left at its peak.
            cur.execute("PRAGMA journal_size_limit=67108864")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY):
                # A read: a snapshot, no lock, other readers and the writer go on.  query_only
                # makes a stray write fail loudly instead of upgrading to a write lock (an
                # upgrade can fail with SQLITE_BUSY_SNAPSHOT, which no busy handler waits out).
                conn.exec_driver_sql("PRAGMA query_only=ON")
                conn.exec_driver_sql("BEGIN")
                return
            # IMMEDIATE takes the write lock up front, so concurrent writers queue instead of
            # failing with "database is locked" on upgrade from a read transaction.
            writers.acquire(conn.connection.info)
            conn.exec_driver_sql("PRAGMA query_only=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        writers = WriterQueue(_sqlite_path(url))
        _release_after_end(engine.dialect, writers)

        @event.listens_for(engine, "checkin")
        def _writer_done(_dbapi_conn: Any, record: Any) -> None:
            writers.release(record.info)

        @event.listens_for(engine, "invalidate")
        def _writer_gone(_dbapi_conn: Any, record: Any, _exc: Any) -> None:
            writers.release(record.info)

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No pre-ping: it cost a round trip on every checkout.  A connection the server dropped
    # fails its request with a 503 (app.errors) and SQLAlchemy then discards the pool's
    # other connections from before the drop; pool_recycle retires idle ones early.
    # PostgreSQL's connections are dear (max_connections is 100 by default, shared by every
    # process): at most threads + 4 per process.
    return create_engine(url, pool_pre_ping=False, pool_recycle=1800, pool_size=min(threads, 10),
                         max_overflow=max(threads - 10, 0) + 4, **kwargs)


class WriterQueue:
    """Writers to one SQLite file wait their turn here, not in SQLite's busy handler.

    SQLite makes a writer that finds the file locked sleep and retry (1, 2, 5 … 100 ms), so
    under contention the lock sits idle between holders and latencies grow by whole sleeps.
    Here a writer blocks on a process-wide mutex, then on an flock(2) of a file beside the
    database shared by every process, and is woken the moment the holder's connection goes
    back to the pool.  SQLite's own lock still guards correctness; this only orders the queue.
    A thread that already writes on one connection and asks for a second write would wait on
    itself: after the busy timeout it fails, as SQLite would.
    """

    TIMEOUT_SECONDS = 30.0
    _HELD = "casebridge_writer"

    def __init__(self, path: str | None) -> None:
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._path = f"{path}-writers.lock" if path else None

    def acquire(self, info: dict[str, Any]) -> None:
        if self._path is None or info.get(self._HELD):
            return
        if not self._mutex.acquire(timeout=self.TIMEOUT_SECONDS):
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise
        info[self._HELD] = True

    def release(self, info: dict[str, Any]) -> None:
        if not info.pop(self._HELD, False):
            return
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()


def _release_after_end(dialect: Dialect, writers: WriterQueue) -> None:
    """Hand the turn on as soon as a transaction has committed or rolled back.

    SQLAlchemy's commit and rollback events fire before the database has finished, so the
    engine's own dialect is wrapped: the next writer starts after the commit, never during it.
    (Pool check-in and invalidation release too, for connections that end otherwise.)
    """
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def release(dbapi_connection: Any) -> None:
        try:
            info = dbapi_connection.info
        except (AttributeError, NotImplementedError):  # the dialect's first-connect probe
            return
        writers.release(info)

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            release(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _sqlite_path(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    database = make_url(url).database
    return None if not database or database == ":memory:" or database.startswith("file::memory:") else database


READ_ONLY = "casebridge_read_only"
"""Execution option of read-only sessions (SQLite: a deferred, query_only transaction)."""


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions for units of work that write (SQLite: the write lock from their first query)."""
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


def make_read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that only read: on SQLite they take no lock and cannot write.

    ``info["write_engine"]`` is where whatever such a reader must record (its disclosure-log
    entries) is written, in a transaction of its own (``AuditLog.record``).
    """
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True  # BEGIN READ ONLY: no extra round trip
    return sessionmaker(
        engine.execution_options(**options),
        expire_on_commit=False,
        autoflush=False,
        info={"read_only": True, "write_engine": engine},
    )


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
