"""An attacker that solves a published statistics table for its suppressed cells, and an oracle.

The attacker sees only the JSON the API gives. Its model: unlisted combinations are zero,
a listed suppressed cell is at least 1, a margin over a single-valued dimension is the sum
of the cells under it, and over the multi-valued dimension (concerns, where every referral
names at least one) each concern count is at most the distinct total and they add up to
at least it. For every suppressed cell it computes the smallest and largest value any
table consistent with all that could give it, by linear programming (HiGHS).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations, product
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_array

MULTI_VALUED = frozenset({"concerns"})
# HiGHS's presolve has reported an unbounded LP as infeasible and a wrong MIP optimum on
# these tables (scipy 1.17), so it is off; every unknown is capped so no problem is
# unbounded, and reaching the cap means "no upper bound".
_CAP = 10**7


class _All:
    def __repr__(self) -> str:
        return "ALL"

    def __lt__(self, other: object) -> bool:
        return False


ALL: Any = _All()  # the level of a margin: "every value of this dimension"
CellKey = tuple[Any, ...]


def published_cells(table: Mapping[str, Any]) -> dict[CellKey, int | None]:
    """Every listed cell of a published table (interior and margins): its count or None."""
    dims = table["dimensions"]
    cells = list(table["cells"])
    for margin in table["margins"]:
        cells.extend(margin["cells"])
    out: dict[CellKey, int | None] = {}
    for cell in cells:
        key = tuple(cell.get(d, ALL) for d in dims)
        assert key not in out, f"cell {key} listed twice"
        if cell["count"] is None:
            assert cell.get("suppressed") is True, cell
        else:
            assert "suppressed" not in cell, cell
        out[key] = cell["count"]
    return out


def feasible_ranges(
    table: Mapping[str, Any],
    multi_valued: frozenset[str] = MULTI_VALUED,
    *,
    integral: bool = False,
) -> dict[CellKey, tuple[float, float]]:
    """For each suppressed cell, (min, max) over all tables consistent with what is published.

    By linear programming, or with ``integral`` over whole numbers (slower, tighter).
    """
    dims = list(table["dimensions"])
    cells = published_cells(table)
    unknown = sorted((k for k, n in cells.items() if n is None), key=repr)
    if not unknown:
        return {}
    var = {k: j for j, k in enumerate(unknown)}
    eq_rows: list[dict[int, float]] = []
    eq_rhs: list[float] = []
    ub_rows: list[dict[int, float]] = []
    ub_rhs: list[float] = []

    def add(terms: Iterable[tuple[CellKey, float]], rows: list[dict[int, float]]) -> float:
        """Put the unknown terms in a new row; return the constant part (published terms)."""
        row: dict[int, float] = {}
        constant = 0.0
        for key, coef in terms:
            if key in var:
                row[var[key]] = row.get(var[key], 0.0) + coef
            else:
                constant += coef * (cells.get(key) or 0)
        rows.append(row)
        return constant

    m = next((i for i, d in enumerate(dims) if d in multi_valued), None)
    for axis in range(len(dims)):
        if axis == m:
            continue
        lines: dict[CellKey, list[CellKey]] = {}
        for key in cells:
            if key[axis] is not ALL:
                lines.setdefault(key[:axis] + (ALL,) + key[axis + 1 :], []).append(key)
        for total, parts in lines.items():
            terms = [(total, 1.0)] + [(p, -1.0) for p in parts]
            if any(k in var for k, _ in terms):
                eq_rhs.append(-add(terms, eq_rows))
    if m is not None:
        groups: dict[CellKey, list[CellKey]] = {}
        for key in cells:
            interior = all(key[i] is not ALL for i in range(len(dims)) if i != m)
            if interior and key[m] is not ALL:
                groups.setdefault(key[:m] + (ALL,) + key[m + 1 :], []).append(key)
        for distinct, concerns in groups.items():
            for c in concerns:  # a concern count is at most the distinct total
                terms = [(c, 1.0), (distinct, -1.0)]
                if any(k in var for k, _ in terms):
                    ub_rhs.append(-add(terms, ub_rows))
            terms = [(distinct, 1.0)] + [(c, -1.0) for c in concerns]  # sum >= distinct
            if any(k in var for k, _ in terms):
                ub_rhs.append(-add(terms, ub_rows))

    n = len(unknown)
    a_eq, a_ub = _matrix(eq_rows, n), _matrix(ub_rows, n)
    b_eq, b_ub = np.array(eq_rhs), np.array(ub_rhs)
    ranges: dict[CellKey, tuple[float, float]] = {}
    for key, j in var.items():
        objective = np.zeros(n)
        objective[j] = 1.0
        low = _optimum(objective, a_eq, b_eq, a_ub, b_ub, integral)
        high = -_optimum(-objective, a_eq, b_eq, a_ub, b_ub, integral)
        ranges[key] = (low, high)
    return ranges


def _optimum(
    objective: np.ndarray,
    a_eq: csr_array | None,
    b_eq: np.ndarray,
    a_ub: csr_array | None,
    b_ub: np.ndarray,
    integral: bool,
) -> float:
    """Minimum of the objective over the attacker's feasible set (-inf when unbounded)."""
    if integral:
        constraints = []
        if a_eq is not None:
            constraints.append(LinearConstraint(a_eq, b_eq, b_eq))
        if a_ub is not None:
            constraints.append(LinearConstraint(a_ub, -np.inf, b_ub))
        result = milp(
            objective,
            integrality=np.ones(len(objective)),
            bounds=Bounds(1, _CAP),
            constraints=constraints,
            options={"presolve": False},
        )
    else:
        result = linprog(
            objective,
            A_ub=a_ub,
            b_ub=b_ub if a_ub is not None else None,
            A_eq=a_eq,
            b_eq=b_eq if a_eq is not None else None,
            bounds=(1, _CAP),
            method="highs",
            options={"presolve": False},
        )
    assert result.status == 0, result.message  # infeasible would mean a wrong attacker model
    value = float(result.fun)
    return -math.inf if value <= -_CAP + 1 else value


