"""Which records a caller could be granted at all: the scope a list query must search."""

from dataclasses import dataclass
from datetime import date

from app.policy.decision import Caller
from app.policy.matching import agreement_failure, audience_failure
from app.policy.model import Audience, Conditions
from app.policy.policy_set import PolicySet
from app.policy.vocabulary import RELATIONS, RecordKind


@dataclass(frozen=True, slots=True)
class Candidates:
    """What one grant needs of a record: one of these relations to it (None: any), and its conditions."""

    relations: frozenset[str] | None
    when: Conditions


@dataclass(frozen=True, slots=True)
class Reach:
    relation_free: bool  # some rule grants without a relation: every record is a candidate
    relations: frozenset[str]  # otherwise, only records the caller holds one of these to
    # Every grant needs its record to meet one of these (OR of ANDs); None: some grant needs
    # nothing.  A prefilter only: the decision on each record still decides.
    conditions: tuple[Candidates, ...] | None = None


def reach(policy_set: PolicySet, caller: Caller, purpose: str, kind: RecordKind, now: date) -> Reach:
    relation_free = False
    relations: set[str] = set()
    conditions: list[Candidates] | None = []
    for agreement in policy_set:
        if agreement_failure(agreement, caller, now) is not None:
            continue
        for permit in agreement.permits:
            if permit.view.kind != kind or purpose not in permit.purposes:
                continue
            audience = permit.audience
            if audience.is_empty:
                continue
            loose = Audience(roles=audience.roles, sectors=audience.sectors, agencies=audience.agencies)
            if not loose.is_empty and audience_failure(loose, caller, empty_matches=True) is not None:
                continue
            if audience.relations is None:
                relation_free = True
            else:
                relations |= audience.relations & RELATIONS
            if conditions is not None:
                needed = None if audience.relations is None else audience.relations & RELATIONS
                conditions = conditions + [Candidates(needed, permit.when)] if permit.when or needed else None
    return Reach(relation_free, frozenset(relations), None if conditions is None else tuple(conditions))
