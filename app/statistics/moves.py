"""Moves of hidden cells that keep every linked table, and how far the counts let them go.

A move shifts some cells of the linked tables by whole numbers so that every sum relation
still holds (in each table, and between months and quarters): it is a different set of
tables an attacker reading all of them cannot rule out, as long as every moved cell stays
>= 1 and every concern count stays between its distinct total and their sum. Most moves are
a product of one vector per dimension (a "support"): on each axis some codes move by +t or
-t, a group by the sum of its leaves and ``all`` by the sum of the leaves (except over
concerns, whose ``all`` counts distinct referrals and may move on its own); the cells moved
are the products of those codes that a published table has (at most three axes not
``all``), each by the product of the signs. See docs/statistics.md.
"""

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, product

from app.statistics.linked import Key, Linked, Profile
from app.statistics.tables import MAX_DIMENSIONS, Why

__all__ = ["UNBOUNDED", "Constraint", "Ledger", "Measure", "Move", "Room", "Support", "Unit", "allocate", "choose"]

UNBOUNDED = sys.maxsize
_ANCHORS = 4  # referrals of a cell tried as the levels of its free axes

Support = tuple[tuple[int, int], ...]  # (code, sign) on one axis
Constraint = tuple[tuple[object, ...], int, int]  # (what, slack, rate): slack + rate * t >= 0


@dataclass(frozen=True, slots=True)
class Row:
    """The concern cells of one combination of the other axes, against its distinct total."""

    distinct: int
    mentions: int
    largest: tuple[tuple[int, int], ...]  # every (count, concern), largest first


@dataclass(frozen=True, slots=True)
class Move:
    """A move that protects: the cells it hides, what they cost (their counts), how many are
    new, and how far it moves each cell at its two ends (a full set of consistent tables each)."""

    cost: int
    fresh: int
    cells: tuple[Key, ...]
    ends: tuple[Mapping[Key, int], ...]

    @property
    def rank(self) -> tuple[int, int]:
        return (self.cost, self.fresh)


@dataclass(frozen=True, slots=True)
class Unit:
    """A level of a free axis that may carry part of a move: a leaf, or a group with its leaves."""

    cost: int
    fresh: int
    up: int  # the most it carries upwards
    down: int
    shared: Mapping[Key, int]  # cells that move by the unit's whole share (a group's), with signs
    slots: tuple[tuple[Mapping[Key, int], int, int], ...]  # cells moving by one leaf's part, its up, down


@dataclass(frozen=True, slots=True)
class Measure:
    """What hiding some cells costs, and how far a move of them by t can go each way."""

    cost: int
    fresh: int
    up: int  # how far t may rise
    down: int  # how far t may fall


