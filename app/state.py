"""What the running service holds: settings, keys, database, and the services built on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import AuditLog
from app.auth.tokens import TokenService
from app.config import Settings
from app.crypto.envelope import BlindIndex, Envelope
from app.crypto.keyring import Keyring
from app.crypto.reload import KeyringFile
from app.errors import ServiceUnavailable
from app.policy.store import PolicyStore


@dataclass
class AppState:
    settings: Settings
    keyring: Keyring
    engine: Engine
    sessions: sessionmaker[Session]
    tokens: TokenService
    envelope: Envelope
    blind_index: BlindIndex
    policies: PolicyStore
    audit: AuditLog
    # Hash checked when a client id is unknown, so a miss costs what a hit costs.
    dummy_secret_hash: str
    # Injectable, so tests can walk records through time.
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # The keyring's file, re-read when another process rotates a key (None: inline keyring).
    keyring_file: KeyringFile | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.cb
    return state


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed before the response leaves, else rolled back."""
    session = get_state(request).sessions()
    try:
        yield session
        try:
            session.commit()
        except SQLAlchemyError:
            # The response (case data included) is not sent: fail closed, and say so.
            raise ServiceUnavailable(
                "The change or its disclosure-log entry could not be stored; nothing was disclosed.",
                headers={"Retry-After": "1"},
            ) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


State = Annotated[AppState, Depends(get_state)]
# scope="function": the commit happens before the response is sent, so nothing leaves
# unless what the request wrote (its audit entry included) is durable.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
