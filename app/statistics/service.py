"""Aggregate statistics for national bodies: every table a view allows, protected together."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.errors import BadRequest
from app.policy.decision import Decision, Record
from app.policy.engine import decide
from app.policy.policy_set import PolicySet
from app.referrals.models import Referral
from app.statistics import periods
from app.statistics.cut import WINDOWED, cut
from app.statistics.linked import count, read
from app.statistics.periods import Period
from app.statistics.suppression import Protection, protect_counted
from app.statistics.tables import DIMENSIONS, MAX_DIMENSIONS, StatisticsTable

SPECIAL_CATEGORY = frozenset({"ethnicity", "religion"})
# Protections kept, newest last: one per view and data (a few views are in use at a time).
_KEPT = 4
_kept: OrderedDict[Hashable, Protection] = OrderedDict()
_kept_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class StatisticsGrant:
    """The networks whose referrals the caller may count, and the decision that governs the table.

    Each network is decided on its own (an agreement decides only its own networks); the table
    counts every granted network, with only the dimensions all of them allow and the largest
    min_cell among them.
    """

    decision: Decision
    networks: tuple[str, ...]
    by_network: tuple[tuple[str, Decision], ...] = ()

    def provenance(self) -> list[dict[str, Any]]:
        """For the log: which agreement, version and rule granted each network's figures."""
        return [{"network": n, "agreement_id": d.agreement_id, "agreement_version": d.agreement_version,
                 "agreement_hash": d.agreement_hash, "rule_ids": list(d.rule_ids)} for n, d in self.by_network]


def decide_statistics(policies: PolicySet, principal: Principal, purpose: str, today: date) -> StatisticsGrant:
    caller = access.caller(principal)
    found = [(n, decide(policies, caller, purpose, Record("statistics", {"network": n}), None, now=today))
             for n in sorted(policies.networks)]
    granted = [(n, d) for n, d in found if d.permit]
    if not granted:
        # The refusal of a network the caller is a party in says most; else any.
        mine = [d for n, d in found if access.in_force_party(policies, principal.agency_id, n, today)]
        refusal = (mine or [d for _, d in found] or [Decision(False, "no network on this deployment",
                                                              "no_agreement")])[0]
        return StatisticsGrant(refusal, ())
    fields = frozenset.intersection(*(d.fields for _, d in granted))
    min_cell = max(d.min_cell if d.min_cell is not None else 5 for _, d in granted)
    return StatisticsGrant(replace(granted[0][1], fields=fields, min_cell=min_cell), tuple(n for n, _ in granted),
                           tuple(granted))


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


def linked_dimensions(decision: Decision) -> tuple[str, ...]:
    """The dimensions whose tables are protected together: all the view allows, in a fixed order."""
    return tuple(d for d in DIMENSIONS if d in decision.fields)


def check_window(
    since: date | None, until: date | None, period: Period, dimensions: Sequence[str], decision: Decision
) -> tuple[date | None, date | None] | None:
    """A window of whole periods (None: all time), or a refusal saying why.

    Windows that differ by a few days would differ by a few referrals: a window is whole
    periods, and counts inside it are sums of the protected all-time cells (app/statistics/cut.py).
    """
    if since is None and until is None:
        return None
    allowed = sorted(decision.fields)
    if WINDOWED not in linked_dimensions(decision):
        raise BadRequest("since and until select whole periods: they need the period dimension, which this view "
                         "does not allow.", slug="dimension-not-allowed", allowed=allowed)
    example = "2025-04-01" if period == "quarter" else "2025-05-01"
    for name, day in (("since", since), ("until", until)):
        if day is not None and not periods.starts_period(day, period):
            raise BadRequest(f"{name} must be the first day of a {period} (such as {example}): a window is whole "
                             f"periods.", slug="window-not-whole-periods")
    if since is not None and until is not None and since >= until:
        raise BadRequest("until must be after since.", slug="window-empty")
    if WINDOWED not in dimensions and len(dimensions) == MAX_DIMENSIONS:
        raise BadRequest(f"With since or until name at most {MAX_DIMENSIONS - 1} dimensions besides period: a "
                         f"window counts as the period dimension.", slug="dimensions-invalid", allowed=allowed)
    return since, until


def records(
    session: Session, dimensions: Sequence[str], networks: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """One mapping per referral with just the dimensions asked for (no identity is read).

    ``period`` is the month the referral was created in; quarters are rolled up from it.
    """
    columns = {"concerns": Referral.concerns, "district": Referral.subject_district,
               "age_band": Referral.subject_age_band, "risk_level": Referral.risk_level,
               "status": Referral.status, "outcome": Referral.outcome, "period": Referral.created_at}
    query = select(*(columns[d] for d in dimensions))
    if networks is not None:
        query = query.where(Referral.network_id.in_(sorted(networks)))
    month = dimensions.index("period") if "period" in dimensions else None
    for row in session.execute(query.execution_options(yield_per=2000)):
        values = list(row)
        if month is not None:
            values[month] = periods.month_of(values[month])
        yield dict(zip(dimensions, values, strict=True))


def protection(session: Session, decision: Decision, networks: Sequence[str] | None = None) -> Protection:
    """Every table the view allows, protected together; kept while the data does not change."""
    dims = linked_dimensions(decision)
    min_cell = decision.min_cell if decision.min_cell is not None else 5
    rows = read(records(session, dims, networks), dims)
    key = (dims, min_cell, frozenset(rows.items()))  # the data itself is its version
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    found = protect_counted(count(rows, dims, {WINDOWED: periods.quarter_of}), min_cell)
    with _kept_lock:
        _kept[key] = found
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)
    return found


def table(
    session: Session, decision: Decision, dimensions: tuple[str, ...], period: Period,
    window: tuple[date | None, date | None] | None, networks: Sequence[str] | None = None,
) -> StatisticsTable:
    """The table asked for, cut out of the view's one protection (the same cells in every table)."""
    coarse = frozenset({WINDOWED}) if period == "quarter" else frozenset()
    inside = None if window is None else periods.in_window(*window)
    return cut(protection(session, decision, networks), dimensions, coarse=coarse, window=inside)


def to_csv(result: StatisticsTable) -> str:
    """Interior cells then every margin; a margin's missing dimensions read `*`; suppressed is empty."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*result.dimensions, "count", "suppressed"])
    groups = [(result.dimensions, result.cells)] + [(m.dimensions, m.cells) for m in result.margins]
    for present, cells in groups:
        for cell in cells:
            values = [cell.values.get(d) if d in present else "*" for d in result.dimensions]
            shown = "" if cell.suppressed else cell.count
            writer.writerow(["" if v is None else v for v in values] + [shown, str(cell.suppressed).lower()])
    return out.getvalue()
