"""The append API: every read and write path records its AuditEvent here, fail-closed."""

# How callers use it
# ------------------
#     seq = state.audit.append(session, AuditEvent(...))
#
# The entry is written in the CALLER's transaction: for a write it commits with the change; for
# a read the request's session commits before the response leaves (app.state.DbSession), so no
# data is returned unless its entry is durable.  Any failure raises AuditUnavailable (503) and
# the caller's transaction must be rolled back (the request's session does that).
#
# Appending locks the single audit_head row until the caller's transaction ends (FOR UPDATE on
# PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes writers).  That is what keeps the
# sequence free of gaps and forks across processes; call append late in the transaction so the
# lock is held briefly.

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app import metrics
from app.audit import merkle, store
from app.audit.checkpoints import CheckpointSigner
from app.audit.events import AuditEvent, InvalidEvent, check_event, encode_details
from app.audit.group_commit import Committer
from app.audit.leaf import clear_text, details_aad, leaf_bytes_many, to_us
from app.audit.sealing import AuditSealer
from app.crypto.envelope import BlindIndex
from app.crypto.keyring import Keyring
from app.db import utcnow
from app.errors import ServiceUnavailable

__all__ = ["AuditEvent", "AuditLog", "AuditUnavailable", "EventRejected"]

log = logging.getLogger("casebridge.audit")


class AuditUnavailable(ServiceUnavailable):
    """The log could not be written, so nothing may be disclosed or changed."""

    slug = "audit-unavailable"
    title = "Disclosure log unavailable"

    def __init__(
        self,
        detail: str = "The disclosure log cannot be written; nothing was disclosed.",
        **kw: Any,
    ) -> None:
        kw.setdefault("headers", {"Retry-After": "1"})
        super().__init__(detail, **kw)


