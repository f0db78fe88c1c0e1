"""Auditor queries: filtered pages of entries with decrypted details, subject-access reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from app.audit import store
from app.audit.events import DISCLOSURE_TYPES
from app.audit.leaf import ROW_COLUMNS, clear_text, details_aad, from_us, to_us
from app.audit.sealing import AuditSealer
from app.crypto.aead import DecryptionError

entries = store.entries
_COLUMNS = [*store.ROW_SELECT, entries.c.leaf_hash]


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Clear-column filters; ``subject_id`` matches its blind index under every key."""

    subject_id: str | None = None
    actor_agency: str | None = None
    recipient_agency: str | None = None
    purpose: str | None = None
    event_type: str | None = None
    decision: str | None = None
    agreement_id: str | None = None
    rule_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def described(self) -> dict[str, Any]:
        """The filters that were set, for the audit_query entry (never the subject id)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and f.name != "subject_id":
                out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        if self.subject_id is not None:
            out["subject"] = True
        return out


@dataclass(frozen=True, slots=True)
class EntryView:
    """One entry as an auditor sees it."""

    seq: int
    time: datetime
    event_type: str
    actor_agency: str | None
    recipient_agency: str | None
    purpose: str | None
    decision: str | None
    agreement_id: str | None
    rule_id: str | None
    subject_index: str | None
    subject_index_key_id: str | None
    key_id: str
    leaf_hash: bytes
    details: dict[str, Any] | None  # None when they cannot be opened (tampered, key gone)


_EQUALITY = (
    "actor_agency",
    "recipient_agency",
    "purpose",
    "event_type",
    "decision",
    "agreement_id",
    "rule_id",
)


def _conditions(sealer: AuditSealer, f: EntryFilter) -> list[Any]:
    conditions: list[Any] = [
        entries.c[name] == getattr(f, name) for name in _EQUALITY if getattr(f, name) is not None
    ]
    if f.subject_id is not None:
        conditions.append(entries.c.subject_index.in_(sealer.subject_indexes(f.subject_id)))
    if f.since is not None:
        conditions.append(entries.c.time_us >= to_us(f.since))
    if f.until is not None:
        conditions.append(entries.c.time_us < to_us(f.until))
    return conditions


def view(sealer: AuditSealer, row: Sequence[Any]) -> EntryView:
    """Decrypt one selected row (ROW_COLUMNS + leaf_hash) into its view."""
    values = dict(zip((*ROW_COLUMNS, "leaf_hash"), row, strict=True))
    clear = [values[name] for name in ROW_COLUMNS[2:12]]
    aad = details_aad(values["seq"], values["time_us"], clear_text(clear))
    try:
        details: dict[str, Any] | None = sealer.open(
            values["key_id"], bytes(values["details"]), aad
        )
    except DecryptionError:
        details = None
    return EntryView(
        seq=values["seq"],
        time=from_us(values["time_us"]),
        event_type=values["event_type"],
        actor_agency=values["actor_agency"],
        recipient_agency=values["recipient_agency"],
        purpose=values["purpose"],
        decision=values["decision"],
        agreement_id=values["agreement_id"],
        rule_id=values["rule_id"],
        subject_index=values["subject_index"],
        subject_index_key_id=values["subject_index_key_id"],
        key_id=values["key_id"],
        leaf_hash=bytes(values["leaf_hash"]),
        details=details,
    )


def search(
    conn: Connection,
    sealer: AuditSealer,
    f: EntryFilter,
    *,
    after: int | None,
    limit: int,
    descending: bool = False,
) -> list[EntryView]:
    """Up to ``limit`` matching entries after the cursor position, in log order (or reverse)."""
    query = select(*_COLUMNS).where(*_conditions(sealer, f))
    if after is not None:
        query = query.where(entries.c.seq < after if descending else entries.c.seq > after)
    order = entries.c.seq.desc() if descending else entries.c.seq
    rows = conn.execute(query.order_by(order).limit(limit))
    return [view(sealer, row) for row in rows]


def _disclosure_query(sealer: AuditSealer, subject_id: str) -> Any:
    return select(*_COLUMNS).where(
        entries.c.subject_index.in_(sealer.subject_indexes(subject_id)),
        entries.c.event_type.in_(sorted(DISCLOSURE_TYPES)),
        or_(entries.c.decision.is_(None), entries.c.decision != "deny"),
    )


@dataclass
class Recipient:
    """Everything one recipient received about the subject, summarised."""

    agency: str
    disclosures: int
    first: datetime
    last: datetime
    purposes: set[str]
    legal_bases: set[str]
    retention: set[str]
    agreements: set[str]
    fields: set[str]


def disclosures(
    conn: Connection, sealer: AuditSealer, subject_id: str, *, after: int | None, limit: int
) -> list[EntryView]:
    """A page of the disclosures of the subject's data, oldest first."""
    query = _disclosure_query(sealer, subject_id)
    if after is not None:
        query = query.where(entries.c.seq > after)
    rows = conn.execute(query.order_by(entries.c.seq).limit(limit))
    return [view(sealer, row) for row in rows]


def recipients(conn: Connection, sealer: AuditSealer, subject_id: str) -> list[Recipient]:
    """Every recipient of the subject's data (GDPR Art. 15(1)(c)), by agency."""
    found: dict[str, Recipient] = {}
    for row in conn.execute(_disclosure_query(sealer, subject_id).order_by(entries.c.seq)):
        entry = view(sealer, row)
        agency = entry.recipient_agency or "(unnamed recipient)"
        r = found.get(agency)
        if r is None:
            r = found[agency] = Recipient(
                agency, 0, entry.time, entry.time, set(), set(), set(), set(), set()
            )
        r.disclosures += 1
        r.last = entry.time
        details = entry.details or {}
        _add(r.purposes, entry.purpose)
        _add(r.agreements, entry.agreement_id)
        _add(r.legal_bases, details.get("legal_basis"))
        _add(r.retention, details.get("retention"))
        for name in details.get("fields") or ():
            _add(r.fields, name)
    return sorted(found.values(), key=lambda r: r.agency)


def _add(bucket: set[str], value: object) -> None:
    if isinstance(value, str) and value:
        bucket.add(value)
