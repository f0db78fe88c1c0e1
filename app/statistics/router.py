"""GET /v1/statistics: the aggregate picture for national bodies, as JSON or CSV."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from app import access, disclose
from app.audit.events import AuditEvent, EventType
from app.auth.principal import CurrentPrincipal
from app.pagination import ISO_DATE
from app.state import DbSession, State
from app.statistics import service

router = APIRouter(tags=["statistics"])


@router.get(
    "/v1/statistics",
    operation_id="get_statistics",
    summary="Aggregate statistics",
    description=(
        "Counts of referrals by 1–3 dimensions the agreements permit, with small cells suppressed; JSON "
        "or CSV (`Accept: text/csv`)."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}},
              "description": "Counts by dimension; a suppressed cell has count null and suppressed true"},
        400: {"description": "Purpose or dimensions not allowed; the answer names the allowed ones"},
        403: {"description": "No agreement grants you statistics"},
    },
)
def get_statistics(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    dimensions: Annotated[str, Query(max_length=200, description="Comma-separated, 1 to 3.")] = "",
    period: Annotated[Literal["month", "quarter"], Query()] = "quarter",
    since: Annotated[date | None, Query(description=(
        "Referrals created on or after: the first day of a month (of a quarter with period=quarter). "
        "Windows are whole periods, so two windows never differ by a few referrals; with since or until "
        "name at most two dimensions besides period.")), ISO_DATE] = None,
    until: Annotated[date | None, Query(description=(
        "Referrals created before: the first day of a month (of a quarter with period=quarter).")), ISO_DATE] = None,
    purpose: access.PurposeHeader = None,
    accept: Annotated[str | None, Header(max_length=500)] = None,
) -> Any:
    policies, now = state.policies.current, state.clock()
    ctx = disclose.ReadContext(principal, purpose or "", None, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"statistics": dimensions},
                                 extra_refusals=True):
        stated = access.require_purpose(policies, principal, purpose, now.date(), relations=frozenset())
        counted = service.decide_statistics(policies, principal, stated, now.date())
        decision = counted.decision
        grant = access.grant_for(decision, principal, "", stated)
        requested = [d.strip() for d in dimensions.split(",") if d.strip()]
        chosen = service.check_dimensions(requested, grant.decision)
        window = service.check_window(since, until, period, chosen, grant.decision)
    result = service.table(session, decision, chosen, period, window, counted.networks)
    disclose.log_reads(state, session, [AuditEvent(
        event_type=EventType.aggregate_disclosure.value, actor_agency=None,
        recipient_agency=principal.agency_id, purpose=stated, decision="permit",
        agreement_id=decision.agreement_id, rule_id=decision.rule_ids[0] if decision.rule_ids else None,
        subject_id=None,
        details=ctx.details(dimensions=list(chosen), period=period, since=since, until=until,
                            min_cell=result.min_cell, cells=len(result.cells),
                            suppressed=sum(1 for c in result.cells if c.suppressed),
                            networks=list(counted.networks), granted_by=counted.provenance(),
                            **disclose.decision_details(decision)),
    )])
    if accept and "text/csv" in accept:
        return Response(service.to_csv(result), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="statistics.csv"'})
    return JSONResponse({**result.to_json(), "period": period, "agreement": decision.agreement_id,
                         "networks": list(counted.networks)})
