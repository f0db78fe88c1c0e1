"""GET /v1/summaries: the incremental sync a civil-society partner runs every few minutes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from app import access, disclose, door
from app.audit.events import EventType
from app.auth.principal import Caller
from app.pagination import DEFAULT_LIMIT, ISO_TIMESTAMP, Cursor, Limit
from app.partners import service
from app.partners.schemas import SummaryPage
from app.referrals.router import crypto
from app.state import State, unit_of_work

router = APIRouter(tags=["partners"])


@router.get(
    "/v1/summaries",
    operation_id="sync_summaries",
    summary="Sync partner summaries",
    description=(
        "Summaries of the referrals a partner agency is granted, for the stated purpose; send the last "
        "`ETag` in `If-None-Match` to get 304 when nothing changed."
    ),
    openapi_extra={"x-required-roles": ["partner_reader"], "x-case-data": True, "x-purpose-required": True},
    response_model=SummaryPage,
    responses={
        304: {"description": "Nothing changed since the ETag you sent"},
        400: {"description": "X-Purpose missing or not open to you"},
        403: {"description": "Not a partner_reader"},
    },
)
def sync_summaries(
    request: Request,
    state: State,
    caller: Caller,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
    updated_since: Annotated[datetime | None, Query(description="synced_at of your last sync."), ISO_TIMESTAMP] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=200)] = None,
) -> Any:
    now = state.clock()
    policies = state.policies.current
    # The page is built in a read-only unit of work (no lock on SQLite), which also confirms the
    # client is enabled (one thread hop for both). Its log entries are then committed by the
    # process's committer, and only after them what the partner must now delete and what it
    # holds, in one short transaction: all of it before the response leaves.
    with state.read_sessions() as session:
        principal = caller.confirm(session)
        ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
        with disclose.denials_logged(state, session, ctx, {"summaries": "sync"}):
            # A partner syncs what it holds no relation to: only relation-free grants count.
            stated = access.require_purpose(policies, principal, purpose, now.date(), relations=frozenset())
            since = updated_since if updated_since is None or updated_since.tzinfo else updated_since.astimezone()
            result = service.sync(session, crypto(state), principal, stated, policies, now, since, cursor, limit)
    ctx = disclose.ReadContext(principal, stated, justification, request.state.request_id)
    unchanged = if_none_match is not None and if_none_match.strip() == result.etag
    # Rendered (opened, projected) before the writer's turn is taken: the writes need none of it.
    released = [] if unchanged else [
        door.referral(ctx, item.grant, item.referral, item.referral.subject, state.envelope)
        for item in result.items
    ]
    notices = [
        disclose.change_event(principal, EventType.withdrawal_notice, subject_id=subject_id or None,
                              record_ids={"referral_id": referral_id}, request_id=ctx.request_id)
        for referral_id, subject_id in result.due
    ]

    def hold() -> None:
        # What the partner must now delete and what it now holds, after the entries are durable:
        # with no entry, nothing is remembered as handed out.
        with unit_of_work(state) as session:
            service.withdraw(session, principal, result.due, now)
            if not unchanged:
                service.remember(session, principal, result.items, now)

    if unchanged:
        disclose.commit_reads(state, notices)
        hold()
        return Response(status_code=304, headers={"ETag": result.etag})

    def page(documents: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "items": [{**d, **item.extra} for d, item in zip(documents, result.items, strict=True)],
            "next_cursor": result.next_cursor,
            "withdrawn": result.withdrawn,
            "synced_at": now.isoformat(),
        }

    # The page's entries go through the committer with every other request's (one fsync for all).
    return door.send(state, None, released, page, extra_events=notices, then=hold,
                     headers={"ETag": result.etag, "Cache-Control": "private, no-store"})
