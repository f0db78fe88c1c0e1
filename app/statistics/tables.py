"""Count referrals into a frequency table with every margin, and the published table's shape."""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, cast

__all__ = [
    "DIMENSIONS",
    "MULTI_VALUED",
    "Cell",
    "Grid",
    "Key",
    "Margin",
    "StatisticsTable",
    "Value",
    "Why",
    "tabulate",
]

DIMENSIONS = ("concerns", "district", "age_band", "risk_level", "status", "outcome", "period")
# A referral names one or more concerns (the referral schema requires at least one).
MULTI_VALUED = frozenset({"concerns"})
MAX_DIMENSIONS = 3

Value = str | int | None
Why = Literal["primary", "secondary"]
# A cell's position: one level index per dimension; index len(levels[i]) is the margin ("all").
Key = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Grid:
    """Every non-empty cell of a table and of all its margins, keyed by level indices."""

    dimensions: tuple[str, ...]
    levels: tuple[tuple[Value, ...], ...]
    multi_valued: int | None  # index of the multi-valued dimension, if the table has one
    counts: Mapping[Key, int]

    def total(self, axis: int) -> int:
        """The level index that stands for the margin over ``axis``."""
        return len(self.levels[axis])


@dataclass(frozen=True, slots=True)
class Cell:
    """One published number, or its place when suppressed; ``why`` is never published."""

    values: Mapping[str, Value]
    count: int | None
    why: Why | None = None

    @property
    def suppressed(self) -> bool:
        return self.why is not None

    def to_json(self) -> dict[str, Value | bool]:
        body: dict[str, Value | bool] = dict(self.values)
        body["count"] = self.count
        if self.suppressed:
            body["suppressed"] = True
        return body


@dataclass(frozen=True, slots=True)
class Margin:
    """A lower-dimensional marginal table; no dimensions is the grand total."""

    dimensions: tuple[str, ...]
    cells: tuple[Cell, ...]

    def to_json(self) -> dict[str, object]:
        return {"dimensions": list(self.dimensions), "cells": [c.to_json() for c in self.cells]}


@dataclass(frozen=True, slots=True)
class StatisticsTable:
    """A protected frequency table: its cells and every margin, grand total last."""

    dimensions: tuple[str, ...]
    min_cell: int
    protection: int
    cells: tuple[Cell, ...]
    margins: tuple[Margin, ...]

    @property
    def total(self) -> Cell:
        return self.margins[-1].cells[0]

    def to_json(self) -> dict[str, object]:
        return {
            "dimensions": list(self.dimensions),
            "min_cell": self.min_cell,
            "cells": [c.to_json() for c in self.cells],
            "margins": [m.to_json() for m in self.margins],
        }


def check_dimensions(dimensions: Sequence[str]) -> tuple[str, ...]:
    """The requested dimensions, or ValueError naming what is wrong with them."""
    dims = tuple(dimensions)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; choose from {list(DIMENSIONS)}")
    if not 1 <= len(dims) <= MAX_DIMENSIONS:
        raise ValueError(f"ask for 1 to {MAX_DIMENSIONS} dimensions, not {len(dims)}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dimensions repeat: {list(dims)}")
    return dims


def tabulate(records: Iterable[Mapping[str, object]], dimensions: Sequence[str]) -> Grid:
    """Count records (one mapping per referral) into every cell and margin.

    A missing or None value is its own level (published as null). Over a multi-valued
    dimension a referral counts once in each of its distinct values, and margins over that
    dimension count distinct referrals, so they are not the sum of the cells below them.
    """
    dims = check_dimensions(dimensions)
    multi = [i for i, d in enumerate(dims) if d in MULTI_VALUED]
    m = multi[0] if multi else None
    raw = Counter(tuple(_read(r, d, i == m) for i, d in enumerate(dims)) for r in records)
    levels = tuple(_levels(raw, i, i == m) for i in range(len(dims)))
    index = [{v: j for j, v in enumerate(lv)} for lv in levels]
    counts: Counter[Key] = Counter()
    for row, n in raw.items():
        key = [index[i][cast(Value, v)] if i != m else 0 for i, v in enumerate(row)]
        if m is None:
            counts[tuple(key)] += n
            continue
        key[m] = len(levels[m])
        counts[tuple(key)] += n  # distinct referrals
        for value in _members(row[m]):
            key[m] = index[m][value]
            counts[tuple(key)] += n
    for axis in range(len(dims)):
        if axis != m:
            _add_margin(counts, axis, len(levels[axis]))
    return Grid(dims, levels, m, dict(counts))


def table_layout(grid: Grid) -> list[tuple[tuple[int, ...], list[Key]]]:
    """Each published table (the full one, then margins, grand total last) and its keys."""
    n = len(grid.dimensions)
    by_axes: dict[tuple[int, ...], list[Key]] = {}
    for key in grid.counts:
        axes = tuple(i for i in range(n) if key[i] != grid.total(i))
        by_axes.setdefault(axes, []).append(key)
    order = [axes for size in range(n, -1, -1) for axes in combinations(range(n), size)]
    return [(axes, sorted(by_axes[axes])) for axes in order if axes in by_axes]


def _read(record: Mapping[str, object], dimension: str, multi: bool) -> object:
    value = record.get(dimension)
    if multi:
        if isinstance(value, list | tuple | set | frozenset) and value:
            return frozenset(value)
        raise ValueError(f"{dimension} must be a non-empty list, got {value!r}")
    return _code(value)


def _code(value: object) -> Value:
    if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"a dimension value must be a code (str or int), got {value!r}")


def _members(value: object) -> frozenset[Value]:
    assert isinstance(value, frozenset)  # _read guarantees it
    return value


def _levels(raw: Counter[tuple[object, ...]], axis: int, multi: bool) -> tuple[Value, ...]:
    seen: set[object] = set()
    for row in raw:
        seen.update(_members(row[axis]) if multi else (row[axis],))
    return tuple(sorted(map(_code, seen), key=_order))


def _order(value: Value) -> tuple[int, int, str]:
    if value is None:
        return (2, 0, "")
    if isinstance(value, int):
        return (0, value, "")
    return (1, 0, value)


def _add_margin(counts: Counter[Key], axis: int, total: int) -> None:
    for key, n in list(counts.items()):
        if key[axis] != total:
            counts[key[:axis] + (total,) + key[axis + 1 :]] += n
