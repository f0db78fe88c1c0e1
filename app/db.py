"""Database engine, per-request sessions, and the declarative base."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
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


def make_engine(url: str, *, threads: int = 8, writer_wait_seconds: float | None = None,
                **kwargs: Any) -> Engine:
    """An engine tuned for the backend: SQLite in WAL mode with foreign keys, or PostgreSQL.

    ``threads``: the worker threads that may each hold a connection at once; the pool is
    sized so they never wait for one (background jobs get the overflow).
    ``writer_wait_seconds`` (SQLite): how long a write waits for its turn before it fails as busy.
    Statement errors never quote their parameters (they may be case data or secrets).
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            create_private_file(path)
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

        writers = WriterQueue(path, writer_wait_seconds)
        _WRITERS[engine] = writers
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


_WRITERS: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()
"""The writer queue of each SQLite engine with a file (see WriterQueue)."""


class _KeptConnection:
    """One DBAPI connection taken from the engine's pool and kept, read-only or for writing.

    A connection that fails is dropped (invalidated) and the next use opens another; ``close``
    gives it back to the pool as it found it.
    """

    read_only = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._raw: Any = None

    def _connection(self) -> Any:
        if self._raw is None:
            raw = self.engine.raw_connection()
            driver: Any = raw.driver_connection
            if self._sqlite:  # a pooled reader may have left query_only on
                driver.execute(f"PRAGMA query_only={'ON' if self.read_only else 'OFF'}")
            else:
                driver.read_only = self.read_only
            self._raw = raw
        return self._raw

    def _end_failed(self, raw: Any) -> None:
        try:
            raw.driver_connection.rollback()
        except Exception:  # noqa: BLE001 - the connection is broken: open another next time
            with suppress(Exception):
                raw.invalidate()
            self._raw = None

    def _give_back(self) -> None:
        if self._raw is not None:
            raw, self._raw = self._raw, None
            if self._sqlite and self.read_only:
                with suppress(Exception):
                    raw.driver_connection.execute("PRAGMA query_only=OFF")
            with suppress(Exception):
                raw.close()


class DedicatedConnection(_KeptConnection):
    """One DBAPI connection kept by one thread for its own transactions: the log's committer.

    No pool checkout, no Session and no SQLAlchemy statement per transaction: ``transaction``
    yields the driver's connection inside BEGIN … COMMIT.  On SQLite it takes the same writer
    turn as every other write (WriterQueue, then BEGIN IMMEDIATE) and hands it on after the
    commit or rollback; on PostgreSQL the driver begins the transaction itself.  Use from one
    thread only.
    """

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        raw = self._connection()
        driver = raw.driver_connection
        writers = _WRITERS.get(self.engine) if self._sqlite else None
        if writers is not None:
            writers.acquire(raw.info)
        try:
            if self._sqlite:
                driver.execute("BEGIN IMMEDIATE")
            yield driver
            self._commit(driver)
        except BaseException:
            self._end_failed(raw)
            raise
        finally:
            if writers is not None:
                writers.release(raw.info)

    @staticmethod
    def _commit(driver: Any) -> None:
        """The durable end of a transaction (fsync).  Tests replace this to make commits fail."""
        driver.commit()

    def close(self) -> None:
        self._give_back()


class LoopReads(_KeptConnection):
    """A read-only DBAPI connection for handlers on the event loop: hot reads without a Session.

    ``snapshot`` yields the driver's connection inside one read-only transaction (SQLite: a
    deferred BEGIN with query_only on, so it takes no lock and cannot write; PostgreSQL: the
    connection is read-only, each transaction begins with its first statement).  The block
    must not await: it runs start to end on the loop, so one connection serves every request
    of the loop in turn (a lock keeps another thread's loop out meanwhile).
    """

    read_only = True

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._lock = threading.Lock()

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        with self._lock:
            raw = self._connection()
            driver = raw.driver_connection
            try:
                if self._sqlite:
                    driver.execute("BEGIN")
                yield driver
                driver.commit()  # a read-only transaction: this only ends the snapshot
            except BaseException:
                self._end_failed(raw)
                raise

    def close(self) -> None:
        with self._lock:
            self._give_back()


def pipelined(dbapi_connection: Any) -> AbstractContextManager[Any]:
    """Statements sent inside go out together and their results come back together: one round trip
    on PostgreSQL (psycopg's pipeline mode); SQLite runs in the process, so nothing changes there."""
    pipeline = getattr(dbapi_connection, "pipeline", None)
    return pipeline() if pipeline is not None else nullcontext()


