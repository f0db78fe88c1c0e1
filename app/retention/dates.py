"""When each referral, its notes and its subject may be let go, from the agreements in force.

The rule (also in README "Retention"):

- A referral is kept as long as its *controller-side* readers must keep it: the longest
  retention among referral permits that grant it to its owner (a rule for the relation
  `owner` or `referrer`, whose agency/sector constraints admit the referring agency) or to
  a coordinator (a rule naming the role `coordinator` with no relation), in the agreements in
  force that name the referring agency as a party (when none is in force, e.g. past its
  review date, the loaded ones that name it: they still govern what was shared under them).
  A rule's `when` conditions on the record (consent, risk level) must hold; its status
  condition is ignored, because the anchor already says when the clock starts.
- `P6Y after closed` counts from the referral's end: the last move into a terminal status
  (closed, declined, withdrawn, transferred).  A plain duration (`P90D`) counts from the
  referral's last change.
- A referral that has not ended is kept at most `max_open_retention` (default P10Y) from its
  creation; so is one no agreement speaks for (no loaded agreement names its agency, or none
  has such a rule): nothing is purged early because a rule is missing.
- Notes carry their referral's date; a subject carries the latest date of its referrals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, exists, func, null, select, update
from sqlalchemy.orm import Session

from app.agencies.models import Agency
from app.notes.models import Note
from app.policy.duration import Duration, Retention, parse_duration
from app.policy.model import Agreement, Permit
from app.policy.policy_set import PolicySet
from app.referrals.lifecycle import TERMINAL
from app.referrals.models import Referral
from app.subjects.models import Subject

CONTROLLER_ROLE = "coordinator"
OWNER_RELATIONS = frozenset({"owner", "referrer"})


@dataclass(frozen=True, slots=True)
class RetentionRules:
    """What retention needs to know: the agreements in force and the cap for open cases."""

    policies: PolicySet
    max_open: Duration

    @classmethod
    def of(cls, policies: PolicySet, max_open_retention: str) -> RetentionRules:
        return cls(policies, parse_duration(max_open_retention))


def _admits_owner(permit: Permit, agency_id: str, sector: str) -> bool:
    audience = permit.audience
    if audience.relations is None or audience.relations.isdisjoint(OWNER_RELATIONS):
        return False
    if audience.agencies is not None and agency_id not in audience.agencies:
        return False
    return audience.sectors is None or sector in audience.sectors


def _admits_coordinator(permit: Permit) -> bool:
    audience = permit.audience
    return (
        audience.relations is None
        and audience.roles is not None
        and CONTROLLER_ROLE in audience.roles
    )


def _conditions_hold(permit: Permit, attributes: dict[str, str]) -> bool:
    return all(name == "status" or attributes.get(name) in allowed for name, allowed in permit.when)


def obligations(
    agreements: Iterable[Agreement], agency_id: str, sector: str, attributes: dict[str, str]
) -> list[Retention]:
    """The retentions of referral permits that grant the record to its owner or a coordinator."""
    found: list[Retention] = []
    for agreement in agreements:
        if agency_id not in agreement.party_set:
            continue
        for permit in agreement.permits:
            if permit.view.kind != "referral" or not _conditions_hold(permit, attributes):
                continue
            if _admits_owner(permit, agency_id, sector) or _admits_coordinator(permit):
                found.append(permit.retention)
    return found


def ended_at(referral: Referral) -> datetime | None:
    """When the referral last moved into a terminal status, if it is in one now."""
    if referral.status not in {s.value for s in TERMINAL}:
        return None
    moves = [h.at for h in referral.history if h.to_status == referral.status]
    return max(moves) if moves else referral.updated_at


def referral_retain_until(
    rules: RetentionRules, referral: Referral, sector: str, now: datetime
) -> datetime:
    """The pure rule of this module's docstring."""
    # Every permit also holds only for records of its agreement's networks.
    attributes = {"consent": referral.consent_status, "risk_level": referral.risk_level,
                  "network": referral.network_id}
    naming = [a for a in rules.policies if referral.referring_agency in a.party_set]
    # A lapsed agreement (past its review date) still governs what was shared under it.
    in_force = [a for a in naming if a.in_force(now.date())] or naming
    retentions = obligations(in_force, referral.referring_agency, sector, attributes)
    cap = rules.max_open.add_to(referral.created_at)
    ended = ended_at(referral)
    if not retentions:
        return cap if ended is None else max(cap, ended)
    candidates = []
    for retention in retentions:
        if retention.anchor == "closed":
            candidates.append(cap if ended is None else retention.duration.add_to(ended))
        else:
            candidates.append(retention.duration.add_to(referral.updated_at))
    latest = max(candidates)
    return min(latest, cap) if ended is None else latest


def sector_of(session: Session, agency_id: str) -> str:
    return session.scalar(select(Agency.sector).where(Agency.id == agency_id)) or ""


def apply(session: Session, rules: RetentionRules, referral: Referral, now: datetime) -> datetime:
    """Recompute a referral's date, carry it to its notes, and refresh its subject's."""
    until = referral_retain_until(rules, referral, sector_of(session, referral.referring_agency), now)
    referral.retain_until = until
    session.flush()
    session.execute(update(Note).where(Note.referral_id == referral.id).values(retain_until=until))
    refresh_subject(session, referral.subject_id)
    return until


def refresh_subject(session: Session, subject_id: str) -> None:
    """A subject is kept as long as its longest-kept referral (unknown while any is unknown): one statement."""
    of_subject = Referral.subject_id == subject_id
    unknown = exists().where(of_subject, Referral.retain_until.is_(None))
    latest = select(func.max(Referral.retain_until)).where(of_subject).scalar_subquery()
    session.execute(
        update(Subject).where(Subject.id == subject_id).values(retain_until=case((unknown, null()), else_=latest))
    )
