"""Group commit: concurrent standalone appends share one transaction, each waiting for it."""

# Leader/follower, no extra thread: the first caller to find the queue idle becomes the
# leader, writes everything queued (its own entry included) in one transaction, commits, wakes
# the followers of that batch and hands leadership to the first caller still queued.  No
# caller returns before the transaction holding its entry has committed; if it fails, every
# caller of that batch gets the error.  Right after a commit the queue is empty while the
# callers just released prepare their next entry, so when the last batch held several callers
# a new leader gathers for up to GATHER_SECONDS (like PostgreSQL's commit_delay).

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.audit.events import AuditEvent

MAX_BATCH = 1024
GATHER_SECONDS = 0.001
"""Under concurrency a new leader waits this long at most for as many callers as last time."""

WriteBatch = Callable[[Session, list[AuditEvent], datetime | None], list[int]]


@dataclass(eq=False)
class _Pending:
    event: AuditEvent
    now: datetime | None
    wake: threading.Event = field(default_factory=threading.Event)
    leader: bool = False
    done: bool = False
    seq: int = -1
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
        pending = _Pending(event, now)
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
        return pending.seq

    def _lead(self) -> None:
        with self._lock:
            wanted = min(self._last_batch, MAX_BATCH)
            deadline = time.monotonic() + GATHER_SECONDS
            while len(self._queue) < wanted and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self._last_batch = len(batch)
        try:
            with Session(self.engine) as session, session.begin():
                seqs = self.write(session, [p.event for p in batch], batch[0].now)
            for p, seq in zip(batch, seqs, strict=True):
                p.seq = seq
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
