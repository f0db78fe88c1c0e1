"""Find, for one suppressed cell, the cheapest move (app/statistics/moves.py) that protects it.

Tried in turn, cheapest kept: every axis of the cell against a partner level; some axes with
their margins instead, the others against partners, each remaining axis spreading the move
over its levels; one axis against several partners at once; and, when nothing else has room,
more referrals like one of the cell's (which hides the grand total). See docs/statistics.md.
"""

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations, product

from app.statistics.linked import Key, Profile
from app.statistics.moves import UNBOUNDED, Ledger, Measure, Move, Room, Support, Unit, allocate, choose
from app.statistics.tables import MAX_DIMENSIONS

__all__ = ["Search"]

_PARTNERS = 16  # partner levels one bundled move spreads over
# How many complete moves one cell's search evaluates, by how many axes a moved cell may add.
_BUDGET = {0: 4000, 1: 80}


Complete = Callable[[dict[int, Support], Move | None], Move | None]


class Search(Room):
    """The cheapest protecting move for a cell, given what is hidden so far."""

    def priority(self, key: Key) -> tuple[int, int, int, Key]:
        """Margins first (their moves reach far and cover small cells), coarse before fine."""
        margins = self.n - self.width[key]
        groups = sum(a.is_group(c) for a, c in zip(self.axes, key, strict=True))
        return (-margins, -groups, self.counts[key], key)

    def best(self, key: Key) -> Move:
        inside = [i for i in range(self.n) if key[i] != self.alls[i]]
        found = self._moving(key, inside, None)
        # Then some of the cell's axes move with their margins instead of against a partner.
        for size in range(len(inside) - 1, 0, -1):
            for zero in combinations(inside, size):
                margins = [key[:j] + (self.alls[j],) + key[j + 1 :] for j in inside if j not in zero]
                if found is not None and max(map(self.cost_of, margins)) >= found.cost:
                    continue
                found = self._moving(key, list(zero), found) or found
        if found is None:
            found = self._fallback(key)
        return found

    # -- the kinds of move ------------------------------------------------------------

    def _moving(self, key: Key, zero: list[int], bound: Move | None) -> Move | None:
        """Moves in which the ``zero`` axes move against a partner (their ``all`` stays)."""
        if not zero:
            return None
        free = [i for i in range(self.n) if i not in zero]
        spare = MAX_DIMENSIONS - len(zero)  # axes a moved cell may add beyond the zero axes
        complete: Complete
        if spare == 0:
            def complete(chosen: dict[int, Support], best: Move | None) -> Move | None:
                return self.candidate(self._supports(chosen), best)
        elif spare == 1:
            def complete(chosen: dict[int, Support], best: Move | None) -> Move | None:
                return self._spread(key, chosen, free, best)
        else:  # one zero axis: its partners together, the rest at the levels of the cell's referrals
            return self._bundled(key, zero[0], bound)
        return self._branch(key, zero, complete, bound, _BUDGET[spare])

    def _bundled(self, key: Key, i: int, bound: Move | None) -> Move | None:
        """Axis ``i`` moves against several partners at once, every other axis at the levels of
        one of the cell's referrals: each (partner, referral) carries what its cells have room for.

        A small group (a district of three) is moved this way: no one partner has room in all
        the cells its referrals fall in, but together they often do.
        """
        down_ledger, up_ledger = Ledger(-1), Ledger(1)
        most_down = min(self.protection, self.counts[key] - 1)  # the cell itself falls no lower than 1
        for _, support in self._partners(key, i, least=2)[:_PARTNERS]:
            for profile in self.anchors(key):
                per_axis = [[support] if a == i else self._at_profile(key, a, profile) for a in range(self.n)]
                for supports in product(*per_axis):
                    cells = self.cells(supports)
                    if cells is None:
                        continue
                    constraints = self.constraints(cells)
                    down_ledger.take(cells, constraints, most_down)
                    up_ledger.take(cells, constraints, self.protection - down_ledger.moved)
                    if up_ledger.moved + down_ledger.moved >= self.protection:
                        return self._bundle_move(up_ledger, down_ledger, bound)
        return None

    def _bundle_move(self, up: Ledger, down: Ledger, bound: Move | None) -> Move | None:
        ends = (up.shifts(), down.shifts())
        cells = tuple(sorted(set(ends[0]) | set(ends[1])))
        move = Move(sum(self.counts[c] for c in cells if c not in self.hidden),
                    sum(1 for c in cells if c not in self.hidden), cells, ends)
        return move if bound is None or move.rank < bound.rank else None

    def _fallback(self, key: Key) -> Move:
        """More referrals like one of the cell's: every cell such a referral counts in moves up
        with it, none down, so t may rise without end (the grand total is one of those cells)."""
        found: Move | None = None
        for profile in self.anchors(key):
            per_axis = [self._at_profile(key, i, profile) for i in range(self.n)]
            for supports in product(*per_axis):
                move = self.candidate(list(supports), found)
                if move is not None and (found is None or move.rank < found.rank):
                    found = move
        if found is None:  # unreachable: the cell is listed, so it has a referral, whose cells all are
            raise RuntimeError(f"no protecting move for cell {key}")
        return found

    def _branch(self, key: Key, zero: list[int], complete: Complete, bound: Move | None, budget: int) -> Move | None:
        options = [self._partners(key, i) for i in zero]
        if any(not o for o in options):
            return None
        floor = [0] * (len(options) + 1)  # cheapest possible cost of the axes still to choose
        for depth in range(len(options) - 1, -1, -1):
            floor[depth] = floor[depth + 1] + options[depth][0][0]
        best = bound
        chosen: dict[int, Support] = {}
        left = budget

        def walk(depth: int, spent: int) -> None:
            nonlocal best, left
            if depth == len(zero):
                left -= 1
                found = complete(dict(chosen), best)
                if found is not None and (best is None or found.rank < best.rank):
                    best = found
                return
            for cost, support in options[depth]:
                if left <= 0 or (best is not None and spent + cost + floor[depth + 1] >= best.cost):
                    break
                chosen[zero[depth]] = support
                walk(depth + 1, spent + cost)

        walk(0, 0)
        return best if best is not bound else None

    def _spread(self, key: Key, chosen: dict[int, Support], free: Sequence[int], best: Move | None) -> Move | None:
        """The zero axes move against partners; every other axis spreads the move over its levels.

        With two zero axes a moved cell has room for one more axis, so each free axis carries
        the whole move on its own, split over as many of its levels as it needs.
        """
        base_supports = self._supports(chosen)
        base = self.cells(base_supports)
        if base is None:
            return None
        multi_free = self.multi in free
        head = self.measure(base, rows=not multi_free)
        if head.up + head.down < self.protection or (best is not None and head.cost >= best.cost):
            return None
        units: list[list[Unit]] = []
        for f in free:
            found = self._units(key, f, base_supports, base)
            if not found:
                return None
            units.append(found)
        pick: tuple[tuple[int, int], int, int, list[list[Unit]]] | None = None
        for down in range(self.protection + 1):
            up = self.protection - down
            if head.down < down or head.up < up:
                continue
            cost, fresh, chosen_units = head.cost, head.fresh, []
            for options, f in zip(units, free, strict=True):
                taken = choose(options, up, down, spread=f != self.multi)
                if taken is None:
                    break
                cost += sum(u.cost for u in taken)
                fresh += sum(u.fresh for u in taken)
                chosen_units.append(taken)
            else:
                if (best is None or (cost, fresh) < best.rank) and (pick is None or (cost, fresh) < pick[0]):
                    pick = ((cost, fresh), up, down, chosen_units)
        if pick is None:
            return None
        _, up, down, chosen_units = pick
        ends = []
        for amount, direction in ((up, 1), (down, -1)):
            end = {cell: sign * amount * direction for cell, sign in base.items()}
            for taken in chosen_units:
                allocate(taken, amount, direction, end)
            ends.append({cell: d for cell, d in end.items() if d})
        cells = tuple(sorted(set(ends[0]) | set(ends[1]) | set(base)))
        cost = sum(self.counts[c] for c in cells if c not in self.hidden)
        fresh = sum(1 for c in cells if c not in self.hidden)
        return Move(cost, fresh, cells, tuple(ends))

    def _units(self, key: Key, f: int, base_supports: list[Support], base: Mapping[Key, int]) -> list[Unit]:
        """The levels free axis ``f`` may spread a move over, each with what it costs and carries."""
        axis = self.axes[f]
        units: list[Unit] = []
        if axis.multi:  # concerns do not add up: one choice, bounded by the distinct totals
            for support in self._with_margin(key, f):
                levels = tuple((c, s) for c, s in support if c != self.alls[f])
                cells = self.cells(base_supports[:f] + [levels] + base_supports[f + 1 :]) if levels else {}
                if cells is None:
                    continue
                measure = self.measure(cells, rows=False)
                up, down = self.row_limits({**base, **cells}, measure.up, measure.down)
                units.append(Unit(measure.cost, measure.fresh, up, down, {}, ((cells, up, down),)))
            return units

        def slot(code: int) -> tuple[dict[Key, int], Measure] | None:
            cells = self.cells(base_supports[:f] + [((code, 1),)] + base_supports[f + 1 :])
            return None if cells is None else (cells, self.measure(cells))

        x = key[f]
        groups: list[int | None]
        if x == axis.all:
            groups = list(sorted(axis.members)) if axis.members else [None]
            leaves_of = {g: axis.members[g] if g is not None else tuple(range(axis.leaves)) for g in groups}
        elif axis.is_group(x):
            groups, leaves_of = [x], {x: axis.members[x]}
        else:
            group = axis.parent[x] if axis.members else None
            groups, leaves_of = [group], {group: (x,)}
        for group in groups:
            shared: dict[Key, int] = {}
            cap = Measure(0, 0, UNBOUNDED, UNBOUNDED)
            if group is not None:
                found = slot(group)
                if found is None:
                    continue
                shared, cap = found
            slots = [(cells, m) for cells, m in filter(None, map(slot, leaves_of[group]))]
            if group is None:  # a flat axis: every leaf is a unit of its own
                units.extend(Unit(m.cost, m.fresh, m.up, m.down, {}, ((cells, m.up, m.down),)) for cells, m in slots)
                continue
            slots.sort(key=lambda sm: (sm[1].cost, -sm[1].up - sm[1].down))
            taken, up, down = [], 0, 0
            for cells, m in slots:  # the cheapest leaves that fill the group's own room
                if up >= cap.up and down >= cap.down:
                    break
                taken.append((cells, m))
                up, down = up + m.up, down + m.down
            if not taken:
                continue
            units.append(Unit(
                cap.cost + sum(m.cost for _, m in taken), cap.fresh + sum(m.fresh for _, m in taken),
                min(cap.up, up), min(cap.down, down), shared,
                tuple((cells, m.up, m.down) for cells, m in taken),
            ))
        return units

    # -- supports on one axis -----------------------------------------------------------

    def _partners(self, key: Key, i: int, least: int | None = None) -> list[tuple[int, Support]]:
        """Supports that move the cell's level against another (``all`` unmoved), cheapest first."""
        axis, x = self.axes[i], key[i]
        supports: list[Support] = []
        if axis.multi:
            supports.append(((x, 1),))  # a concern alone: its distinct total bounds it, no sum
            supports.extend(((x, 1), (b, -1)) for b in range(axis.leaves) if b != x)
        elif axis.is_group(x):
            for a in axis.members[x]:
                supports.extend(
                    ((a, 1), (x, 1), (b, -1), (axis.parent[b], -1))
                    for b in range(axis.leaves)
                    if axis.parent[b] != x
                )
        else:
            for b in range(axis.leaves):
                if b == x:
                    continue
                if axis.members and axis.parent[b] != axis.parent[x]:
                    supports.append(((x, 1), (b, -1), (axis.parent[x], 1), (axis.parent[b], -1)))
                else:
                    supports.append(((x, 1), (b, -1)))
        # A neighbour moving against the cell must fall by what the cell cannot: the cell
        # falls by at most its count - 1, so the two together cover the protection.
        if least is None:
            least = self.protection - (self.counts[key] - 1) + 1
        found: list[tuple[int, Support]] = []
        for support in supports:
            cost = self._line_cost(key, i, support, least)
            if cost is not None:
                found.append((cost, support))
        found.sort()
        return found

    def _with_margin(self, key: Key, i: int) -> list[Support]:
        """Supports that include ``all`` and move the cell's own code on this axis."""
        axis, x, every = self.axes[i], key[i], self.alls[i]
        if x == every:
            if axis.multi:
                return [((every, 1),)] + [((a, 1), (every, 1)) for a in range(axis.leaves)]
            return [self._leaf_up(i, a) for a in range(axis.leaves)]
        if axis.is_group(x):
            return [((a, 1), (x, 1), (every, 1)) for a in axis.members[x]]
        return [((x, 1), (every, 1))] if axis.multi else [self._leaf_up(i, x)]

    def _at_profile(self, key: Key, i: int, profile: Profile) -> list[Support]:
        axis, x, every = self.axes[i], key[i], self.alls[i]
        level = profile[i]
        if axis.multi:
            if x != every:
                return [((x, 1), (every, 1))]
            assert isinstance(level, tuple)  # a profile's concerns
            return [((c, 1), (every, 1)) for c in level] + [((every, 1),)]
        assert isinstance(level, int)
        if axis.is_group(x):
            return [((level, 1), (x, 1), (every, 1))]
        return [self._leaf_up(i, level if x == every else x)]

    def _leaf_up(self, i: int, leaf: int) -> Support:
        axis = self.axes[i]
        group = ((axis.parent[leaf], 1),) if axis.members else ()
        return ((leaf, 1), *group, (self.alls[i], 1))

    def _supports(self, chosen: Mapping[int, Support]) -> list[Support]:
        return [chosen.get(i, ((self.alls[i], 1),)) for i in range(self.n)]

    # -- cells, cost, range -----------------------------------------------------------

    def _line_cost(self, key: Key, i: int, support: Support, least: int) -> int | None:
        """What hiding the cell's neighbours along this axis costs; None if one is unlisted
        or moves against the cell with fewer than ``least``."""
        cost = 0
        inside = self.width[key] - (key[i] != self.alls[i])
        for code, sign in support:
            if code == key[i] or (code != self.alls[i] and inside == MAX_DIMENSIONS):
                continue
            neighbour = key[:i] + (code,) + key[i + 1 :]
            n = self.counts.get(neighbour)
            if n is None or (sign < 0 and n < least):
                return None
            cost += 0 if neighbour in self.hidden else n
        return cost

