"""Idempotency-Key: a retried POST returns the original result and creates nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy import Integer, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.errors import BadRequest, Conflict

KEEP_FOR = timedelta(hours=24)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Unique per logical request; a retry with the same key and body "
        "returns the original response and creates nothing.",
    ),
]


class IdempotencyRecord(Base):
    """What a keyed request created: the resource, not a copy of its data."""

    __tablename__ = "idempotency_keys"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    resource_kind: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    resource_kind: str
    resource_id: str


def request_hash(method: str, route: str, body: Any) -> str:
    canonical = json.dumps([method, route, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    if key is not None and not (key.strip() and key.isprintable()):
        raise BadRequest("Idempotency-Key must be 1 to 200 printable characters.")
    return key


def find(session: Session, client_id: str, key: str, fingerprint: str) -> Replay | None:
    """The earlier result for this key, or None; a different request under it is a 409."""
    record = session.get(IdempotencyRecord, (client_id, key))
    if record is None or record.created_at < utcnow() - KEEP_FOR:
        return None
    if record.request_hash != fingerprint:
        raise Conflict(
            "This Idempotency-Key was used for a different request.",
            slug="idempotency-key-reused",
        )
    return Replay(record.status_code, record.resource_kind, record.resource_id)


def remember(
    session: Session, client_id: str, key: str, fingerprint: str, status_code: int,
    resource_kind: str, resource_id: str,
) -> None:
    """Record the result in the request's transaction; a concurrent twin loses with 409."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.client_id == client_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at < utcnow() - KEEP_FOR,
        )
    )
    session.add(
        IdempotencyRecord(
            client_id=client_id, key=key, request_hash=fingerprint, status_code=status_code,
            resource_kind=resource_kind, resource_id=resource_id, created_at=utcnow(),
        )
    )
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            "A request with this Idempotency-Key is already being processed; retry shortly.",
            slug="idempotency-key-in-use",
        ) from None
