"""Aggregate statistics for national bodies: counts by allowed dimensions, small cells suppressed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.errors import BadRequest
from app.policy.decision import Decision, Record
from app.policy.engine import decide
from app.policy.policy_set import PolicySet
from app.referrals.models import Referral
from app.statistics.suppression import protected_table
from app.statistics.tables import DIMENSIONS, MAX_DIMENSIONS, StatisticsTable
from app.subjects.models import Subject

Period = Literal["month", "quarter"]
SPECIAL_CATEGORY = frozenset({"ethnicity", "religion"})


def decide_statistics(policies: PolicySet, principal: Principal, purpose: str, today: date) -> Decision:
    return decide(policies, access.caller(principal), purpose, Record("statistics", {}), None, now=today)


def check_dimensions(requested: Sequence[str], decision: Decision) -> tuple[str, ...]:
    allowed = sorted(decision.fields)
    if not requested:
        raise BadRequest("Name 1 to 3 dimensions.", slug="dimensions-required", allowed=allowed)
    if len(requested) > MAX_DIMENSIONS or len(set(requested)) != len(requested):
        raise BadRequest(f"Name 1 to {MAX_DIMENSIONS} distinct dimensions.", slug="dimensions-invalid",
                         allowed=allowed)
    refused = [d for d in requested if d not in decision.fields or d not in DIMENSIONS]
    if refused:
        why = (" Special-category data is never a dimension here."
               if SPECIAL_CATEGORY & set(refused) else "")
        raise BadRequest(
            f"Dimension(s) not allowed: {', '.join(refused)}.{why}", slug="dimension-not-allowed", allowed=allowed
        )
    return tuple(requested)


def period_of(when: datetime, period: Period) -> str:
    if period == "quarter":
        return f"{when.year}-Q{(when.month - 1) // 3 + 1}"
    return f"{when.year}-{when.month:02d}"


def records(
    session: Session, dimensions: Sequence[str], period: Period, since: date | None, until: date | None
) -> Iterator[dict[str, Any]]:
    """One mapping per referral with just the dimensions asked for (no identity is read)."""
    query = select(Referral.created_at, Referral.concerns, Referral.risk_level, Referral.status,
                   Referral.outcome, Subject.age_band, Subject.district).join(Subject, Subject.id == Referral.subject_id)
    if since is not None:
        query = query.where(Referral.created_at >= datetime.combine(since, datetime.min.time()).astimezone())
    if until is not None:
        query = query.where(Referral.created_at < datetime.combine(until, datetime.min.time()).astimezone())
    for created, concerns, risk, status, outcome, age_band, district in session.execute(
        query.execution_options(yield_per=2000)
    ):
        row = {"concerns": list(concerns), "risk_level": risk, "status": status, "outcome": outcome,
               "age_band": age_band, "district": district, "period": period_of(created, period)}
        yield {d: row[d] for d in dimensions}


def table(
    session: Session, decision: Decision, dimensions: tuple[str, ...], period: Period,
    since: date | None, until: date | None,
) -> StatisticsTable:
    min_cell = decision.min_cell if decision.min_cell is not None else 5
    return protected_table(records(session, dimensions, period, since, until), dimensions, min_cell=min_cell)


def to_csv(result: StatisticsTable) -> str:
    """Interior cells then every margin; a margin's missing dimensions read `*`; suppressed is empty."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*result.dimensions, "count", "suppressed"])
    document = result.to_json()
    groups = [(list(result.dimensions), document["cells"])] + [
        (m["dimensions"], m["cells"]) for m in document["margins"]
    ]
    for present, cells in groups:
        for cell in cells:
            values = [cell.get(d) if d in present else "*" for d in result.dimensions]
            values = ["" if v is None else v for v in values]
            suppressed = bool(cell.get("suppressed"))
            writer.writerow([*values, "" if suppressed else cell["count"], "true" if suppressed else "false"])
    return out.getvalue()