class Ledger:
    """A sum of moves in one direction, each as large as the room the earlier ones left allows."""

    def __init__(self, direction: int) -> None:
        self.direction = direction
        self.room: dict[tuple[object, ...], int] = {}
        self.end: dict[Key, int] = {}
        self.moved = 0

    def take(self, cells: Mapping[Key, int], constraints: Sequence[Constraint], need: int) -> None:
        amount = need - self.moved
        for what, slack, rate in constraints:
            if self.direction * rate < 0:
                amount = min(amount, self.room.get(what, slack) // -(self.direction * rate))
        if amount <= 0:
            return
        for what, slack, rate in constraints:
            self.room[what] = self.room.get(what, slack) + self.direction * rate * amount
        for cell, sign in cells.items():
            self.end[cell] = self.end.get(cell, 0) + self.direction * sign * amount
        self.moved += amount

    def shifts(self) -> dict[Key, int]:
        return {c: d for c, d in self.end.items() if d}


class Room:
    """The linked counts, what is hidden so far, and how far a move of given cells can go."""

    def __init__(self, linked: Linked, protection: int, hidden: Mapping[Key, Why]) -> None:
        self.linked = linked
        self.counts = linked.counts
        self.hidden = hidden
        self.protection = protection
        self.axes = linked.axes
        self.alls = tuple(a.all for a in linked.axes)
        self.n = len(linked.axes)
        self.multi = linked.multi
        self.rows = _rows(linked) if self.multi is not None else {}
        self.width = {k: sum(c != a for c, a in zip(k, self.alls, strict=True)) for k in linked.counts}
        self.postings = _postings(linked)
        self._anchor_cache: dict[Key, list[Profile]] = {}

    def cells(self, supports: Sequence[Support]) -> dict[Key, int] | None:
        """The cells a product of supports moves, with their signs; None if one is unlisted."""
        counts, alls = self.counts, self.alls
        template = list(alls)
        moving: list[tuple[int, Support]] = []
        for i, support in enumerate(supports):
            if len(support) == 1 and support[0][0] == alls[i]:
                continue  # only this axis's margin: every moved cell has it
            moving.append((i, support))
        out: dict[Key, int] = {}
        for combo in product(*(support for _, support in moving)):
            key = template[:]
            sign, used = 1, 0
            for (i, _), (code, s) in zip(moving, combo, strict=True):
                key[i] = code
                sign *= s
                used += code != alls[i]
            if used > MAX_DIMENSIONS:
                continue
            cell = tuple(key)
            if cell not in counts:
                return None
            out[cell] = sign
        return out

    def candidate(self, supports: Sequence[Support], best: Move | None) -> Move | None:
        cells = self.cells(supports)
        if cells is None:
            return None
        measure = self.measure(cells, rows=False)
        if (best is not None and (measure.cost, measure.fresh) >= best.rank) or (
            measure.up + measure.down < self.protection
        ):
            return None
        up, down = measure.up, measure.down
        if self.multi is not None:
            up, down = self.row_limits(cells, up, down)
            if up + down < self.protection:
                return None
        ends = ({c: s * up for c, s in cells.items()}, {c: -s * down for c, s in cells.items()})
        return Move(measure.cost, measure.fresh, tuple(cells), ends)

    def measure(self, cells: Mapping[Key, int], *, rows: bool = True) -> Measure:
        cost = fresh = 0
        up = down = UNBOUNDED
        counts, hidden = self.counts, self.hidden
        for cell, sign in cells.items():
            n = counts[cell]
            if cell not in hidden:
                cost += n
                fresh += 1
            if sign > 0:
                if n <= down:
                    down = n - 1
            elif n <= up:
                up = n - 1
        if rows and self.multi is not None:
            up, down = self.row_limits(cells, up, down)
        return Measure(cost, fresh, up, down)

    def row_limits(self, cells: Mapping[Key, int], up: int, down: int) -> tuple[int, int]:
        """Narrow t so each concern count stays <= its distinct total and they sum to >= it."""
        m = self.multi
        assert m is not None  # only with concerns
        total, width = self.alls[m], self.width
        moves: dict[Key, dict[int, int]] = {}
        for cell, sign in cells.items():
            if width[cell] - (cell[m] != total) > 2:
                continue  # a row of three other axes has no published concern cells
            moves.setdefault(cell[:m] + (total,) + cell[m + 1 :], {})[cell[m]] = sign
        counts = self.counts
        for row, delta in moves.items():
            info = self.rows[row]
            d_all = delta.pop(total, 0)
            bounds = [(info.mentions - info.distinct, sum(delta.values()) - d_all)]
            for level, d in delta.items():
                bounds.append((info.distinct - counts[row[:m] + (level,) + row[m + 1 :]], d_all - d))
            if d_all:
                rest = next((c for c, level in info.largest if level not in delta), 0)
                bounds.append((info.distinct - rest, d_all))
            for slack, rate in bounds:  # slack + rate * t >= 0
                if rate < 0:
                    if slack < up * -rate:
                        up = slack // -rate
                elif rate > 0 and slack < down * rate:
                    down = slack // rate
        return up, down

    def constraints(self, cells: Mapping[Key, int]) -> list[Constraint]:
        """Every inequality a move by t of these cells must keep: (what, slack, rate), slack + rate * t >= 0."""
        found: list[Constraint] = [(("cell", c), self.counts[c] - 1, sign) for c, sign in cells.items()]
        m = self.multi
        if m is None:
            return found
        total, width = self.alls[m], self.width
        moves: dict[Key, dict[int, int]] = {}
        for cell, sign in cells.items():
            if width[cell] - (cell[m] != total) <= 2:
                moves.setdefault(cell[:m] + (total,) + cell[m + 1 :], {})[cell[m]] = sign
        for row, delta in moves.items():
            info = self.rows[row]
            d_all = delta.pop(total, 0)
            rate = sum(delta.values()) - d_all
            if rate:
                found.append((("sum", row), info.mentions - info.distinct, rate))
            for n, level in info.largest:
                rate = d_all - delta.get(level, 0)
                if rate:
                    found.append((("under", row, level), info.distinct - n, rate))
        return found

    def cost_of(self, key: Key) -> int:
        return 0 if key in self.hidden else self.counts.get(key, 0)

    def anchors(self, key: Key) -> list[Profile]:
        """A few referrals in the cell, by their codes (in a fixed order)."""
        if key not in self._anchor_cache:
            self._anchor_cache[key] = self._find_anchors(key)
        return self._anchor_cache[key]

    def _find_anchors(self, key: Key) -> list[Profile]:
        profiles = self.linked.profiles
        candidates: Sequence[int] | None = None
        for i, (axis, x) in enumerate(zip(self.axes, key, strict=True)):
            if x == axis.all:
                continue
            if axis.is_group(x):
                ids: Sequence[int] = sorted(chain.from_iterable(self.postings[i].get(a, ()) for a in axis.members[x]))
            else:
                ids = self.postings[i].get(x, ())
            if candidates is None or len(ids) < len(candidates):
                candidates = ids
        found: list[Profile] = []
        for index in range(len(profiles)) if candidates is None else candidates:
            if self._holds(profiles[index], key):
                found.append(profiles[index])
                if len(found) == _ANCHORS:
                    break
        return found

    def _holds(self, profile: Profile, key: Key) -> bool:
        for axis, x, level in zip(self.axes, key, profile, strict=True):
            if x == axis.all:
                continue
            if axis.multi:
                if x not in level:  # type: ignore[operator]
                    return False
            elif (axis.parent[level] if axis.is_group(x) else level) != x:  # type: ignore[index]
                return False
        return True


def _rows(linked: Linked) -> dict[Key, Row]:
    m = linked.multi
    assert m is not None  # only with concerns
    total = linked.axes[m].all
    by_row: dict[Key, list[tuple[int, int]]] = {}
    for key, n in linked.counts.items():
        if key[m] != total:
            by_row.setdefault(key[:m] + (total,) + key[m + 1 :], []).append((n, key[m]))
    rows: dict[Key, Row] = {}
    for row, cells in by_row.items():
        cells.sort(key=lambda c: (-c[0], c[1]))
        rows[row] = Row(linked.counts[row], sum(n for n, _ in cells), tuple(cells))
    return rows


def _postings(linked: Linked) -> list[dict[int, list[int]]]:
    """Per axis, per leaf: the indices of the profiles with that leaf."""
    postings: list[dict[int, list[int]]] = [{} for _ in linked.axes]
    for index, profile in enumerate(linked.profiles):
        for i, level in enumerate(profile):
            for leaf in level if isinstance(level, tuple) else (level,):
                postings[i].setdefault(leaf, []).append(index)
    return postings


def choose(options: Sequence[Unit], up: int, down: int, *, spread: bool) -> list[Unit] | None:
    """The cheapest units (one, unless ``spread``) that carry ``up`` and ``down`` between them."""
    if not spread:
        fitting = [u for u in options if u.up >= up and u.down >= down]
        return [min(fitting, key=lambda u: (u.cost, u.fresh))] if fitting else None
    taken: list[Unit] = []
    have_up = have_down = 0
    for unit in sorted(options, key=lambda u: (u.cost, -min(u.up, up) - min(u.down, down))):
        if have_up >= up and have_down >= down:
            break
        if (have_up < up and unit.up > 0) or (have_down < down and unit.down > 0):
            taken.append(unit)
            have_up, have_down = have_up + unit.up, have_down + unit.down
    return taken if have_up >= up and have_down >= down else None


def allocate(units: Sequence[Unit], amount: int, direction: int, end: dict[Key, int]) -> None:
    """Spread ``amount`` over the units (each within its room) and add the shifts to ``end``."""
    left = amount
    for unit in units:
        share = min(left, unit.up if direction > 0 else unit.down)
        if share <= 0:
            continue
        left -= share
        for cell, sign in unit.shared.items():
            end[cell] = end.get(cell, 0) + sign * share * direction
        rest = share
        for cells, up, down in unit.slots:
            part = min(rest, up if direction > 0 else down)
            rest -= part
            for cell, sign in cells.items():
                end[cell] = end.get(cell, 0) + sign * part * direction
    assert left == 0  # _choose took enough room
