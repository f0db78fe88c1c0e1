"""Primary and secondary cell suppression of a frequency table and all its margins.

The protection model (what an attacker may know, and what we guarantee):

- Published: every non-empty cell of the requested cross-classification and of every
  lower-dimensional margin down to the grand total. Empty combinations are not listed,
  so with public code lists an unlisted combination *is* a published zero, and a listed
  suppressed cell is known to be at least 1 (the table does say which combinations have
  any referral at all). Both facts are part of the model.
- Primary: a listed cell (interior or margin) with a count below ``min_cell`` is suppressed.
- Over a single-valued dimension a margin is the sum of the cells it aggregates. Over the
  multi-valued dimension (concerns) a referral counts in each of its concerns and the
  margin counts distinct referrals: no sum, but each concern count is at most the margin
  and, because every referral names a concern, the concern counts add up to at least it.
- Secondary, by the hypercube method (Repsilber; tau-ARGUS "GHMITER"): every primary
  cell becomes a corner of a hypercube of suppressed cells, one pair of levels per
  dimension (the margin may be one of the pair). Moving the corners by +t/-t in the
  checkerboard pattern keeps every published number and relation intact, so any t the
  corners' slack allows is a table the attacker cannot rule out. We choose the cheapest
  hypercube (smallest sum of newly hidden counts) that lets its cells move by a total
  range of at least ``protection`` while every cell stays >= 1 and the concern/distinct
  inequalities hold. Every suppressed cell is a corner of such a hypercube, so for every
  suppressed cell the feasible range (max - min over all tables consistent with what is
  published) is at least ``protection`` (default ``min_cell``): an attacker never pins a
  cell down, and (with protection >= min_cell) can never conclude that a suppressed cell
  is below ``min_cell``, since its range then reaches at least 1 + protection.

Not covered: different tables requested from the same data are protected independently,
so combining two requests can still narrow a suppressed cell.
"""

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product

from app.statistics.tables import (
    Cell,
    Grid,
    Key,
    Margin,
    StatisticsTable,
    Why,
    table_layout,
    tabulate,
)

__all__ = ["protected_table", "suppress"]

_UNBOUNDED = sys.maxsize
_LOWEST = 1  # a listed cell is non-empty


def protected_table(
    records: Iterable[Mapping[str, object]],
    dimensions: Sequence[str],
    *,
    min_cell: int = 5,
    protection: int | None = None,
) -> StatisticsTable:
    """Count referrals by 1 to 3 dimensions and suppress what would identify people."""
    if min_cell < 1:
        raise ValueError(f"min_cell must be at least 1, got {min_cell}")
    protect = min_cell if protection is None else protection
    if protect < 1:
        raise ValueError(f"protection must be at least 1, got {protect}")
    grid = tabulate(records, dimensions)
    hidden = suppress(grid, min_cell, protect)
    tables = [
        (axes, tuple(_cell(grid, key, axes, hidden.get(key)) for key in keys))
        for axes, keys in table_layout(grid)
    ]
    if not tables:  # no referrals at all: a zero grand total, nothing else
        zero = (Margin((), (Cell({}, 0),)),)
        return StatisticsTable(grid.dimensions, min_cell, protect, (), zero)
    margins = tuple(
        Margin(tuple(grid.dimensions[i] for i in axes), cells) for axes, cells in tables[1:]
    )
    return StatisticsTable(grid.dimensions, min_cell, protect, tables[0][1], margins)


def suppress(grid: Grid, min_cell: int, protection: int) -> dict[Key, Why]:
    """Which cells to suppress, and why, so none can be narrowed below ``protection``."""
    counts = grid.counts
    hidden: dict[Key, Why] = {k: "primary" for k, n in counts.items() if n < min_cell}
    search = _Search(grid, protection, hidden)
    covered: set[Key] = set()
    n = len(grid.dimensions)
    # Margins first: their hypercubes reach down and often cover small interior cells too.
    order = sorted(
        hidden,
        key=lambda k: (-sum(k[i] == grid.total(i) for i in range(n)), counts[k], k),
    )
    for key in order:
        if key in covered:
            continue
        for corner in search.best_hypercube(key):
            hidden.setdefault(corner, "secondary")
            covered.add(corner)
    return hidden


@dataclass(frozen=True, slots=True)
class _Link:
    """What the concern cells of one interior combination say about its distinct total."""

    distinct: int
    mentions: int  # sum of the concern counts
    largest: tuple[tuple[int, int], ...]  # the three largest (count, concern level)


