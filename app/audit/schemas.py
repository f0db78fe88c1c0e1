"""Response shapes of the audit API."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.audit.queries import EntryView, Recipient


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class LeafOut(BaseModel):
    leaf_index: int
    leaf: str = Field(description="Base64 of the exact leaf bytes (format v1, see README).")
    leaf_hash: str = Field(description="Base64 of SHA-256(0x00 || leaf).")


class ProofOut(BaseModel):
    hashes: list[str] = Field(description="Base64 hashes, RFC 9162 order.")


class InclusionProofOut(ProofOut):
    leaf_index: int
    tree_size: int


class ConsistencyProofOut(ProofOut):
    first: int
    second: int


class EntryOut(BaseModel):
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
    leaf_hash: str
    details: dict[str, Any] | None = Field(
        description="Decrypted details; null when they cannot be opened (tampered, key gone)."
    )

    @classmethod
    def of(cls, entry: EntryView) -> EntryOut:
        return cls(
            seq=entry.seq,
            time=entry.time,
            event_type=entry.event_type,
            actor_agency=entry.actor_agency,
            recipient_agency=entry.recipient_agency,
            purpose=entry.purpose,
            decision=entry.decision,
            agreement_id=entry.agreement_id,
            rule_id=entry.rule_id,
            subject_index=entry.subject_index,
            subject_index_key_id=entry.subject_index_key_id,
            key_id=entry.key_id,
            leaf_hash=b64(entry.leaf_hash),
            details=entry.details,
        )


class EntryPage(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None


class DisclosureOut(BaseModel):
    seq: int
    time: datetime
    event_type: str
    recipient_agency: str | None
    actor_agency: str | None
    purpose: str | None
    legal_basis: str | None
    retention: str | None
    agreement_id: str | None
    rule_id: str | None
    fields: list[str]

    @classmethod
    def of(cls, entry: EntryView) -> DisclosureOut:
        details = entry.details or {}
        fields = details.get("fields")
        return cls(
            seq=entry.seq,
            time=entry.time,
            event_type=entry.event_type,
            recipient_agency=entry.recipient_agency,
            actor_agency=entry.actor_agency,
            purpose=entry.purpose,
            legal_basis=_text(details.get("legal_basis")),
            retention=_text(details.get("retention")),
            agreement_id=entry.agreement_id,
            rule_id=entry.rule_id,
            fields=[str(f) for f in fields] if isinstance(fields, list) else [],
        )


class RecipientOut(BaseModel):
    agency: str
    disclosures: int
    first: datetime
    last: datetime
    purposes: list[str]
    legal_bases: list[str]
    retention: list[str]
    agreements: list[str]
    fields: list[str]

    @classmethod
    def of(cls, r: Recipient) -> RecipientOut:
        return cls(
            agency=r.agency,
            disclosures=r.disclosures,
            first=r.first,
            last=r.last,
            purposes=sorted(r.purposes),
            legal_bases=sorted(r.legal_bases),
            retention=sorted(r.retention),
            agreements=sorted(r.agreements),
            fields=sorted(r.fields),
        )


class SubjectAccessReport(BaseModel):
    """GDPR Art. 15(1)(c): every recipient of the subject's data, then a page of disclosures."""

    subject_id: str
    recipients: list[RecipientOut]
    items: list[DisclosureOut]
    next_cursor: str | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
