"""An attacker that puts every published table of the same referrals into one linear program.

recover.py attacks one table. This one takes a collection of published tables (JSON, each
with its ``period`` granularity) and knows what a careful reader knows about them together:

- a combination of dimension values is the same number in every table that shows it;
- an unlisted combination of a fetched table is zero, a listed suppressed cell is at least 1;
- inside each table a margin over a single-valued dimension is the sum of its cells, and
  over concerns (multi-valued) a concern count is at most the distinct total and the
  concern counts add up to at least it;
- a quarter is the sum of its three months whenever both granularities were fetched.

For every suppressed cell it computes the smallest and largest value any set of tables
consistent with all of that could give it, by linear programming (HiGHS, presolve off for
the reasons given in recover.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_array

MULTI_VALUED = frozenset({"concerns"})
_CAP = 10**7
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

# A cell by the values it fixes: sorted (dimension, value) pairs; () is the grand total.
CellId = tuple[tuple[str, Any], ...]


def cell_id(values: Mapping[str, Any]) -> CellId:
    return tuple(sorted(values.items(), key=lambda kv: kv[0]))


def true_count(records: Iterable[Mapping[str, Any]], cell: CellId) -> int:
    """Brute force: how many referrals a cell counts (period values are months or quarters)."""

    def holds(record: Mapping[str, Any], dimension: str, value: Any) -> bool:
        if dimension in MULTI_VALUED:
            return value in record[dimension]
        if dimension == "period" and _QUARTER.match(str(value)):
            return quarter_of(record[dimension]) == value
        return bool(record.get(dimension) == value)

    return sum(1 for r in records if all(holds(r, d, v) for d, v in cell))


def quarter_of(month: str) -> str:
    found = _MONTH.match(month)
    assert found, month
    return f"{found[1]}-Q{(int(found[2]) - 1) // 3 + 1}"


def grain_of(cell: CellId) -> str | None:
    period = dict(cell).get("period")
    if period is None:
        return None
    return "quarter" if _QUARTER.match(str(period)) else "month"


@dataclass
class Published:
    """Everything the attacker has read: each cell's count (None: suppressed), and which
    table shapes it fetched (so it knows where an unlisted cell is a zero)."""

    cells: dict[CellId, int | None] = field(default_factory=dict)
    shapes: set[tuple[frozenset[str], str | None]] = field(default_factory=set)
    tables: list[tuple[tuple[str, ...], list[CellId]]] = field(default_factory=list)
    # Suppressed in one table, published in another: the attacker just reads the number.
    revealed: dict[CellId, int] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)  # two different published numbers

    def add(self, table: Mapping[str, Any], period: str | None = None) -> None:
        """Read one published table; ``period`` is its granularity when it has that dimension."""
        dims = tuple(table["dimensions"])
        grain = period if "period" in dims else None
        listed: list[CellId] = []
        for cell in [*table["cells"], *(c for m in table["margins"] for c in m["cells"])]:
            key = cell_id({k: v for k, v in cell.items() if k not in ("count", "suppressed")})
            count = cell["count"]
            assert (count is None) == bool(cell.get("suppressed")), cell
            known = self.cells.get(key)
            if key in self.cells and known is not None and count is not None and known != count:
                self.conflicts.append(f"{key}: {known} and {count}")
            if key in self.cells and (known is None) != (count is None):
                self.revealed[key] = known if count is None else count  # type: ignore[assignment]
            if known is None:
                self.cells[key] = count
            listed.append(key)
        for size in range(len(dims) + 1):
            for chosen in _subsets(dims, size):
                self.shapes.add((frozenset(chosen), grain if "period" in chosen else None))
        self.tables.append((dims, listed))

    def value(self, key: CellId) -> int | None | float:
        """A listed cell's count or None; an unlisted cell of a fetched shape is 0; else NaN."""
        if key in self.cells:
            return self.cells[key]
        dims = frozenset(d for d, _ in key)
        if (dims, grain_of(key)) in self.shapes:
            return 0
        return math.nan


def _subsets(dims: Sequence[str], size: int) -> Iterable[tuple[str, ...]]:
    from itertools import combinations

    return combinations(dims, size)


@dataclass
class _Program:
    unknown: list[CellId]
    eq: list[tuple[dict[int, float], float]] = field(default_factory=list)
    ub: list[tuple[dict[int, float], float]] = field(default_factory=list)
    seen: set[tuple[str, frozenset[tuple[CellId, float]]]] = field(default_factory=set)


