"""Count referrals into every table of one to three of a view's dimensions, as one set of cells."""

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from operator import itemgetter
from typing import cast

from app.statistics.tables import DIMENSIONS, MAX_DIMENSIONS, MULTI_VALUED, Value

__all__ = ["Axis", "Key", "Linked", "Profile", "count", "read"]

# A cell of any linked table: one code per dimension of the view, the axis's ``all`` code
# where the table does not have that dimension; at most MAX_DIMENSIONS others.
Key = tuple[int, ...]
# One referral's codes: a leaf code per single-valued dimension, a tuple of them for concerns.
Profile = tuple[int | tuple[int, ...], ...]
# A referral as read: a value per dimension, a frozenset of them for concerns.
Row = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Axis:
    """One dimension's codes: its values (leaves), then any groups of them, then ``all``.

    Groups roll leaves up (months into quarters): a group's count is the sum of its leaves'.
    """

    name: str
    values: tuple[Value, ...]
    leaves: int
    parent: tuple[int, ...]  # a leaf's group (or ``all`` when there are no groups); a group's is ``all``
    members: Mapping[int, tuple[int, ...]]  # a group's leaves

    @property
    def all(self) -> int:
        return len(self.values)

    @property
    def multi(self) -> bool:
        return self.name in MULTI_VALUED

    def is_group(self, code: int) -> bool:
        return self.leaves <= code < self.all


@dataclass(frozen=True, slots=True)
class Linked:
    """Every non-empty cell of every table of 1 to 3 of the axes (and at each grouping)."""

    axes: tuple[Axis, ...]
    counts: Mapping[Key, int]
    profiles: tuple[Profile, ...]  # the distinct referrals, sorted: anchors for the search

    def axis(self, name: str) -> int:
        return next(i for i, a in enumerate(self.axes) if a.name == name)

    @property
    def multi(self) -> int | None:
        return next((i for i, a in enumerate(self.axes) if a.multi), None)


def read(records: Iterable[Mapping[str, object]], dimensions: Sequence[str]) -> Counter[Row]:
    """How many referrals share each combination of values (the data the protection is of)."""
    getters = [_reader(d) for d in dimensions]
    return Counter(tuple(get(r) for get in getters) for r in records)


def _reader(dimension: str) -> Callable[[Mapping[str, object]], object]:
    def single(record: Mapping[str, object]) -> object:
        value = record.get(dimension)
        return value if value is None or type(value) is str else _code(value)

    def multi(record: Mapping[str, object]) -> object:
        return _read(record, dimension, True)

    return multi if dimension in MULTI_VALUED else single


def count(
    rows: Mapping[Row, int],
    dimensions: Sequence[str],
    rollups: Mapping[str, Callable[[Value], Value]] | None = None,
) -> Linked:
    """Every cell of every linked table, from ``read``'s rows.

    ``rollups`` names dimensions whose values group into coarser ones (a month's quarter);
    tables then exist at both granularities. A referral counts once in each of its concerns;
    a table without concerns counts it once.
    """
    dims = _check(dimensions)
    roll = dict(rollups or {})
    axes = tuple(_axis(d, rows, i, roll.get(d)) for i, d in enumerate(dims))
    index = [{v: j for j, v in enumerate(a.values[: a.leaves])} for a in axes]
    encoded: dict[Row, Profile] = {row: _encode(row, axes, index) for row in rows}
    profiles = tuple(sorted(set(encoded.values()), key=_profile_order))
    flat = [encoded[row] for row, n in rows.items() for _ in range(n)]
    counts: dict[Key, int] = {}
    for axes_of, table in _tables(flat, axes).items():
        for grains in _groupings(axes_of, axes):
            for local, n in _regroup(table, axes_of, grains, axes).items():
                key = [a.all for a in axes]
                for i, code in zip(axes_of, local, strict=True):
                    key[i] = code
                counts[tuple(key)] = counts.get(tuple(key), 0) + n
    if not counts and axes:
        counts[tuple(a.all for a in axes)] = 0
    return Linked(axes, counts, profiles)


def _check(dimensions: Sequence[str]) -> tuple[str, ...]:
    dims = tuple(dimensions)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; choose from {list(DIMENSIONS)}")
    if not dims:
        raise ValueError("name at least one dimension")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dimensions repeat: {list(dims)}")
    return dims


def _read(record: Mapping[str, object], dimension: str, multi: bool) -> object:
    value = record.get(dimension)
    if multi:
        if isinstance(value, list | tuple | set | frozenset) and value:
            return frozenset(map(_code, value))
        raise ValueError(f"{dimension} must be a non-empty list, got {value!r}")
    return _code(value)


