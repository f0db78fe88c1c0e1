"""Which courses a person holds today: the latest completion of each course, unless it has expired.

A completion counts for callers of the agency it was recorded under only, so that a client naming
another agency's trained person as the one it acts for (`act`) borrows nothing.

A record expires on its `expires_on` day (held through the day before); a later completion of a
course supersedes every earlier one, so a renewal recorded with an earlier expiry does count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from app.db import CompiledSelect
from app.training.models import TrainingRecord

EXPIRING_DAYS = 30
"""A course expiring within this many days is shown as `expiring` and warned about."""

CourseState = Literal["ok", "expiring", "expired", "missing"]


@dataclass(frozen=True, slots=True)
class Completion:
    course_id: str
    completed_on: date
    expires_on: date | None
    recorded_at: datetime

    def held(self, today: date) -> bool:
        return self.expires_on is None or today < self.expires_on


def acting_person(client_id: str, act: str | None) -> str:
    """The person whose training counts: the one a client acts for, else the client (a console
    person is a client of the same id)."""
    return act or client_id


def latest(completions: Iterable[Completion]) -> dict[str, Completion]:
    """Per course, the completion that counts: the latest completed, then the latest recorded."""
    found: dict[str, Completion] = {}
    for one in completions:
        before = found.get(one.course_id)
        if before is None or (one.completed_on, one.recorded_at) > (before.completed_on, before.recorded_at):
            found[one.course_id] = one
    return found


def state_of(completion: Completion | None, today: date) -> CourseState:
    if completion is None:
        return "missing"
    if not completion.held(today):
        return "expired"
    if completion.expires_on is not None and (completion.expires_on - today).days <= EXPIRING_DAYS:
        return "expiring"
    return "ok"


_BY_PERSON = (
    select(TrainingRecord.course_id, TrainingRecord.completed_on, TrainingRecord.expires_on,
           TrainingRecord.recorded_at)
    .where(TrainingRecord.person_id == bindparam("person_id"), TrainingRecord.agency_id == bindparam("agency_id"))
)
_COMPILED: dict[str, CompiledSelect] = {}


def completions(session: Session, person_id: str, agency_id: str) -> list[Completion]:
    """The person's completions recorded under this agency."""
    rows = session.execute(_BY_PERSON, {"person_id": person_id, "agency_id": agency_id})
    return [Completion(*row) for row in rows]


def held(session: Session, person_id: str, agency_id: str, required: frozenset[str], today: date) -> frozenset[str]:
    """The required courses the person holds today for this agency."""
    return _held(completions(session, person_id, agency_id), required, today)


def held_on(
    connection: Any, dialect: Dialect, person_id: str, agency_id: str, required: frozenset[str], today: date
) -> frozenset[str]:
    """`held`, on a DBAPI connection (the lean read path, app.db.LoopReads): no Session."""
    query = _COMPILED.get(dialect.name)
    if query is None:
        query = _COMPILED[dialect.name] = CompiledSelect(_BY_PERSON, dialect)
    rows = query.rows(connection, {"person_id": person_id, "agency_id": agency_id})
    return _held((Completion(*row) for row in rows), required, today)


def _held(found: Iterable[Completion], required: frozenset[str], today: date) -> frozenset[str]:
    return frozenset(course for course, one in latest(found).items() if course in required and one.held(today))
