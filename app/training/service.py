"""Recording completions and reporting each person's standing against what agreements require.

Who records: a network coordinator (the `coordinator` role at a network's coordinator agency),
for a person of one of that network's member agencies. Who reads a person's records: the person,
and those coordinators. A person's agency is the console person's, else the API client's of that
id; a person the service does not know (an API client's `act`) is recorded under the agency the
coordinator names.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access
from app.agencies.models import ApiClient
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
from app.console.models import Person
from app.errors import BadRequest, Forbidden, NotFound
from app.policy.policy_set import PolicySet
from app.training.held import CourseState, acting_person, completions, latest, state_of
from app.training.models import TrainingRecord

Source = Literal["console", "api", "import"]


@dataclass(frozen=True, slots=True)
class CourseStatus:
    course_id: str
    state: CourseState
    completed_on: date | None
    expires_on: date | None


def required_for(policies: PolicySet, agency_id: str) -> frozenset[str]:
    """The courses the agreements of the agency's networks require of their recipients."""
    courses: set[str] = set()
    for network_id in policies.networks_of(agency_id):
        network = policies.network(network_id)
        for agreement_id in network.agreements if network else ():
            agreement = policies.get(agreement_id)
            if agreement is not None and agency_id in agreement.party_set:
                for permit in agreement.all_permits:
                    courses |= permit.requires_training
    return frozenset(courses)


def status(
    session: Session, policies: PolicySet, person_id: str, agency_id: str, today: date
) -> list[CourseStatus]:
    """Each course required of the person's agency: ok, expiring (30 days), expired or missing."""
    counted = latest(completions(session, person_id, agency_id))
    out = []
    for course in sorted(required_for(policies, agency_id)):
        one = counted.get(course)
        out.append(CourseStatus(course, state_of(one, today), one.completed_on if one else None,
                                one.expires_on if one else None))
    return out


def agency_of(session: Session, person_id: str) -> str | None:
    """The person's agency: a console person's, else an API client's of that id."""
    found = session.scalar(select(Person.agency_id).where(Person.id == person_id))
    return found if found is not None else session.scalar(select(ApiClient.agency_id).where(ApiClient.id == person_id))


def coordinated(policies: PolicySet, agency_id: str, roles: frozenset[str], today: date) -> frozenset[str]:
    """The member agencies of the networks this agency coordinates under an agreement in force, for one
    holding the coordinator role: a coordinator whose agreement lapsed or awaits signatures records nothing."""
    if "coordinator" not in roles:
        return frozenset()
    return frozenset(member for network_id, network in policies.networks.items()
                     if network.coordinator == agency_id
                     and access.in_force_party(policies, agency_id, network_id, today)
                     for member in network.members)


def coordinates(policies: PolicySet, principal: Principal, agency_id: str, today: date) -> bool:
    """Whether the caller coordinates, under an agreement in force, a network the agency is a member of."""
    return agency_id in coordinated(policies, principal.agency_id, principal.roles, today)


def people_coordinated(
    session: Session, policies: PolicySet, agency_id: str, roles: frozenset[str], today: date
) -> list[Person]:
    """The console people of the member agencies of the networks a coordinator coordinates."""
    agencies = coordinated(policies, agency_id, roles, today)
    return list(session.scalars(select(Person).where(Person.agency_id.in_(agencies)).order_by(Person.id)))


def person_agency(session: Session, person_id: str, named: str | None) -> str:
    """The agency a completion is recorded under (see the module docstring)."""
    known = agency_of(session, person_id)
    if known is not None and named is not None and named != known:
        raise BadRequest(f"Person {person_id!r} is of agency {known!r}, not {named!r}.", slug="agency-mismatch")
    agency = known or named
    if agency is None:
        raise BadRequest(f"Person {person_id!r} is unknown here: name their agency in agency_id.",
                           slug="agency-required")
    return agency


def check_dates(completed_on: date, expires_on: date | None, today: date) -> str | None:
    """Why the dates cannot be a completion, or None."""
    if completed_on > today:
        return f"completed_on {completed_on} is in the future"
    if expires_on is not None and expires_on <= completed_on:
        return f"expires_on {expires_on} is not after completed_on {completed_on}"
    return None


def record(
    session: Session, policies: PolicySet, principal: Principal, *, person_id: str, agency_id: str | None,
    course_id: str, completed_on: date, expires_on: date | None, source: Source, now: datetime,
) -> tuple[TrainingRecord, str]:
    """Record a completion (the caller must coordinate a network of the person's agency)."""
    agency = person_agency(session, person_id, agency_id)
    if not coordinates(policies, principal, agency, now.date()):
        raise Forbidden("Training is recorded by a coordinator of a network the person's agency is a member of,"
                        " under an agreement in force.",
                        slug="training-not-coordinator")
    problem = check_dates(completed_on, expires_on, now.date())
    if problem:
        raise BadRequest(f"{problem}.", slug="training-dates")
    row = add(session, person_id=person_id, agency_id=agency, course_id=course_id,
              completed_on=completed_on, expires_on=expires_on,
              recorded_by=acting_person(principal.client_id, principal.act), source=source, now=now)
    return row, agency


def add(
    session: Session, *, person_id: str, agency_id: str, course_id: str, completed_on: date, expires_on: date | None,
    recorded_by: str, source: Source, now: datetime,
) -> TrainingRecord:
    row = TrainingRecord(
        id="trn_" + secrets.token_urlsafe(12), person_id=person_id, agency_id=agency_id, course_id=course_id,
        completed_on=completed_on, expires_on=expires_on, recorded_by=recorded_by, recorded_at=now, source=source,
    )
    session.add(row)
    session.flush()
    return row


def records_of(
    session: Session, policies: PolicySet, principal: Principal, person_id: str, today: date
) -> list[TrainingRecord]:
    """A person's records, newest completion first: for the person or their network's coordinator.

    A person the service does not know (no console person or client of that id) has no agency to
    coordinate: only they find their records.
    """
    if acting_person(principal.client_id, principal.act) != person_id:
        agency = agency_of(session, person_id)
        if agency is None:
            raise NotFound(f"No person {person_id!r} known here.")
        if not coordinates(policies, principal, agency, today):
            raise Forbidden("A person's training records are for the person and their network's coordinator.",
                            slug="training-not-coordinator")
    rows = session.scalars(
        select(TrainingRecord).where(TrainingRecord.person_id == person_id)
        .order_by(TrainingRecord.completed_on.desc(), TrainingRecord.recorded_at.desc())
    )
    return list(rows)


def recorded_event(
    principal: Principal | None, row: TrainingRecord, agency_id: str, request_id: str | None
) -> AuditEvent:
    """The log entry of a recorded completion (ids and dates only)."""
    details: dict[str, Any] = {
        "record_ids": {"training_record_id": row.id}, "person_id": row.person_id, "course_id": row.course_id,
        "completed_on": row.completed_on.isoformat(),
        "expires_on": row.expires_on.isoformat() if row.expires_on else None, "recorded_by": row.recorded_by,
        "source": row.source, "request_id": request_id,
        "client_id": principal.client_id if principal else None,
    }
    return AuditEvent(
        event_type=EventType.training_recorded.value,
        actor_agency=principal.agency_id if principal else None,
        recipient_agency=agency_id,
        purpose=None,
        decision=None,
        agreement_id=None,
        rule_id=None,
        subject_id=None,
        details={k: v for k, v in details.items() if v is not None},
    )
