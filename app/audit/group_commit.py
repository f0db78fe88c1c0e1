"""Group commit: every standalone append of a process goes through one committer thread.

Callers hand their events to the committer and wait: a handler on the event loop awaits an
asyncio future, any other thread blocks on a concurrent future.  The committer thread writes
whatever has queued in one transaction on one DBAPI connection (app.db.DedicatedConnection:
the same writer turn as every other write, BEGIN IMMEDIATE on SQLite, no Session), commits
(fsync), and only then settles the waiting callers: their sequence numbers, or the batch's
error for every one of them (fail closed).  While it commits, the next batch gathers, so the
batch grows with the load by itself; after a commit that carried several callers it also
waits up to GATHER_SECONDS for as many callers again (like PostgreSQL's commit_delay).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from app import metrics
from app.audit.events import AuditEvent
from app.db import DedicatedConnection

MAX_BATCH = 1024
"""Entries per transaction at most (one caller's entries are never split)."""
GATHER_SECONDS = 0.001
"""Under load, how long the committer waits at most for as many callers as its last batch had."""
IDLE_SECONDS = 30.0
"""The committer thread ends after this long without work; the next caller starts another."""

WriteBatch = Callable[[Any, list[AuditEvent], datetime | None], list[int]]
"""Writes events in the DBAPI connection's open transaction; returns their sequence numbers."""
Waiter = asyncio.Future[list[int]] | concurrent.futures.Future[list[int]]


@dataclass(slots=True)
class _Item:
    events: list[AuditEvent]
    now: datetime | None
    waiter: Waiter


class Committer:
    """The group committer of one engine in one process."""

    def __init__(self, engine: Engine, write: WriteBatch) -> None:
        self.write = write
        self._db = DedicatedConnection(engine)
        self._lock = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._thread: threading.Thread | None = None
        self._last_callers = 1

    def submit(self, events: list[AuditEvent], now: datetime | None) -> list[int]:
        """Append events, in order and together; their seqs once their transaction has committed."""
        waiter: concurrent.futures.Future[list[int]] = concurrent.futures.Future()
        self._enqueue(_Item(list(events), now, waiter))
        return waiter.result()

    async def submit_async(self, events: list[AuditEvent], now: datetime | None) -> list[int]:
        """``submit`` for a caller on an event loop: the loop goes on while the batch commits."""
        waiter: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._enqueue(_Item(list(events), now, waiter))
        return await waiter

    def _enqueue(self, item: _Item) -> None:
        with self._lock:
            self._queue.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-group-commit", daemon=True)
                self._thread.start()
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._queue and not self._lock.wait_for(lambda: self._queue, IDLE_SECONDS):
                    self._thread = None  # idle: a later caller starts a new one
                    return
                self._gather()
                batch = self._take()
            self._commit(batch)
            with self._lock:
                idle = not self._queue
            if idle:
                self._db.close()  # back to the pool while nobody logs (it holds no lock)

    def _gather(self) -> None:
        """Under load (the last batch held several callers) wait briefly for as many again."""
        wanted = min(self._last_callers, MAX_BATCH)
        if len(self._queue) >= wanted:
            return
        deadline = time.monotonic() + GATHER_SECONDS
        while len(self._queue) < wanted and (left := deadline - time.monotonic()) > 0:
            self._lock.wait(left)

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        taken = 0
        while self._queue and (not batch or taken + len(self._queue[0].events) <= MAX_BATCH):
            item = self._queue.popleft()
            batch.append(item)
            taken += len(item.events)
        self._last_callers = len(batch)
        return batch

    def _commit(self, batch: list[_Item]) -> None:
        try:
            started = time.monotonic()
            with self._db.transaction() as connection:
                seqs = self.write(connection, [e for item in batch for e in item.events], batch[0].now)
            metrics.observe_audit_batch(len(seqs), time.monotonic() - started)
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch must see it
            _settle([(item.waiter, None, exc) for item in batch])
            return
        outcomes: list[Outcome] = []
        start = 0
        for item in batch:
            outcomes.append((item.waiter, seqs[start : start + len(item.events)], None))
            start += len(item.events)
        _settle(outcomes)


Outcome = tuple[Waiter, list[int] | None, BaseException | None]
"""A caller's waiter and what to settle it with: its sequence numbers, or the batch's error."""


def _settle(outcomes: list[Outcome]) -> None:
    """Settle a batch's waiters: one wake-up per event loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        waiter = outcome[0]
        if isinstance(waiter, asyncio.Future):
            by_loop.setdefault(waiter.get_loop(), []).append(outcome)
        else:
            _apply([outcome])  # a thread blocked on a concurrent future: thread-safe as it is
    for loop, these in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(_apply, these)


def _apply(outcomes: list[Outcome]) -> None:
    for waiter, result, error in outcomes:
        if waiter.done():  # the caller went away (cancelled): its entries are written anyway
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(result or [])
