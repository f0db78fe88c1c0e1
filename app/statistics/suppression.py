"""Primary and secondary suppression of every linked table of a view at once.

The protection model (what an attacker may know, and what we guarantee):

- Published, possibly over many requests: every non-empty cell of every table of one to
  three of the view's dimensions, with all its margins down to the grand total, and over
  a dimension with a rollup (period: months into quarters) at either granularity. A cell
  is the same number in every table that shows it. Empty combinations are not listed, so
  an unlisted combination *is* a published zero, and a listed suppressed cell is >= 1.
- Primary: a listed cell with a count below ``min_cell`` is suppressed, in every table.
- Over a single-valued dimension a margin is the sum of its cells (a quarter the sum of
  its months). Over concerns (multi-valued) a referral counts in each of its concerns and
  the margin counts distinct referrals: each concern count is at most the margin and,
  because every referral names a concern, they add up to at least it.
- Secondary: every suppressed cell gets a *move* (app/statistics/moves.py, search.py): a
  whole-number shift of suppressed cells across all linked tables at once that keeps every
  published number and relation above. Each of its two ends is a full set of tables the
  attacker cannot rule out; we choose the cheapest move (smallest sum of newly hidden
  counts) whose ends shift the cell by at least ``protection`` (default ``min_cell``) in
  all, and any cell a move shifts less than that gets a move of its own. So however many
  tables an attacker combines (one linear program over every published number), each
  suppressed cell's feasible range is at least ``protection`` wide: never pinned down, and
  never shown to be below ``min_cell``.

Not covered: views with different dimensions or ``min_cell``, or callers counting different
networks, over the same referrals are protected apart, and so are the tables of different
data (before and after a new referral); see docs/statistics.md.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from app.statistics.cut import cut
from app.statistics.linked import Key, Linked, count, read
from app.statistics.search import Search
from app.statistics.tables import StatisticsTable, Value, Why, check_dimensions

__all__ = ["Protection", "protect", "protect_counted", "protected_table", "suppress"]


@dataclass(frozen=True, slots=True)
class Protection:
    """Every linked table's counts and the one suppression pattern they all share."""

    linked: Linked
    hidden: Mapping[Key, Why]
    min_cell: int
    protection: int
    # Per shape (0 for all, 1 leaf, 2 group on each axis), its cells: what a table cuts out.
    shapes: Mapping[tuple[int, ...], tuple[Key, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_shape: dict[tuple[int, ...], list[Key]] = {}
        axes = self.linked.axes
        for key in self.linked.counts:
            shape = tuple(0 if c == a.all else 2 if a.is_group(c) else 1 for a, c in zip(axes, key, strict=True))
            by_shape.setdefault(shape, []).append(key)
        object.__setattr__(self, "shapes", {s: tuple(sorted(keys)) for s, keys in by_shape.items()})

    def table(self, dimensions: Sequence[str], *, coarse: Iterable[str] = ()) -> StatisticsTable:
        """One published table (1 to 3 of the dimensions, rolled up where ``coarse``) for all time."""
        return cut(self, dimensions, coarse=frozenset(coarse))


def protect(
    records: Iterable[Mapping[str, object]],
    dimensions: Sequence[str],
    *,
    min_cell: int = 5,
    protection: int | None = None,
    rollups: Mapping[str, Callable[[Value], Value]] | None = None,
) -> Protection:
    """Count referrals into every table of 1 to 3 of ``dimensions`` and protect them together."""
    return protect_counted(count(read(records, dimensions), dimensions, rollups), min_cell, protection)


def protect_counted(linked: Linked, min_cell: int = 5, protection: int | None = None) -> Protection:
    if min_cell < 1:
        raise ValueError(f"min_cell must be at least 1, got {min_cell}")
    protect_ = min_cell if protection is None else protection
    if protect_ < 1:
        raise ValueError(f"protection must be at least 1, got {protect_}")
    return Protection(linked, suppress(linked, min_cell, protect_), min_cell, protect_)


def protected_table(
    records: Iterable[Mapping[str, object]],
    dimensions: Sequence[str],
    *,
    min_cell: int = 5,
    protection: int | None = None,
) -> StatisticsTable:
    """Count referrals by 1 to 3 dimensions and suppress what would identify people."""
    dims = check_dimensions(dimensions)
    return protect(records, dims, min_cell=min_cell, protection=protection).table(dims)


def suppress(linked: Linked, min_cell: int, protection: int) -> dict[Key, Why]:
    """Which cells to suppress, and why, so none can be narrowed below ``protection``."""
    hidden: dict[Key, Why] = {k: "primary" for k, n in linked.counts.items() if 0 < n < min_cell}
    search = Search(linked, protection, hidden)
    # How far up and down some full set of consistent tables moves each hidden cell.
    reach: dict[Key, list[int]] = {}

    def exposed(key: Key) -> bool:
        up, down = reach.get(key, (0, 0))
        return up + down < protection

    pending = sorted(hidden, key=search.priority)
    while pending:
        for key in pending:
            if not exposed(key):
                continue
            move = search.best(key)
            for cell in move.cells:
                hidden.setdefault(cell, "secondary")
            for end in move.ends:
                for cell, shift in end.items():
                    room = reach.setdefault(cell, [0, 0])
                    room[0], room[1] = max(room[0], shift), max(room[1], -shift)
        # A cell a move shifts only in part (spread over levels) needs a move of its own.
        pending = sorted((k for k in hidden if exposed(k)), key=search.priority)
    return hidden
