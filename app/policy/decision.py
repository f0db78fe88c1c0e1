"""Who asks, about what, and the answer: Caller, Record and Decision."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.policy.duration import Duration, Retention
from app.policy.vocabulary import RecordKind

ReasonCode = Literal[
    "permitted",
    "no_agreement",
    "purpose_not_declared",
    "unknown_view",
    "denied_by_rule",
    "no_rule",
    "training_required",
    "agreement_expired",
    "agreement_not_yet_effective",
]


@dataclass(frozen=True, slots=True)
class Caller:
    """An API client acting for an agency; relations are to the record asked about."""

    client_id: str
    agency_id: str
    sector: str
    roles: frozenset[str]
    relations: frozenset[str] = frozenset()
    # The courses the acting person holds and that have not expired (training records).
    trained: frozenset[str] = frozenset()


AttributeValue = str | frozenset[str]
"""One value, or (`concerns`) the set of them: a condition holds when any of the set is allowed."""


def flag_value(value: bool) -> str:
    """A boolean record attribute (`invited`) as the value its conditions compare."""
    return "true" if value else "false"


@dataclass(frozen=True, slots=True)
class Record:
    """The record asked about, reduced to the attributes rules look at."""

    kind: RecordKind
    attributes: Mapping[str, AttributeValue]


def described_record(kind: RecordKind, attributes: Mapping[str, AttributeValue]) -> Record:
    """A record described by hand (explain, policy tests), as a read would see it.

    Every read outside a meeting's agenda item is `invited: false`, so a described referral or
    note is too unless it says otherwise; statistics are never read through a meeting.
    """
    if kind == "statistics":
        return Record(kind, attributes)
    return Record(kind, {"invited": flag_value(False), **attributes})


@dataclass(frozen=True, slots=True)
class Decision:
    """Permit or deny, with the agreement, rules and obligations that decided it."""

    permit: bool
    reason: str
    reason_code: ReasonCode
    view: str | None = None
    fields: frozenset[str] = frozenset()
    agreement_id: str | None = None
    agreement_version: int | None = None
    agreement_hash: str | None = None
    rule_ids: tuple[str, ...] = ()
    legal_basis: str | None = None
    special_category_condition: str | None = None
    retention: Retention | None = None
    min_cell: int | None = None
    emergency_window: Duration | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "permit": self.permit,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "view": self.view,
            "fields": sorted(self.fields),
            "agreement_id": self.agreement_id,
            "agreement_version": self.agreement_version,
            "agreement_hash": self.agreement_hash,
            "rule_ids": list(self.rule_ids),
            "legal_basis": self.legal_basis,
            "special_category_condition": self.special_category_condition,
            "retention": None if self.retention is None else str(self.retention),
            "min_cell": self.min_cell,
            "emergency_window": None
            if self.emergency_window is None
            else self.emergency_window.iso(),
        }