class CompiledSelect:
    """A SELECT compiled once for one dialect and run on a DBAPI connection.

    Rows come back as tuples with each column's values converted as SQLAlchemy would (UTC
    datetimes, JSON, booleans), without a Connection, a result object or the statement cache.
    Parameters are by name, as the statement's bindparams are.
    """

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.names: list[str] | None = list(compiled.positiontup) if compiled.positional else None
        self.columns = [column.key for column in statement.selected_columns]
        self._convert = [
            column.type._cached_result_processor(dialect, None)  # noqa: SLF001 - what Result uses
            for column in statement.selected_columns
        ]

    def rows(self, connection: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self.finish(self.start(connection, params))

    def start(self, connection: Any, params: dict[str, Any]) -> Any:
        """Send the statement; its rows are read by ``finish`` (so several can share one round trip)."""
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql, [params[name] for name in self.names] if self.names is not None else params)
        except BaseException:
            cursor.close()
            raise
        return cursor

    def finish(self, cursor: Any) -> list[tuple[Any, ...]]:
        try:
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        convert = self._convert
        if not any(convert):
            return [tuple(row) for row in fetched]
        return [tuple(v if f is None or v is None else f(v) for f, v in zip(convert, row, strict=True))
                for row in fetched]


class WriterBusy(OperationalError):
    """A write did not get its turn within the configured wait: nothing was written; 503, retry."""

    def __init__(self, waited: float) -> None:
        super().__init__("BEGIN IMMEDIATE", None, sqlite3.OperationalError(
            f"database is locked: no writer turn within {waited:g} s"))


class WriterQueue:
    """Writers to one SQLite file wait their turn here, not in SQLite's busy handler.

    SQLite makes a writer that finds the file locked sleep and retry (1, 2, 5 … 100 ms), so
    under contention the lock sits idle between holders and latencies grow by whole sleeps.
    Here a writer blocks on a process-wide mutex, then on an flock(2) of a file beside the
    database shared by every process, and is woken the moment the holder's connection goes
    back to the pool.  SQLite's own lock still guards correctness; this only orders the queue.

    The wait is bounded (``wait_seconds``, CASEBRIDGE_SQLITE_WRITER_WAIT_SECONDS): a writer
    that does not get its turn in time fails with WriterBusy before it has written anything,
    and the request answers 503 with Retry-After.  flock(2) has no timeout, so a contended
    flock is taken by a helper thread while the writer waits on a condition with a deadline;
    a grant nobody waits for any more is handed straight back.  A thread that already writes
    on one connection and asks for a second write would wait on itself: it fails the same way.
    """

    TIMEOUT_SECONDS = 5.0
    """The wait when the engine was given none."""
    _HELD = "casebridge_writer"

    def __init__(self, path: str | None, wait_seconds: float | None = None) -> None:
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._path = f"{path}-writers.lock" if path else None
        self._wait = wait_seconds
        self._flock_state = threading.Condition()
        self._flock_pending = False  # a helper thread is blocked in flock(2) for this process
        self._flock_wanted = False  # the mutex holder waits for that helper's grant
        self._flock_granted = False

    def acquire(self, info: dict[str, Any]) -> None:
        if self._path is None or info.get(self._HELD):
            return
        wait = self.TIMEOUT_SECONDS if self._wait is None else self._wait
        deadline = time.monotonic() + wait
        if not self._mutex.acquire(timeout=wait):
            raise WriterBusy(wait)
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            if not self._flock(self._fd, deadline):
                raise WriterBusy(wait)
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

    def _flock(self, fd: int, deadline: float) -> bool:
        """Take the file lock by the deadline (the caller holds the mutex); False if not."""
        with self._flock_state:
            if not self._flock_pending:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
                self._flock_pending = True
                threading.Thread(target=self._flock_blocking, args=(fd,), name="casebridge-writer-turn",
                                 daemon=True).start()
            self._flock_wanted = True
            try:
                granted = self._flock_state.wait_for(lambda: self._flock_granted,
                                                     max(0.0, deadline - time.monotonic()))
            finally:
                self._flock_wanted = False
            self._flock_granted = False
            return granted

    def _flock_blocking(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            with self._flock_state:
                self._flock_pending = False
            return
        with self._flock_state:
            self._flock_pending = False
            if self._flock_wanted:
                self._flock_granted = True
                self._flock_state.notify_all()
            else:  # the writer gave up meanwhile: let the other processes' writers go on
                fcntl.flock(fd, fcntl.LOCK_UN)


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


def create_private_file(path: str) -> None:
    """Create a database file readable by its owner only, before SQLite opens it.

    SQLite creates its -wal and -shm files with the database file's mode, so these are 0600
    too.  An existing file keeps the mode it has (an operator may have chosen it).
    """
    if path.startswith("file:"):
        return
    with suppress(OSError):  # exists already, or cannot be made: SQLite says why when it opens it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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