class EventRejected(AuditUnavailable):
    """An entry the log cannot hold as built (app.audit.events.InvalidEvent): a defect, not an outage.

    Request input that reaches an entry is validated at the edge (app.edges, the routes' own
    parameters), so this means something slipped through.  It still fails closed (an
    AuditUnavailable: nothing disclosed, the transaction rolled back), but as a 500 without
    Retry-After: the same request would fail again, and "the log cannot be written" would send
    operators looking for a database outage that is not there.
    """

    status = 500
    slug = "audit-entry-invalid"
    title = "Request could not be recorded"

    def __init__(
        self,
        detail: str = "The request could not be recorded in the disclosure log; nothing was disclosed or changed.",
        **kw: Any,
    ) -> None:
        kw.setdefault("headers", {})
        super().__init__(detail, **kw)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An event checked and turned into what gets stored (all but seq, time and key)."""

    clear: tuple[str | None, ...]  # the first nine clear columns
    details: bytes


class AuditLog:
    """The disclosure log of one service: append entries, sign checkpoints."""

    def __init__(
        self, keyring: Keyring, blind_index: BlindIndex, *, origin: str,
        marks_training: Callable[[AuditEvent], bool] | None = None,
    ) -> None:
        # Whether an entry concerns a training network (app/training_network/marks.py): it then
        # carries `training: true`, whichever path appended it.
        self.marks_training = marks_training
        self.sealer = AuditSealer(keyring, blind_index)
        self.signer = CheckpointSigner(keyring, origin)
        self._committers: dict[Engine, Committer] = {}
        self._committers_lock = threading.Lock()

    @property
    def origin(self) -> str:
        return self.signer.origin

    def append(self, session: Session, event: AuditEvent, *, now: datetime | None = None) -> int:
        """Record one event in the caller's transaction; returns its sequence number."""
        return self.append_many(session, [event], now=now)[0]

    def append_many(
        self, session: Session, events: Iterable[AuditEvent], *, now: datetime | None = None
    ) -> list[int]:
        """Record events in order in the caller's transaction; returns their sequence numbers."""
        batch = list(events)
        if not batch:
            return []
        return self._append(lambda: dbapi_connection(session), batch, now)

    def _append(self, connection: Callable[[], Any], batch: list[AuditEvent], now: datetime | None) -> list[int]:
        try:
            prepared = [self._prepare(event) for event in batch]
            seqs = self._write(connection(), prepared, now)
            metrics.count_audit_events(batch)
            return seqs
        except AuditUnavailable:
            raise
        except InvalidEvent as exc:
            log.error("an audit entry was refused", extra={"error_type": type(exc).__name__, "reason": str(exc)})
            raise EventRejected() from exc
        except Exception as exc:
            # Type only: the exception text may quote the details.
            log.error("the disclosure log cannot be written", extra={"error_type": type(exc).__name__})
            raise AuditUnavailable() from exc

    def record(self, session: Session, event: AuditEvent, *, now: datetime | None = None) -> int:
        """Append, durably before returning when the caller has no transaction of its own.

        Inside a transaction this is ``append`` (durable when the caller commits).  Outside one
        (CLI, background jobs, a read whose transaction has ended) the entry is committed now,
        in one transaction with concurrent callers' entries (group commit), and this returns
        only once that transaction has committed.
        """
        return self.record_many(session, [event], now=now)[0]

    def record_many(
        self, session: Session, events: Iterable[AuditEvent], *, now: datetime | None = None
    ) -> list[int]:
        """``record`` for several events, kept together and in order."""
        batch = list(events)
        if not batch:
            return []
        read_only = bool(session.info.get("read_only"))
        if session.in_transaction() and not read_only:
            return self.append_many(session, batch, now=now)
        # A read-only session (app.db.make_read_sessionmaker) cannot write: its entries go
        # through the engine it names, after its snapshot has ended.
        engine = session.info.get("write_engine") if read_only else session.get_bind()
        if read_only and session.in_transaction():
            session.commit()  # nothing to write: this ends the snapshot and frees the connection
        if not isinstance(engine, Engine):  # a session bound to a connection has a transaction
            return self.append_many(session, batch, now=now)
        return self.commit(engine, batch, now=now)

    async def record_many_async(
        self, session: Session, events: Iterable[AuditEvent], *, now: datetime | None = None
    ) -> list[int]:
        """``record_many`` for a handler on the event loop with a read-only session.

        The session's snapshot ends first; the entries are committed by this process's
        committer thread with whatever else is queued, and this returns once they are durable.
        """
        if not session.info.get("read_only"):
            raise TypeError("record_many_async takes a read-only session (app.db.make_read_sessionmaker)")
        if session.in_transaction():
            session.commit()  # nothing to write: this ends the snapshot and frees the connection
        return await self.commit_async(session.info["write_engine"], events, now=now)

    def commit(self, engine: Engine, events: Iterable[AuditEvent], *, now: datetime | None = None) -> list[int]:
        """Commit entries to the engine's log from a thread holding no transaction: durable on return.

        The entries join whatever else this process's committer has queued (one transaction,
        one fsync for all of them).
        """
        batch = list(events)
        if not batch:
            return []
        self._check_all(batch)
        with _unavailable_on_failure():
            return self._committer(engine).submit(batch, now)

    async def commit_async(
        self, engine: Engine, events: Iterable[AuditEvent], *, now: datetime | None = None
    ) -> list[int]:
        """Commit entries to the engine's log from the event loop, holding no transaction: durable on return."""
        batch = list(events)
        if not batch:
            return []
        self._check_all(batch)
        with _unavailable_on_failure():
            return await self._committer(engine).submit_async(batch, now)

    def _committer(self, engine: Engine) -> Committer:
        with self._committers_lock:
            committer = self._committers.get(engine)
            if committer is None:
                committer = self._committers[engine] = Committer(engine, self._append_batch)
            return committer

    @staticmethod
    def _check_all(batch: list[AuditEvent]) -> None:
        try:
            for event in batch:
                check_event(event)  # a malformed event fails its own caller, not the whole batch
        except InvalidEvent as exc:
            log.error("an audit entry was refused", extra={"error_type": type(exc).__name__, "reason": str(exc)})
            raise EventRejected() from exc

    def _append_batch(self, connection: Any, events: list[AuditEvent], now: datetime | None) -> list[int]:
        """The committer's write: events in the DBAPI connection's open transaction."""
        return self._append(lambda: connection, events, now)

    def _prepare(self, event: AuditEvent) -> _Prepared:
        check_event(event)
        index = self.sealer.subject_index(event.subject_id) if event.subject_id else None
        clear = (
            event.event_type,
            event.actor_agency or None,
            event.recipient_agency or None,
            event.purpose or None,
            event.decision,
            event.agreement_id or None,
            event.rule_id or None,
            index.digest if index else None,
            index.key_id if index else None,
        )
        details = event.details
        if self.marks_training is not None and self.marks_training(event):
            details = {**details, "training": True}
        return _Prepared(clear, encode_details(details))

    def _write(
        self, connection: Any, prepared: list[_Prepared], now: datetime | None
    ) -> list[int]:
        """Lock the head, seal, chain, hash and insert, on a DBAPI connection in its transaction.

        Tests replace this to inject faults.
        """
        appender = store.Appender(connection)
        head = appender.read_head_locked()
        key_id, material = self.sealer.sealing_key()
        time_us = max(to_us(now or utcnow()), head.time_us)  # time never runs backwards
        rows: list[tuple[Any, ...]] = []
        prev = head.last_hash
        for offset, item in enumerate(prepared):
            seq = head.size + offset
            clear = (*item.clear, key_id)
            aad = details_aad(seq, time_us, clear_text(clear))
            row = (seq, time_us, *clear, self.sealer.seal(material, item.details, aad), prev)
            prev = merkle.leaf_hash(leaf_bytes_many((row,))[0])
            rows.append((*row, prev))
        hashes = [row[-1] for row in rows]
        known = head.peak_nodes()
        new_nodes = merkle.append_many(head.size, hashes, known.__getitem__)
        known.update(((level, index), h) for level, index, h in new_nodes)
        size = head.size + len(rows)
        peaks = tuple(known[key] for key in store.peak_keys(size))
        appender.write(rows, new_nodes, store.Head(size, prev, peaks, time_us))
        return list(range(head.size, size))


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """A batch that failed after its entries were written (the commit itself): 503, like any failed append."""
    try:
        yield
    except AuditUnavailable:
        raise
    except Exception as exc:
        log.error("the disclosure log cannot be written", extra={"error_type": type(exc).__name__})
        raise AuditUnavailable() from exc


def dbapi_connection(session: Session) -> Any:
    """The driver's connection under the session's transaction (begun if it was not)."""
    return session.connection().connection.driver_connection
