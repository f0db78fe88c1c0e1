"""A referral as the read path needs it: three statements, plain rows, no ORM identity map.

Reading one referral through the ORM took seven statements (tombstone, referral, history,
assignments, subject …) and most of a read's time went into the ORM's bookkeeping around
them.  A snapshot is what `render_referral` and the access decision look at, nothing more:
the referral's columns, its subject's sealed columns, its lifecycle and its assignments.
It is immutable and detached: it cannot be changed and written back by mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from app.agencies.models import ApiClient
from app.db import CompiledSelect, pipelined
from app.errors import Gone, NotFound
from app.referrals.models import Assignment, Referral, StatusChange
from app.retention import tombstones
from app.retention.models import Tombstone
from app.subjects.models import Subject

_referrals = cast(Table, Referral.__table__)
_subjects = cast(Table, Subject.__table__)
_history = cast(Table, StatusChange.__table__)
_assignments = cast(Table, Assignment.__table__)
_tombstones = cast(Table, Tombstone.__table__)


@dataclass(frozen=True, slots=True)
class SubjectSnapshot:
    id: str
    wrapped_key: bytes | None
    kek_id: str | None
    identity: bytes | None


@dataclass(frozen=True, slots=True)
class StatusStep:
    id: int
    from_status: str | None
    to_status: str
    at: datetime
    by_agency: str
    reason: bytes | None  # sealed (app/referrals/sealed.py)
    outcome: str | None
    agencies: list[str]
    to_network: str | None


@dataclass(frozen=True, slots=True)
class ReferralSnapshot:
    id: str
    schema_id: str
    subject_id: str
    network_id: str
    referring_agency: str
    referring_person: bytes | None  # sealed, as are consent_recorded_by and narrative
    concerns: list[str]
    vulnerability_factors: list[str]
    protective_factors: list[str]
    risk_level: str
    urgency: str
    consent: dict[str, Any]
    consent_recorded_by: bytes | None
    consent_status: str
    requested_services: list[str]
    intervention_type: str | None
    narrative: bytes | None
    sections: bytes | None  # referral/v2's sections, sealed (app/referrals/sections.py)
    subject_submission: bytes | None  # the subject as this referral described them, sealed
    subject_age_band: str | None
    subject_district: str | None
    link_conflicts: list[str] | None
    do_not_contact: bool
    code_system: str | None
    original_codes: dict[str, Any]
    status: str
    outcome: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    subject: SubjectSnapshot
    history: tuple[StatusStep, ...]
    assigned_agencies: list[str]


_REFERRAL_FIELDS = [f for f in ReferralSnapshot.__dataclass_fields__ if f not in ("subject", "history",
                                                                                  "assigned_agencies")]
_SUBJECT_FIELDS = list(SubjectSnapshot.__dataclass_fields__)
_STEP_FIELDS = list(StatusStep.__dataclass_fields__)

# Built once: building a statement costs more than running it on this path.
_MAIN = (
    select(
        *(_referrals.c[name] for name in _REFERRAL_FIELDS),
        *(_subjects.c[name].label(f"subject__{name}") for name in _SUBJECT_FIELDS),
        _tombstones.c.reason.label("tombstone_reason"),
        _tombstones.c.at.label("tombstone_at"),
    )
    .join(_subjects, _subjects.c.id == _referrals.c.subject_id)
    .outerjoin(_tombstones, _tombstones.c.record_id == _referrals.c.id)
    .where(_referrals.c.id == bindparam("referral_id"))
)
_HISTORY = (
    select(*(_history.c[name] for name in _STEP_FIELDS))
    .where(_history.c.referral_id == bindparam("referral_id"))
    .order_by(_history.c.id)
)
_ASSIGNED = (
    select(_assignments.c.agency_id)
    .where(_assignments.c.referral_id == bindparam("referral_id"))
    .order_by(_assignments.c.agency_id)
)
_TOMBSTONE = select(_tombstones.c.reason, _tombstones.c.at).where(_tombstones.c.record_id == bindparam("referral_id"))


_clients = cast(Table, ApiClient.__table__)
# The hot read in one statement: the caller's client (is it enabled?), the referral, its subject
# and its tombstone.  Every join is outer and keyed by the ids asked for, so one row answers all
# four questions: no row, an unknown client; no referral id, look at the tombstone.
_LEAN_MAIN = (
    select(
        _clients.c.disabled.label("client_disabled"),
        *_MAIN.selected_columns,
    )
    .select_from(
        _clients.outerjoin(_referrals, _referrals.c.id == bindparam("referral_id"))
        .outerjoin(_subjects, _subjects.c.id == _referrals.c.subject_id)
        .outerjoin(_tombstones, _tombstones.c.record_id == bindparam("referral_id"))
    )
    .where(_clients.c.id == bindparam("client_id"))
)
_LEAN: dict[str, tuple[CompiledSelect, CompiledSelect, CompiledSelect]] = {}


def _lean(dialect: Dialect) -> tuple[CompiledSelect, CompiledSelect, CompiledSelect]:
    found = _LEAN.get(dialect.name)
    if found is None:
        found = _LEAN[dialect.name] = (CompiledSelect(_LEAN_MAIN, dialect), CompiledSelect(_HISTORY, dialect),
                                       CompiledSelect(_ASSIGNED, dialect))
    return found


@dataclass(frozen=True, slots=True)
class CallerRead:
    """One lean read: whether the caller's client may call, and the referral or why there is none."""

    client_id: str
    client_enabled: bool
    referral: ReferralSnapshot | None
    refusal: NotFound | Gone | None  # why there is no referral

    def found(self) -> ReferralSnapshot:
        """The referral; else the 404 or 410 that says why there is none."""
        if self.referral is None:
            raise self.refusal or NotFound("No such referral.")
        return self.referral


