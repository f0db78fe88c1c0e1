"""Cut one published table out of the joint protection, for all time or a window of whole periods.

A table for all time is a set of cells of the joint protection, published as they are
there. A window of whole periods adds no number that is not already published: its cells
with a period are joint cells, and a cell summed over the window's periods is published
only when every period it sums is published (a sum of published numbers), else suppressed.
So differencing two windows, or a window and all time, tells nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import TYPE_CHECKING

from app.statistics.linked import Key
from app.statistics.tables import Cell, Margin, StatisticsTable, Value, Why, check_dimensions

if TYPE_CHECKING:
    from app.statistics.suppression import Protection

__all__ = ["WINDOWED", "cut"]

WINDOWED = "period"  # the dimension a window of whole periods selects on


def cut(
    protection: Protection,
    dimensions: Sequence[str],
    *,
    coarse: frozenset[str] = frozenset(),
    window: Callable[[Value], bool] | None = None,
) -> StatisticsTable:
    """The table of ``dimensions`` (rolled up where ``coarse``), within ``window`` if given.

    ``window`` says which periods (at the period dimension's granularity) to count.
    """
    linked = protection.linked
    dims = check_dimensions(dimensions)
    names = [a.name for a in linked.axes]
    missing = [d for d in dims if d not in names]
    if missing:
        raise ValueError(f"dimension(s) {missing} are not protected here; protected: {names}")
    grain = [2 if a.name in coarse and a.members else 1 for a in linked.axes]
    at = [names.index(d) for d in dims]
    period: int | None = None
    codes: frozenset[int] = frozenset()
    if window is not None:
        if WINDOWED not in names:
            raise ValueError("a window needs the period dimension")
        period = names.index(WINDOWED)
        axis = linked.axes[period]
        span = range(axis.leaves) if grain[period] == 1 else range(axis.leaves, axis.all)
        codes = frozenset(c for c in span if window(axis.values[c]))
        if codes == frozenset(span):
            period = None  # the window holds every period with a referral: it is all time
        elif WINDOWED not in dims and len(dims) == 3:
            raise ValueError("with a window, name at most two dimensions besides period")
    groups: list[tuple[tuple[int, ...], list[Cell]]] = []
    for size in range(len(dims), -1, -1):
        for chosen in combinations(range(len(dims)), size):
            axes = tuple(at[p] for p in chosen)
            if period is None:
                counts, hidden = protection.linked.counts, protection.hidden
                found = [(k, counts[k], hidden.get(k)) for k in _keys(protection, axes, grain)]
            else:
                found = _windowed(protection, axes, grain, period, codes)
            found.sort(key=lambda f: tuple(f[0][i] for i in axes))
            cells = [
                Cell({names[i]: linked.axes[i].values[key[i]] for i in axes}, None if why else n, why)
                for key, n, why in found
            ]
            if cells or size == len(dims):
                groups.append((axes, cells))
    full, *rest = groups
    margins = tuple(Margin(tuple(names[i] for i in axes), tuple(cells)) for axes, cells in rest)
    if not margins:  # no referrals at all: a zero grand total, nothing else
        margins = (Margin((), (Cell({}, 0),)),)
    return StatisticsTable(dims, protection.min_cell, protection.protection, tuple(full[1]), margins)


def _shape(axes: Sequence[int], grain: Sequence[int], n: int) -> tuple[int, ...]:
    return tuple(grain[i] if i in axes else 0 for i in range(n))


def _keys(protection: Protection, axes: Sequence[int], grain: Sequence[int]) -> tuple[Key, ...]:
    return protection.shapes.get(_shape(axes, grain, len(grain)), ())


def _windowed(
    protection: Protection, axes: tuple[int, ...], grain: Sequence[int], period: int, codes: frozenset[int]
) -> list[tuple[Key, int, Why | None]]:
    """Cells within the window: joint cells by period, sums over it published only if whole."""
    hidden, counts = protection.hidden, protection.linked.counts
    if period in axes:
        return [(k, counts[k], hidden.get(k)) for k in _keys(protection, axes, grain) if k[period] in codes]
    every = protection.linked.axes[period].all
    sums: dict[Key, tuple[int, bool]] = {}
    for key in _keys(protection, (*axes, period), grain):
        if key[period] in codes:
            target = key[:period] + (every,) + key[period + 1 :]
            n, concealed = sums.get(target, (0, False))
            sums[target] = (n + counts[key], concealed or key in hidden)
    found: list[tuple[Key, int, Why | None]] = []
    for key, (n, concealed) in sums.items():
        why: Why | None = None
        if concealed:
            why = "primary" if n < protection.min_cell else "secondary"
        found.append((key, n, why))
    return found
