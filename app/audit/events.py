"""What a caller records: one AuditEvent per disclosure, access, denial, change or key event."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final


class EventType(StrEnum):
    disclosure = "disclosure"  # data crossed an agency boundary
    access = "access"  # an agency read its own records
    denial = "denial"  # a request was refused (reason and denying rules in details)
    create = "create"
    change = "change"
    transition = "transition"
    agreement_load = "agreement_load"
    key_event = "key_event"
    audit_query = "audit_query"  # an auditor (or subject-access report) read the log itself
    purge = "purge"
    erasure = "erasure"
    emergency_grant = "emergency_grant"
    emergency_read = "emergency_read"
    withdrawal_notice = "withdrawal_notice"
    aggregate_disclosure = "aggregate_disclosure"
    link = "link"  # a new referral joined a known person's subject: its referrer learns the subject id
    sign_in = "sign_in"  # a person signed in to the console (permit) or was refused (deny, reason in details)
    agreement_signed = "agreement_signed"  # a party signed an agreement version's text (version, hash, person)
    agreement_activated = "agreement_activated"  # the last signature put a version in force
    conduct_accepted = "conduct_accepted"  # a person accepted a network's code of conduct (version, hash)
    training_recorded = "training_recorded"  # a course completion was recorded for a person (ids and dates)


DISCLOSURE_TYPES: Final = frozenset(
    {EventType.disclosure, EventType.emergency_read, EventType.aggregate_disclosure, EventType.link}
)
"""Event types that mean data left for another agency (the subject-access report's rows)."""

DECISIONS: Final = frozenset({"permit", "deny"})
SUBJECT_DOMAIN: Final = "audit-subject"
"""Blind-index domain of audit subjects: BlindIndex.digest(SUBJECT_DOMAIN, subject_id)."""

_LIMITS: Final = {
    "actor_agency": 64,
    "recipient_agency": 64,
    "purpose": 64,
    "agreement_id": 100,
    "rule_id": 100,
}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_MAX_DETAILS: Final = 64 * 1024


class InvalidEvent(ValueError):
    """An event that cannot be recorded as given (a programming error in the caller)."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened. Clear fields are queryable; ``details`` are encrypted.

    ``subject_id`` is turned into a keyed blind index and never stored in clear.  ``details``
    names record ids and field names, never field values: record_ids, fields, justification,
    on_behalf_of, rule_ids, request_id, client_id, reason, legal_basis, retention,
    agreement_version, agreement_hash ...
    """

    event_type: str
    actor_agency: str | None
    recipient_agency: str | None
    purpose: str | None
    decision: str | None
    agreement_id: str | None
    rule_id: str | None
    subject_id: str | None
    details: Mapping[str, Any] = field(default_factory=dict)


def check_event(event: AuditEvent) -> None:
    """Refuse what the log cannot hold: unknown types, control characters, oversized values."""
    try:
        EventType(event.event_type)
    except ValueError:
        raise InvalidEvent(f"unknown event type {event.event_type!r}") from None
    if event.decision is not None and event.decision not in DECISIONS:
        raise InvalidEvent(f"decision must be 'permit', 'deny' or None, not {event.decision!r}")
    for name, limit in _LIMITS.items():
        value = getattr(event, name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit or _UNSAFE.search(value):
            raise InvalidEvent(f"{name} must be a string of at most {limit} printable characters")
    if event.subject_id is not None and (
        not isinstance(event.subject_id, str) or not event.subject_id
    ):
        raise InvalidEvent("subject_id must be a non-empty string or None")
    if not isinstance(event.details, Mapping):
        raise InvalidEvent("details must be a mapping")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"details hold a {type(value).__name__}, which is not JSON")


def encode_details(details: Mapping[str, Any]) -> bytes:
    """Canonical JSON of the details (sorted keys, compact)."""
    try:
        text = json.dumps(
            dict(details),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=_json_default,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(str(exc)) from None
    data = text.encode("utf-8")
    if len(data) > _MAX_DETAILS:
        raise InvalidEvent(f"details exceed {_MAX_DETAILS} bytes")
    return data
