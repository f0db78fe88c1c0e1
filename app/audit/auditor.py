"""What auditors do with the log; each read of its contents is itself logged (audit_query)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.audit import proofs, queries, store
from app.audit.events import AuditEvent, EventType
from app.audit.queries import EntryFilter, EntryView, Recipient
from app.audit.service import AuditLog


@dataclass(frozen=True, slots=True)
class Asker:
    """Who reads the log: an API client (for an agency, maybe on behalf of a person) or the CLI."""

    agency_id: str | None
    client_id: str
    on_behalf_of: str | None = None
    request_id: str | None = None


CLI_ASKER = Asker(agency_id=None, client_id="casebridge-cli")


def _record(
    session: Session,
    log: AuditLog,
    asker: Asker,
    query: str,
    *,
    subject_id: str | None = None,
    **facts: Any,
) -> None:
    details: dict[str, Any] = {"query": query, "client_id": asker.client_id, **facts}
    if asker.on_behalf_of:
        details["on_behalf_of"] = asker.on_behalf_of
    if asker.request_id:
        details["request_id"] = asker.request_id
    event = AuditEvent(
        event_type=EventType.audit_query,
        actor_agency=asker.agency_id,
        recipient_agency=asker.agency_id,
        purpose="audit",
        decision="permit",
        agreement_id=None,
        rule_id=None,
        subject_id=subject_id,
        details=details,
    )
    log.append(session, event)


def list_entries(
    session: Session,
    log: AuditLog,
    asker: Asker,
    f: EntryFilter,
    *,
    after: int | None,
    limit: int,
    descending: bool,
) -> list[EntryView]:
    """Up to limit + 1 matching entries (the extra one tells whether there is a next page)."""
    found = queries.search(
        session.connection(), log.sealer, f, after=after, limit=limit + 1, descending=descending
    )
    _record(
        session,
        log,
        asker,
        "entries",
        subject_id=f.subject_id,
        filters=f.described(),
        record_ids=[f"audit:{e.seq}" for e in found[:limit]],
    )
    return found


def subject_report(
    session: Session, log: AuditLog, subject_id: str, *, after: int | None, limit: int
) -> tuple[list[Recipient], list[EntryView]]:
    """Every recipient of the subject's data, and a page (limit + 1) of the disclosures.

    The report is case data about the person: its caller logs it through the door, with the
    purpose stated (app/audit/subject_access.py), before it leaves.
    """
    conn = session.connection()
    recipients = queries.recipients(conn, log.sealer, subject_id)
    items = queries.disclosures(conn, log.sealer, subject_id, after=after, limit=limit + 1)
    return recipients, items


def read_leaf(session: Session, log: AuditLog, asker: Asker, seq: int) -> bytes:
    """The leaf bytes of one entry (its clear columns and ciphertext)."""
    leaf = proofs.leaf(session.connection(), seq)
    _record(session, log, asker, "leaf", record_ids=[f"audit:{seq}"])
    return leaf


def start_export(
    session: Session, log: AuditLog, asker: Asker, *, format: str, decrypt: bool
) -> int:
    """Log the export and return the tree size it covers (entries 0..size-1)."""
    size = store.read_head(session.connection()).size
    _record(session, log, asker, "export", format=format, decrypt=decrypt, tree_size=size)
    return size
