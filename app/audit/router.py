"""HTTP for the disclosure log: checkpoints, proofs, leaves, queries, exports, subject reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from app import access, disclose, door
from app.agencies.schemas import Role
from app.audit import auditor, checkpoints, export, proofs, subject_access
from app.audit.auditor import Asker
from app.audit.events import EventType
from app.audit.merkle import leaf_hash
from app.audit.queries import EntryFilter
from app.audit.schemas import (
    ConsistencyProofOut,
    DisclosureOut,
    EntryOut,
    EntryPage,
    InclusionProofOut,
    LeafOut,
    RecipientOut,
    SubjectAccessReport,
    b64,
)
from app.auth.principal import Principal, require_roles
from app.errors import BadRequest
from app.pagination import DEFAULT_LIMIT, ISO_TIMESTAMP, Cursor, Limit, decode_cursor, encode_cursor
from app.state import DbSession, State

router = APIRouter(tags=["audit"])
Auditor = Annotated[Principal, Depends(require_roles(Role.auditor))]
SubjectReader = Annotated[Principal, Depends(require_roles(Role.auditor, Role.coordinator))]
TEXT: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {}}}}
RANGE_ERRORS: dict[int | str, dict[str, Any]] = {400: {"description": "Range outside the log"}}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The disclosure log cannot be written; nothing was disclosed"}
}
# Query filters are checked here, before the query's own audit_query entry is built from them:
# an empty or malformed subject id is the caller's 422, never an entry the log refuses (503).
Agency = Annotated[str | None, Query(min_length=1, max_length=64)]
Code = Annotated[str | None, Query(min_length=1, max_length=100)]
SubjectId = Annotated[str | None, Query(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$",
                                        description="A subject id as the API returns it (`sub_...`).")]
PurposeFilter = Annotated[str | None, Query(min_length=1, max_length=64)]


def _asker(request: Request, principal: Principal) -> Asker:
    return Asker(
        agency_id=principal.agency_id,
        client_id=principal.client_id,
        on_behalf_of=principal.act,
        request_id=getattr(request.state, "request_id", None),
    )


def _after(cursor: str | None) -> int | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    seq = position.get("seq")
    if type(seq) is not int or seq < 0:
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor")
    return seq


def _utc(moment: datetime | None) -> datetime | None:
    """Times without a zone are read as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get(
    "/v1/audit/checkpoint",
    operation_id="get_audit_checkpoint",
    summary="Latest signed log checkpoint",
    response_class=PlainTextResponse,
    responses=TEXT,
)
def get_checkpoint(session: DbSession, state: State, _: Auditor) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint); a fresh one if the log grew."""
    stored = checkpoints.sign_if_grown(session.connection(), state.audit.signer)
    return PlainTextResponse(stored.note)


@router.get(
    "/v1/audit/verifier-key",
    operation_id="get_audit_verifier_keys",
    summary="Checkpoint verifier keys",
    response_class=PlainTextResponse,
    responses=TEXT,
)
def get_verifier_keys(state: State, _: Auditor) -> PlainTextResponse:
    """Every checkpoint key as `<name>+<key id hex>+<base64 key>`, one per line, active first."""
    return PlainTextResponse(checkpoints.verifier_lines(state.audit.signer.verifier_keys()))


@router.get(
    "/v1/audit/entries/{seq}/leaf",
    operation_id="get_audit_leaf",
    summary="One log entry's leaf",
    response_model=LeafOut,
    responses={404: {"description": "No such entry"}, **UNAVAILABLE},
)
def get_leaf(
    request: Request,
    session: DbSession,
    state: State,
    principal: Auditor,
    seq: Annotated[int, Path(ge=0)],
) -> LeafOut:
    """The exact leaf bytes of one entry, to check against an inclusion proof."""
    leaf = auditor.read_leaf(session, state.audit, _asker(request, principal), seq)
    return LeafOut(leaf_index=seq, leaf=b64(leaf), leaf_hash=b64(leaf_hash(leaf)))


@router.get(
    "/v1/audit/proofs/inclusion",
    operation_id="get_audit_inclusion_proof",
    summary="Inclusion proof of an entry",
    response_model=InclusionProofOut,
    responses=RANGE_ERRORS,
)
def get_inclusion_proof(
    session: DbSession,
    _: Auditor,
    leaf_index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int, Query(ge=1)],
) -> InclusionProofOut:
    """RFC 9162 inclusion proof of an entry in the tree of `tree_size` entries."""
    hashes = proofs.inclusion(session.connection(), leaf_index, tree_size)
    return InclusionProofOut(
        leaf_index=leaf_index, tree_size=tree_size, hashes=[b64(h) for h in hashes]
    )


@router.get(
    "/v1/audit/proofs/consistency",
    operation_id="get_audit_consistency_proof",
    summary="Consistency proof between tree sizes",
    response_model=ConsistencyProofOut,
    responses=RANGE_ERRORS,
)
def get_consistency_proof(
    session: DbSession,
    _: Auditor,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> ConsistencyProofOut:
    """RFC 9162 consistency proof: the tree of `second` entries extends that of `first`."""
    hashes = proofs.consistency(session.connection(), first, second)
    return ConsistencyProofOut(first=first, second=second, hashes=[b64(h) for h in hashes])


@router.get(
    "/v1/audit/entries",
    operation_id="list_audit_entries",
    summary="Search the disclosure log",
    response_model=EntryPage,
    responses=UNAVAILABLE,
)
def list_entries(
    request: Request,
    session: DbSession,
    state: State,
    principal: Auditor,
    subject_id: SubjectId = None,
    actor_agency: Agency = None,
    recipient_agency: Agency = None,
    purpose: PurposeFilter = None,
    event_type: EventType | None = None,
    decision: Literal["permit", "deny"] | None = None,
    agreement_id: Code = None,
    rule_id: Code = None,
    since: Annotated[datetime | None, Query(description="From this time (UTC if no zone)."), ISO_TIMESTAMP] = None,
    until: Annotated[datetime | None, Query(description="Before this time."), ISO_TIMESTAMP] = None,
    order: Literal["asc", "desc"] = "asc",
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> EntryPage:
    """Entries matching every filter, with their details decrypted; this query is logged."""
    f = EntryFilter(
        subject_id=subject_id,
        actor_agency=actor_agency,
        recipient_agency=recipient_agency,
        purpose=purpose,
        event_type=event_type.value if event_type else None,
        decision=decision,
        agreement_id=agreement_id,
        rule_id=rule_id,
        since=_utc(since),
        until=_utc(until),
    )
    found = auditor.list_entries(
        session,
        state.audit,
        _asker(request, principal),
        f,
        after=_after(cursor),
        limit=limit,
        descending=order == "desc",
    )
    items = [EntryOut.of(e) for e in found[:limit]]
    more = len(found) > limit
    return EntryPage(
        items=items, next_cursor=encode_cursor({"seq": items[-1].seq}) if more else None
    )


@router.get(
    "/v1/audit/export",
    operation_id="export_audit_log",
    summary="Export the disclosure log",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}, "application/fhir+json": {}}},
        **UNAVAILABLE,
    },
)
def export_log(
    request: Request,
    session: DbSession,
    state: State,
    principal: Auditor,
    format: Literal["jsonl", "fhir"] = "jsonl",
    decrypt: Annotated[
        bool,
        Query(description="Add decrypted details (JSON lines) or record ids and fields (FHIR)."),
    ] = False,
) -> StreamingResponse:
    """The whole log: JSON lines an offline verifier checks, or a FHIR R4 AuditEvent Bundle."""
    size = auditor.start_export(
        session, state.audit, _asker(request, principal), format=format, decrypt=decrypt
    )
    rows = export.iter_rows(state.sessions, size)
    sealer = state.audit.sealer
    headers = {"X-Tree-Size": str(size)}
    if format == "fhir":
        body = export.fhir_bundle(rows, sealer, state.audit.origin, decrypt=decrypt)
        headers["Content-Disposition"] = 'attachment; filename="audit-log.fhir.json"'
        return StreamingResponse(body, media_type="application/fhir+json", headers=headers)
    lines = export.jsonl_lines(rows, sealer if decrypt else None)
    headers["Content-Disposition"] = 'attachment; filename="audit-log.jsonl"'
    return StreamingResponse(lines, media_type="application/x-ndjson", headers=headers)


@router.get(
    "/v1/subjects/{subject_id}/disclosures",
    operation_id="get_subject_disclosures",
    summary="Subject-access report",
    openapi_extra={"x-purpose-required": True},
    response_model=SubjectAccessReport,
    responses={
        400: {"description": "X-Purpose missing, or not `subject_access`"},
        403: {"description": "Not an auditor or coordinator of every network holding the person"},
        **UNAVAILABLE,
    },
)
def subject_disclosures(
    request: Request,
    session: DbSession,
    state: State,
    principal: SubjectReader,
    subject_id: Annotated[str, Path(max_length=80)],
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    """Subject-access report (GDPR Art. 15(1)(c)): every recipient of the person's data.

    Read for the purpose `subject_access`; the report is logged (audit_query) before it leaves.
    """
    policies, today = state.policies.current, state.clock().date()
    scope = subject_access.authorize(session, policies, principal, subject_id, purpose, today)
    recipients, found = auditor.subject_report(
        session, state.audit, subject_id, after=_after(cursor), limit=limit
    )
    items = [DisclosureOut.of(e) for e in found[:limit]]
    more = len(found) > limit
    report = SubjectAccessReport(
        subject_id=subject_id,
        recipients=[RecipientOut.of(r) for r in recipients],
        items=items,
        next_cursor=encode_cursor({"seq": items[-1].seq}) if more else None,
    )
    ctx = disclose.ReadContext(principal, subject_access.SUBJECT_ACCESS, justification, request.state.request_id)
    released = door.record_part(
        ctx, scope.grant, report.model_dump(mode="json"), owner_agency=principal.agency_id,
        subject_id=subject_id, record_ids={"referral_ids": scope.referral_ids, "audit_seqs": [i.seq for i in items]},
        fields=subject_access.REPORT_FIELDS, event_type=EventType.audit_query.value,
    )
    return door.send(state, session, [released], door.one)
