"""What the running service holds: settings, keys, database, and the services built on them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import AuditLog
from app.auth.ratelimit import TokenEndpointLimits
from app.auth.tokens import TokenService
from app.config import Settings
from app.crypto.envelope import BlindIndex, Envelope
from app.crypto.keyring import Keyring
from app.crypto.reload import KeyringFile
from app.crypto.secrets import SecretHasher
from app.db import LoopReads
from app.errors import ServiceUnavailable
from app.policy.store import PolicyStore


@dataclass
class AppState:
    settings: Settings
    keyring: Keyring
    engine: Engine
    sessions: sessionmaker[Session]
    # Units of work that only read (app.db.make_read_sessionmaker): no lock on SQLite.
    read_sessions: sessionmaker[Session]
    # The event loop's own read-only connection, for the hot reads (app.db.LoopReads).
    loop_reads: LoopReads
    tokens: TokenService
    envelope: Envelope
    blind_index: BlindIndex
    policies: PolicyStore
    audit: AuditLog
    # Client secrets' keyed hashes (app.crypto.secrets), and POST /v1/token's rate limits.
    secret_hasher: SecretHasher
    token_limits: TokenEndpointLimits
    # Hash checked when a client id is unknown, so a miss costs what a hit costs.
    dummy_secret_hash: str
    # Injectable, so tests can walk records through time.
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # The keyring's file, re-read when another process rotates a key (None: inline keyring).
    keyring_file: KeyringFile | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.cb
    return state


async def state_dependency(request: Request) -> AppState:
    """``get_state`` as a dependency: async, so FastAPI does not send it to a worker thread."""
    return get_state(request)


# Ending a unit of work (commit or roll back) runs in a worker thread of its own pool.  Were it
# queued behind the next requests' handlers, each of which takes a pooled connection, a burst
# of requests could hold every connection while the sessions that would free them wait their
# turn: a stall until the pool times out.
_FINISHERS = 4
_finish_limiter: RunVar[CapacityLimiter] = RunVar("casebridge_finish_limiter")


def _finisher() -> CapacityLimiter:
    try:
        return _finish_limiter.get()
    except LookupError:
        limiter = CapacityLimiter(_FINISHERS)
        _finish_limiter.set(limiter)
        return limiter


def _commit_or_fail(session: Session) -> None:
    try:
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        session.close()
        # The response (case data included) is not sent: fail closed, and say so.
        raise ServiceUnavailable(
            "The change or its disclosure-log entry could not be stored; nothing was disclosed.",
            headers={"Retry-After": "1"},
        ) from None
    session.close()


@contextmanager
def unit_of_work(state: AppState) -> Iterator[Session]:
    """A writing unit of work inside a handler: committed at the end (a failed commit is a 503)."""
    session = state.sessions()
    try:
        yield session
    except BaseException:
        _roll_back(session)
        raise
    _commit_or_fail(session)


def _roll_back(session: Session) -> None:
    session.rollback()
    session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: committed before the response leaves, else rolled back.

    Creating a session does no I/O: its connection is taken by the first query, in the
    handler's worker thread.
    """
    session = get_state(request).sessions()
    try:
        yield session
    except BaseException:
        await to_thread.run_sync(_roll_back, session, limiter=_finisher())
        raise
    if session.in_transaction():
        await to_thread.run_sync(_commit_or_fail, session, limiter=_finisher())
    else:
        session.close()  # the handler never touched the database (or ended its own unit)


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """A read-only unit of work (no lock on SQLite; writes refused).

    Its disclosure-log entries are committed by ``AuditLog.record_many`` inside the endpoint,
    before the endpoint returns, so the fail-closed promise holds as for ``DbSession``.
    """
    session = get_state(request).read_sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await to_thread.run_sync(_roll_back, session, limiter=_finisher())
        else:
            session.close()  # no connection held: nothing to do but forget


State = Annotated[AppState, Depends(state_dependency)]
# scope="function": the commit happens before the response is sent, so nothing leaves
# unless what the request wrote (its audit entry included) is durable.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
ReadSession = Annotated[Session, Depends(get_read_session, scope="function")]