def _code(value: object) -> Value:
    if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"a dimension value must be a code (str or int), got {value!r}")


def _order(value: Value) -> tuple[int, int, str]:
    if value is None:
        return (2, 0, "")
    if isinstance(value, int):
        return (0, value, "")
    return (1, 0, value)


def _axis(name: str, rows: Iterable[Row], i: int, rollup: Callable[[Value], Value] | None) -> Axis:
    seen: set[Value] = set()
    for row in rows:
        value = row[i]
        seen.update(cast(frozenset[Value], value) if name in MULTI_VALUED else (cast(Value, value),))
    leaves = tuple(sorted(seen, key=_order))
    if rollup is None or name in MULTI_VALUED:
        return Axis(name, leaves, len(leaves), (len(leaves),) * len(leaves), {})
    groups = tuple(sorted({rollup(v) for v in leaves}, key=_order))
    at = {g: len(leaves) + j for j, g in enumerate(groups)}
    every = len(leaves) + len(groups)
    parent = tuple(at[rollup(v)] for v in leaves) + (every,) * len(groups)
    members = {code: tuple(j for j, v in enumerate(leaves) if at[rollup(v)] == code) for code in at.values()}
    return Axis(name, leaves + groups, len(leaves), parent, members)


def _encode(row: Row, axes: Sequence[Axis], index: Sequence[Mapping[Value, int]]) -> Profile:
    return tuple(
        tuple(sorted(index[i][v] for v in cast(frozenset[Value], value)))
        if axis.multi
        else index[i][cast(Value, value)]
        for i, (axis, value) in enumerate(zip(axes, row, strict=True))
    )


def _profile_order(profile: Profile) -> tuple[tuple[int, ...], ...]:
    return tuple(p if isinstance(p, tuple) else (p,) for p in profile)


def _tables(flat: Sequence[Profile], axes: Sequence[Axis]) -> dict[tuple[int, ...], Counter[tuple[int, ...]]]:
    """Each table of up to three axes at leaf level, keyed by its axes."""
    n = len(axes)
    top = min(MAX_DIMENSIONS, n)
    multi = next((i for i, a in enumerate(axes) if a.multi), None)
    exploded: list[Profile] = []
    if multi is not None:
        exploded = [
            p[:multi] + (c,) + p[multi + 1 :] for p in flat for c in cast(tuple[int, ...], p[multi])
        ]
    tables: dict[tuple[int, ...], Counter[tuple[int, ...]]] = {}
    for chosen in combinations(range(n), top):
        source = exploded if multi in chosen else flat
        tables[chosen] = _project(source, chosen)
    for size in range(top - 1, -1, -1):
        for chosen in combinations(range(n), size):
            parent = next(
                (p for p in tables if len(p) == size + 1 and set(chosen) < set(p)
                 and not axes[next(i for i in p if i not in chosen)].multi),
                None,
            )  # fmt: skip
            if parent is None:  # only through concerns: count again, once per referral
                tables[chosen] = _project(exploded if multi in chosen else flat, chosen)
                continue
            dropped = parent.index(next(i for i in parent if i not in chosen))
            summed: Counter[tuple[int, ...]] = Counter()
            for local, c in tables[parent].items():
                summed[local[:dropped] + local[dropped + 1 :]] += c
            tables[chosen] = summed
    return tables


def _project(source: Sequence[Profile], chosen: tuple[int, ...]) -> Counter[tuple[int, ...]]:
    if not chosen:
        return Counter({(): len(source)}) if source else Counter()
    getter = itemgetter(*chosen)
    if len(chosen) == 1:
        return Counter((cast(int, v),) for v in map(getter, source))
    return Counter(cast(Iterable[tuple[int, ...]], map(getter, source)))


def _groupings(axes_of: tuple[int, ...], axes: Sequence[Axis]) -> list[tuple[bool, ...]]:
    """Each granularity the table exists at: per axis, False for leaves, True for groups."""
    options = [(False, True) if axes[i].members else (False,) for i in axes_of]
    result: list[tuple[bool, ...]] = [()]
    for choice in options:
        result = [r + (c,) for r in result for c in choice]
    return result


def _regroup(
    table: Counter[tuple[int, ...]], axes_of: tuple[int, ...], grains: tuple[bool, ...], axes: Sequence[Axis]
) -> Counter[tuple[int, ...]]:
    if not any(grains):
        return table
    out: Counter[tuple[int, ...]] = Counter()
    for local, n in table.items():
        out[tuple(axes[i].parent[c] if g else c for i, c, g in zip(axes_of, local, grains, strict=True))] += n
    return out