def _matrix(rows: Sequence[Mapping[int, float]], n: int) -> csr_array | None:
    if not rows:
        return None
    data, ri, ci = [], [], []
    for r, row in enumerate(rows):
        for c, v in row.items():
            data.append(v)
            ri.append(r)
            ci.append(c)
    return csr_array((data, (ri, ci)), shape=(len(rows), n))


def true_counts(
    records: Iterable[Mapping[str, Any]],
    dimensions: Sequence[str],
    multi_valued: frozenset[str] = MULTI_VALUED,
) -> dict[CellKey, int]:
    """Brute force: every non-empty cell and margin, counting distinct referrals per cell."""
    counts: Counter[CellKey] = Counter()
    for record in records:
        choices = []
        for d in dimensions:
            value = record.get(d)
            values = sorted(set(value), key=repr) if d in multi_valued else [value]
            choices.append([*values, ALL])
        for key in product(*choices):
            counts[key] += 1
    return dict(counts)


def primary_only(
    records: Iterable[Mapping[str, Any]], dimensions: Sequence[str], min_cell: int
) -> dict[str, Any]:
    """A deliberately under-protected table: small cells hidden, nothing else."""
    counts = true_counts(records, dimensions)
    return as_published(counts, dimensions, {k for k, n in counts.items() if n < min_cell})


def as_published(
    counts: Mapping[CellKey, int], dimensions: Sequence[str], hidden: Iterable[CellKey]
) -> dict[str, Any]:
    """The JSON the API would give for these counts with exactly ``hidden`` suppressed."""
    dims = list(dimensions)
    hide = set(hidden)
    cells: list[dict[str, Any]] = []
    margins: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for key, n in counts.items():
        shown = tuple(d for d, v in zip(dims, key, strict=True) if v is not ALL)
        cell: dict[str, Any] = {d: v for d, v in zip(dims, key, strict=True) if v is not ALL}
        cell.update({"count": None, "suppressed": True} if key in hide else {"count": n})
        if len(shown) == len(dims):
            cells.append(cell)
        else:
            margins.setdefault(shown, []).append(cell)
    order = [c for size in range(len(dims) - 1, -1, -1) for c in combinations(dims, size)]
    return {
        "dimensions": dims,
        "cells": cells,
        "margins": [{"dimensions": list(c), "cells": margins[c]} for c in order if c in margins],
    }
