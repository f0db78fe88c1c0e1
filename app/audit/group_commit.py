"""Group commit: concurrent standalone appends share one transaction, each waiting for it."""

# Leader/follower, no extra thread: the first caller to find the queue idle becomes the
# leader, writes everything queued (its own entry included) in one transaction, commits, wakes
# the followers of that batch and hands leadership to the first caller still queued.  No
# caller returns before the transaction holding its entry has committed; if it fails, every
# caller of that batch gets the error.  Right after a commit the queue is empty while the
# callers just released prepare their next entry, so when the last batch held several callers
# a new leader gathers for up to GATHER_SECONDS (like PostgreSQL's commit_delay).

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app import metrics
from app.audit.events import AuditEvent

MAX_BATCH = 1024
GATHER_SECONDS = 0.002
"""Under concurrency a new leader waits this long at most for as many callers as last time."""
ASYNC_GATHER_SECONDS = 0.002
"""How long the committer thread sleeps, under load, to gather a batch (it holds no lock)."""
BUSY_SECONDS = 0.005
"""An entry arriving this soon after a commit of several callers finds the log busy: the committer
gathers.  After a commit of one caller (one client calling in turn) it writes at once."""

Outcome = tuple[asyncio.Future[list[int]], list[int] | None, BaseException | None]
"""A caller's future and what to settle it with: its sequence numbers, or the batch's error."""
WriteBatch = Callable[[Session, list[AuditEvent], datetime | None], list[int]]


@dataclass(eq=False)
class _Pending:
    events: list[AuditEvent]
    now: datetime | None
    wake: threading.Event = field(default_factory=threading.Event)
    leader: bool = False
    done: bool = False
    seqs: list[int] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommitter:
    """Batches standalone appends to one engine into shared transactions."""

    def __init__(self, engine: Engine, write: WriteBatch) -> None:
        self.engine = engine
        self.write = write
        self._lock = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        self._last_batch = 1

    def submit(self, event: AuditEvent, now: datetime | None) -> int:
        """Append one event; returns its seq once the transaction holding it has committed."""
        return self.submit_many([event], now)[0]

    def submit_many(self, events: list[AuditEvent], now: datetime | None) -> list[int]:
        """Append events, in order and together; their seqs once their transaction has committed."""
        pending = _Pending(list(events), now)
        with self._lock:
            self._queue.append(pending)
            self._lock.notify()
            if not self._busy:
                self._busy = True
                pending.leader = True
        while not pending.done:
            if pending.leader:
                self._lead()
            else:
                pending.wake.wait()
                pending.wake.clear()
        if pending.error is not None:
            raise pending.error
        return pending.seqs

    def _take_batch(self) -> tuple[list[_Pending], list[_Pending]]:
        """The callers of the next transaction (at least one), holding MAX_BATCH events at most."""
        taken, events = 0, 0
        for p in self._queue:
            if taken and events + len(p.events) > MAX_BATCH:
                break
            taken += 1
            events += len(p.events)
        return self._queue[:taken], self._queue[taken:]

    def _lead(self) -> None:
        with self._lock:
            wanted = min(self._last_batch, MAX_BATCH)
            deadline = time.monotonic() + GATHER_SECONDS
            while len(self._queue) < wanted and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            batch, self._queue = self._take_batch()
            self._last_batch = len(batch)
        try:
            started = time.monotonic()
            with Session(self.engine) as session, session.begin():
                seqs = self.write(session, [e for p in batch for e in p.events], batch[0].now)
            metrics.observe_audit_batch(len(seqs), time.monotonic() - started)
            start = 0
            for p in batch:
                p.seqs = seqs[start : start + len(p.events)]
                start += len(p.events)
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch must see it
            for p in batch:
                p.error = exc
        for p in batch:
            p.leader = False
            p.done = True
            p.wake.set()
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.leader = True
                successor.wake.set()
            else:
                self._busy = False


class AsyncGroupCommitter:
    """Group commit for callers on an event loop: they await, a committer thread writes.

    Handlers that run on the event loop (the hot read paths) must not block it on a commit
    and its fsync.  They hand their events to this committer and await a future; one thread
    per process writes whatever has queued meanwhile in one transaction, commits, and only
    then resolves each future (or fails it, when the transaction fails: fail closed).  While
    it commits, the next batch gathers, so the batch grows with the load by itself.
    """

    def __init__(self, engine: Engine, write: WriteBatch) -> None:
        self.engine = engine
        self.write = write
        self._lock = threading.Condition()
        self._queue: list[tuple[list[AuditEvent], datetime | None, asyncio.Future[list[int]]]] = []
        self._thread: threading.Thread | None = None

    async def submit_many(self, events: list[AuditEvent], now: datetime | None) -> list[int]:
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._queue.append((list(events), now, future))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-group-commit", daemon=True)
                self._thread.start()
            self._lock.notify()
        return await future

    def _run(self) -> None:
        busy_until = 0.0  # set after a commit that carried more than one caller's entries
        while True:
            with self._lock:
                while not self._queue:
                    if not self._lock.wait(timeout=30):
                        self._thread = None  # idle: a later submit starts a new one
                        return
            if time.monotonic() < busy_until:
                # Under load (a commit of several just ended), let the requests about to log join
                # this transaction: a short sleep buys one commit for many entries.  Idle, or one
                # caller at a time, no wait.
                time.sleep(ASYNC_GATHER_SECONDS)
            with self._lock:
                batch: list[tuple[list[AuditEvent], datetime | None, asyncio.Future[list[int]]]] = []
                taken = 0
                while self._queue and (not batch or taken + len(self._queue[0][0]) <= MAX_BATCH):
                    item = self._queue.pop(0)
                    batch.append(item)
                    taken += len(item[0])
            self._commit(batch)
            busy_until = time.monotonic() + BUSY_SECONDS if len(batch) > 1 else 0.0

    def _commit(self, batch: list[tuple[list[AuditEvent], datetime | None, asyncio.Future[list[int]]]]) -> None:
        try:
            started = time.monotonic()
            with Session(self.engine) as session, session.begin():
                seqs = self.write(session, [e for events, _, _ in batch for e in events], batch[0][1])
            metrics.observe_audit_batch(len(seqs), time.monotonic() - started)
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch must see it
            _settle([(future, None, exc) for _, _, future in batch])
            return
        outcomes: list[Outcome] = []
        start = 0
        for events, _, future in batch:
            outcomes.append((future, seqs[start : start + len(events)], None))
            start += len(events)
        _settle(outcomes)


def _settle(outcomes: list[Outcome]) -> None:
    """Resolve (or fail) a batch's futures: one wake-up per event loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)

    def apply(these: list[Outcome]) -> None:
        for future, result, error in these:
            if future.done():  # the caller went away (cancelled): its entries are written anyway
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result or [])

    for loop, these in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(apply, these)