def relations(published: Published, multi_valued: frozenset[str] = MULTI_VALUED) -> _Program:
    """Every linear relation between published cells the attacker knows, over the unknowns."""
    unknown = sorted((k for k, n in published.cells.items() if n is None), key=repr)
    program = _Program(unknown)
    index = {k: j for j, k in enumerate(unknown)}

    def add(kind: str, terms: Sequence[tuple[CellId, float]]) -> None:
        signature = (kind, frozenset(terms))
        if signature in program.seen:
            return
        program.seen.add(signature)
        row: dict[int, float] = {}
        constant = 0.0
        for key, coef in terms:
            if key in index:
                row[index[key]] = row.get(index[key], 0.0) + coef
            else:
                value = published.value(key)
                assert isinstance(value, int), f"{key} is not known to the attacker"
                constant += coef * value
        if not row:
            ok = constant == 0 if kind == "eq" else constant <= 0
            assert ok, f"published numbers contradict each other: {terms}"
            return
        (program.eq if kind == "eq" else program.ub).append((row, -constant))

    for dims, listed in published.tables:
        keys = set(listed)
        for axis in dims:
            if axis in multi_valued:
                continue
            lines: dict[CellId, list[CellId]] = {}
            for key in keys:
                values = dict(key)
                if axis in values:
                    del values[axis]
                    lines.setdefault(cell_id(values), []).append(key)
            for total, parts in lines.items():
                add("eq", [(total, 1.0), *((p, -1.0) for p in parts)])
        for axis in dims:
            if axis not in multi_valued:
                continue
            rows: dict[CellId, list[CellId]] = {}
            for key in keys:
                values = dict(key)
                if axis in values:
                    del values[axis]
                    rows.setdefault(cell_id(values), []).append(key)
            for total, concerns in rows.items():
                for c in concerns:
                    add("ub", [(c, 1.0), (total, -1.0)])
                add("ub", [(total, 1.0), *((c, -1.0) for c in concerns)])
    months: dict[tuple[CellId, str], list[CellId]] = {}
    for key in published.cells:
        if grain_of(key) == "month":
            values = dict(key)
            quarter = quarter_of(values.pop("period"))
            months.setdefault((cell_id(values), quarter), []).append(key)
    for key in published.cells:
        if grain_of(key) != "quarter" or (frozenset(d for d, _ in key), "month") not in published.shapes:
            continue
        values = dict(key)
        quarter = values.pop("period")
        add("eq", [(key, 1.0), *((m, -1.0) for m in months.get((cell_id(values), quarter), []))])
    return program


def feasible_ranges(
    published: Published,
    multi_valued: frozenset[str] = MULTI_VALUED,
    *,
    only: Iterable[CellId] | None = None,
    enough: Mapping[CellId, tuple[int, float]] | None = None,
    integral: bool = False,
) -> dict[CellId, tuple[float, float]]:
    """For each suppressed cell (or those in ``only``), its (min, max) over the feasible set.

    A cell suppressed in one table but published in another is pinned: (n, n).

    ``enough`` maps a cell to (its true count, a width): when the maximum is already that
    far above the truth the minimum is not computed (reported as the truth), which halves
    the work of a test that only asks whether every range is wide enough. ``integral``
    solves over whole numbers (slower, tighter).
    """
    assert not published.conflicts, published.conflicts
    program = relations(published, multi_valued)
    n = len(program.unknown)
    if not n:
        return {k: (v, v) for k, v in published.revealed.items()}
    a_eq, b_eq = _matrix([r for r, _ in program.eq], n), np.array([b for _, b in program.eq])
    a_ub, b_ub = _matrix([r for r, _ in program.ub], n), np.array([b for _, b in program.ub])
    wanted = set(program.unknown if only is None else only)
    ranges: dict[CellId, tuple[float, float]] = {k: (n, n) for k, n in published.revealed.items()}
    for j, key in enumerate(program.unknown):
        if key not in wanted:
            continue
        objective = np.zeros(n)
        objective[j] = 1.0
        high = -_optimum(-objective, a_eq, b_eq, a_ub, b_ub, integral)
        if enough is not None and key in enough and high - enough[key][0] >= enough[key][1] - 1e-6:
            ranges[key] = (float(enough[key][0]), high)
            continue
        ranges[key] = (_optimum(objective, a_eq, b_eq, a_ub, b_ub, integral), high)
    return ranges


def _optimum(
    objective: np.ndarray,
    a_eq: csr_array | None,
    b_eq: np.ndarray,
    a_ub: csr_array | None,
    b_ub: np.ndarray,
    integral: bool,
) -> float:
    if integral:
        constraints = []
        if a_eq is not None:
            constraints.append(LinearConstraint(a_eq, b_eq, b_eq))
        if a_ub is not None:
            constraints.append(LinearConstraint(a_ub, -np.inf, b_ub))
        result = milp(objective, integrality=np.ones(len(objective)), bounds=Bounds(1, _CAP),
                      constraints=constraints, options={"presolve": False})
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