def load_lean(connection: Any, dialect: Dialect, client_id: str, referral_id: str) -> CallerRead:
    """The client's standing and the referral, in a snapshot of a DBAPI connection (app.db.LoopReads).

    Three statements sent together, no Session: the main one (client, referral, subject,
    tombstone), the lifecycle and the assignments.
    """
    main, history, assigned = _lean(dialect)
    params = {"referral_id": referral_id, "client_id": client_id}
    with pipelined(connection):  # PostgreSQL: the three statements in one round trip
        sent = [main.start(connection, params), history.start(connection, params), assigned.start(connection, params)]
    rows, step_rows, agency_rows = (query.finish(cursor) for query, cursor in zip((main, history, assigned), sent,
                                                                                   strict=True))
    if not rows or rows[0][0] is not False:
        return CallerRead(client_id, False, None, None)
    values = dict(zip(main.columns, rows[0], strict=True))
    if values["tombstone_reason"] is not None:
        return CallerRead(client_id, True, None, _gone(values["tombstone_reason"], values["tombstone_at"]))
    if values["id"] is None:
        return CallerRead(client_id, True, None, NotFound("No such referral."))
    steps = tuple(StatusStep(*step) for step in step_rows)
    agencies = [agency for (agency,) in agency_rows]
    return CallerRead(client_id, True, _from_values(values, steps, agencies), None)


def load(session: Session, referral_id: str) -> ReferralSnapshot:
    """The referral, or 410 if it was purged or erased (even while its rows await deletion), or 404."""
    conn = session.connection()
    params = {"referral_id": referral_id}
    row = conn.execute(_MAIN, params).first()
    if row is None or row.tombstone_reason is not None:
        _refuse(conn, row, params)
    history = tuple(StatusStep(*step) for step in conn.execute(_HISTORY, params))
    assigned = list(conn.execute(_ASSIGNED, params).scalars())
    return _snapshot(row, history, assigned)


def load_where(session: Session, where: Any, order_by: Sequence[Any], limit: int) -> list[ReferralSnapshot]:
    """The referrals a list query selects (its WHERE, order and limit), in three statements."""
    conn = session.connection()
    query = (
        select(*_MAIN.selected_columns[: len(_REFERRAL_FIELDS) + len(_SUBJECT_FIELDS)])
        .select_from(_referrals.join(_subjects, _subjects.c.id == _referrals.c.subject_id))
        .where(where)
        .order_by(*order_by)
        .limit(limit)
    )
    rows = conn.execute(query).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    steps: dict[str, list[StatusStep]] = {i: [] for i in ids}
    for referral_id, *step in conn.execute(
        select(_history.c.referral_id, *(_history.c[name] for name in _STEP_FIELDS))
        .where(_history.c.referral_id.in_(ids))
        .order_by(_history.c.id)
    ):
        steps[referral_id].append(StatusStep(*step))
    assigned: dict[str, list[str]] = {i: [] for i in ids}
    for referral_id, agency_id in conn.execute(
        select(_assignments.c.referral_id, _assignments.c.agency_id)
        .where(_assignments.c.referral_id.in_(ids))
        .order_by(_assignments.c.agency_id)
    ):
        assigned[referral_id].append(agency_id)
    return [_snapshot(row, steps[row.id], assigned[row.id]) for row in rows]


def _refuse(conn: Connection, row: Any, params: dict[str, str]) -> None:
    gone = (row.tombstone_reason, row.tombstone_at) if row is not None else conn.execute(_TOMBSTONE, params).first()
    if gone is None:
        raise NotFound("No such referral.")
    raise _gone(*gone)


def _gone(reason: str, at: datetime) -> Gone:
    past = tombstones.PAST[reason]
    return Gone(f"This referral was {past} on {at.date().isoformat()}.", slug=f"referral-{past}")


def _snapshot(row: Any, history: Sequence[StatusStep], assigned: list[str]) -> ReferralSnapshot:
    return _from_values(row._mapping, history, assigned)


def _from_values(values: Any, history: Sequence[StatusStep], assigned: list[str]) -> ReferralSnapshot:
    subject = SubjectSnapshot(*(values[f"subject__{name}"] for name in _SUBJECT_FIELDS))
    columns: dict[str, Any] = {name: values[name] for name in _REFERRAL_FIELDS}
    return ReferralSnapshot(**columns, subject=subject, history=tuple(history), assigned_agencies=assigned)


AnyReferral = Referral | ReferralSnapshot
"""What projection and decisions accept: a loaded ORM referral or a snapshot."""
AnySubject = Subject | SubjectSnapshot