class _Search:
    """Find, for one suppressed cell, the cheapest hypercube that protects it."""

    def __init__(self, grid: Grid, protection: int, hidden: Mapping[Key, Why]) -> None:
        self.counts = grid.counts
        self.hidden = hidden
        self.protection = protection
        self.totals = tuple(grid.total(i) for i in range(len(grid.dimensions)))
        self.multi = grid.multi_valued
        self.links = _links(grid) if grid.multi_valued is not None else {}

    def best_hypercube(self, key: Key) -> list[Key]:
        options = [self._options(key, axis) for axis in range(len(key))]
        floor = [0] * (len(options) + 1)  # cheapest possible cost of the axes still to choose
        for axis in range(len(options) - 1, -1, -1):
            floor[axis] = floor[axis + 1] + options[axis][0][0]
        best: tuple[int, int, list[Key]] = (_UNBOUNDED, _UNBOUNDED, [])
        partners: list[int | None] = [None] * len(options)

        def choose(axis: int, spent: int) -> None:
            nonlocal best
            if axis == len(options):
                found = self._evaluate(key, partners, best[:2])
                if found is not None:
                    best = found
                return
            for cost, partner in options[axis]:
                if spent + cost + floor[axis + 1] >= best[0] and best[2]:
                    break
                partners[axis] = partner
                choose(axis + 1, spent + cost)

        choose(0, 0)
        if not best[2]:
            raise RuntimeError(f"no protecting hypercube for cell {key}")  # unreachable
        return best[2]

    def _options(self, key: Key, axis: int) -> list[tuple[int, int | None]]:
        """Partner levels on one axis whose neighbouring cell exists, cheapest first."""
        found: list[tuple[int, int | None]] = []
        if axis == self.multi:
            found.append((0, None))  # no partner: the concern cells are not summed
        total = self.totals[axis]
        own = self.counts[key] - _LOWEST  # how far the cell itself can go down
        for level in range(total + 1):
            if level == key[axis]:
                continue
            neighbour = key[:axis] + (level,) + key[axis + 1 :]
            n = self.counts.get(neighbour)
            if n is None:
                continue
            opposite = total not in (level, key[axis])  # the neighbour moves against the cell
            if opposite and own + n - _LOWEST < self.protection:
                continue  # it would stop the cell going up before the range is wide enough
            found.append((0 if neighbour in self.hidden else n, level))
        found.sort(key=lambda o: (o[0], -1 if o[1] is None else o[1]))
        return found

    def _evaluate(
        self, key: Key, partners: Sequence[int | None], bound: tuple[int, int]
    ) -> tuple[int, int, list[Key]] | None:
        """The hypercube's (cost, new cells, corners) if it protects and beats ``bound``."""
        axes = [
            [(key[i], 1)]
            if p is None
            else [(key[i], 1), (p, 1 if self.totals[i] in (p, key[i]) else -1)]
            for i, p in enumerate(partners)
        ]
        cost = fresh = 0
        up = down = _UNBOUNDED  # how far t may go above and below zero
        corners: list[Key] = []
        signs: list[int] = []
        for combo in product(*axes):
            corner = tuple(level for level, _ in combo)
            n = self.counts.get(corner)
            if n is None:
                return None
            sign = 1
            for _, s in combo:
                sign *= s
            if corner not in self.hidden:
                cost += n
                fresh += 1
                if (cost, fresh) >= bound:
                    return None
            if sign > 0:
                down = min(down, n - _LOWEST)
            else:
                up = min(up, n - _LOWEST)
            corners.append(corner)
            signs.append(sign)
        if up + down >= self.protection and self.multi is not None:
            up, down = self._linked(corners, signs, up, down)
        if up + down < self.protection:
            return None
        return cost, fresh, corners

    def _linked(
        self, corners: Sequence[Key], signs: Sequence[int], up: int, down: int
    ) -> tuple[int, int]:
        """Narrow t so concern counts stay <= their distinct total and sum to >= it."""
        m = self.multi
        assert m is not None  # only called for tables with a multi-valued axis
        total = self.totals[m]
        moves: dict[Key, dict[int, int]] = {}
        for corner, sign in zip(corners, signs, strict=True):
            if any(corner[i] == self.totals[i] for i in range(len(corner)) if i != m):
                continue  # relations at margins follow from those below them
            at = corner[:m] + (total,) + corner[m + 1 :]
            moves.setdefault(at, {})[corner[m]] = sign
        for at, delta in moves.items():
            link = self.links[at]
            d_distinct = delta.pop(total, 0)
            bounds = [(link.mentions - link.distinct, sum(delta.values()) - d_distinct)]
            for level, d in delta.items():
                here = self.counts[at[:m] + (level,) + at[m + 1 :]]
                bounds.append((link.distinct - here, d_distinct - d))
            if d_distinct:
                rest = next((n for n, level in link.largest if level not in delta), 0)
                bounds.append((link.distinct - rest, d_distinct))
            for slack, rate in bounds:  # slack + rate * t >= 0
                if rate < 0:
                    up = min(up, slack // -rate)
                elif rate > 0:
                    down = min(down, slack // rate)
        return up, down


def _links(grid: Grid) -> dict[Key, _Link]:
    m = grid.multi_valued
    assert m is not None  # only for tables with a multi-valued axis
    total = grid.total(m)
    by_total: dict[Key, list[tuple[int, int]]] = {}
    for key, n in grid.counts.items():
        if key[m] != total and all(key[i] != grid.total(i) for i in range(len(key))):
            by_total.setdefault(key[:m] + (total,) + key[m + 1 :], []).append((n, key[m]))
    links: dict[Key, _Link] = {}
    for at, cells in by_total.items():
        cells.sort(key=lambda c: (-c[0], c[1]))
        links[at] = _Link(grid.counts[at], sum(n for n, _ in cells), tuple(cells[:3]))
    return links


def _cell(grid: Grid, key: Key, axes: tuple[int, ...], why: Why | None) -> Cell:
    values = {grid.dimensions[i]: grid.levels[i][key[i]] for i in axes}
    return Cell(values, None if why is not None else grid.counts[key], why)
