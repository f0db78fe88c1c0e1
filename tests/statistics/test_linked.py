"""Every table of a view protected together: no combination of tables narrows a suppressed cell."""

import importlib.util
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.statistics.cut import cut
from app.statistics.periods import in_window, quarter_of
from app.statistics.suppression import Protection, protect


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"statistics_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


attack = _load("attack")
ROLLUPS = {"period": quarter_of}
Record = dict[str, Any]


def population(seed: int, size: int) -> list[Record]:
    """Four dimensions, a big, a middling and two small districts, six months over two quarters."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    return [
        {
            "concerns": rng.sample(["a", "b", "c", "d"], rng.choice([1, 1, 2])),
            "district": rng.choices(["big", "mid", "small", "tiny"], [10, 5, 2, 0.5])[0],
            "risk_level": rng.choice(["low", "medium", "high"]),
            "period": f"2025-{rng.randint(1, 6):02d}",
        }
        for _ in range(size)
    ]


def every_table(
    dims: Sequence[str], table: Callable[[tuple[str, ...], str], Mapping[str, Any]]
) -> Any:
    """Read every table of 1 to 3 of ``dims`` (both granularities of period) as the attacker."""
    published = attack.Published()
    for size in (1, 2, 3):
        for combo in combinations(dims, size):
            for grain in ("month", "quarter") if "period" in combo else ("quarter",):
                published.add(table(combo, grain), grain)
    return published


def jointly(protection: Protection) -> Callable[[tuple[str, ...], str], Mapping[str, Any]]:
    def table(combo: tuple[str, ...], grain: str) -> Mapping[str, Any]:
        return protection.table(combo, coarse=["period"] if grain == "quarter" else []).to_json()

    return table


def narrowed(published: Any, records: Sequence[Record], width: int, *, integral: bool = False) -> list[Any]:
    """Suppressed cells an attacker holding every table narrows below ``width``."""
    assert not published.conflicts and not published.revealed, "a cell is shown alike in every table"
    for cell, count in published.cells.items():
        assert count is None or count == attack.true_count(records, cell), cell
    found = []
    for cell, (low, high) in attack.feasible_ranges(published, integral=integral).items():
        truth = attack.true_count(records, cell)
        assert low - 1e-6 <= truth <= high + 1e-6, f"attacker model excludes the truth at {cell}"
        if high - low < width - 1e-6:
            found.append((cell, truth, (low, high)))
    return found


class TestEveryTableTogether:
    @pytest.mark.parametrize(("seed", "size"), [(1, 60), (2, 300), (3, 1000)])
    def test_no_suppressed_cell_is_narrowed_by_the_union_of_tables(self, seed: int, size: int) -> None:
        records = population(seed, size)
        dims = ["concerns", "district", "risk_level", "period"]
        protection = protect(records, dims, rollups=ROLLUPS)
        assert narrowed(every_table(dims, jointly(protection)), records, protection.protection) == []

    def test_tables_protected_apart_are_narrowed(self) -> None:
        """The attacker can fail: each table protected on its own leaks through the others."""
        records = population(2, 300)
        dims = ["concerns", "district", "risk_level", "period"]

        def apart(combo: tuple[str, ...], grain: str) -> Mapping[str, Any]:
            rolled = [r | {"period": quarter_of(r["period"])} for r in records] if grain == "quarter" else records
            return protect(rolled, combo).table(combo).to_json()

        published = every_table(dims, apart)
        ranges = attack.feasible_ranges(published)
        assert published.revealed or any(high - low < 5 for low, high in ranges.values())

    def test_a_cell_is_the_same_in_every_table(self) -> None:
        records = population(4, 400)
        dims = ["concerns", "district", "risk_level", "period"]
        published = every_table(dims, jointly(protect(records, dims, rollups=ROLLUPS)))
        assert not published.conflicts and not published.revealed

    def test_the_same_referrals_in_any_order_give_the_same_protection(self) -> None:
        records = population(5, 500)
        dims = ["concerns", "district", "risk_level", "period"]
        shuffled = random.Random(1).sample(records, len(records))  # noqa: S311
        first = protect(records, dims, rollups=ROLLUPS)
        again = protect(shuffled, dims, rollups=ROLLUPS)
        assert first.hidden == again.hidden and first.linked.counts == again.linked.counts

    def test_a_quarter_is_counted_as_the_sum_of_its_months(self) -> None:
        records = population(6, 200)
        linked = protect(records, ["concerns", "district", "period"], rollups=ROLLUPS).linked
        period = linked.axes[linked.axis("period")]
        for key, n in linked.counts.items():
            if period.is_group(key[2]):
                months = [key[:2] + (m,) for m in period.members[key[2]]]
                assert n == sum(linked.counts.get(m, 0) for m in months), key

    @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_small_populations_against_an_integer_attacker(self, data: st.DataObject) -> None:
        dims = data.draw(st.sampled_from([
            ["concerns", "district", "period"], ["district", "risk_level", "period"],
            ["concerns", "district", "risk_level"], ["concerns", "district", "risk_level", "period"],
        ]))  # fmt: skip
        record = st.fixed_dictionaries({
            "concerns": st.lists(st.sampled_from("ab"), min_size=1, max_size=2, unique=True),
            "district": st.sampled_from(["x", "y", "z"]),
            "risk_level": st.sampled_from(["low", "high"]),
            "period": st.sampled_from(["2025-01", "2025-02", "2025-04"]),
        })  # fmt: skip
        records = data.draw(st.lists(record, max_size=40))
        min_cell = data.draw(st.integers(2, 5))
        protection = protect(records, dims, min_cell=min_cell, rollups=ROLLUPS)
        found = narrowed(every_table(dims, jointly(protection)), records, protection.protection, integral=True)
        assert found == []


class TestWindows:
    """A window of whole periods publishes only sums of what all-time tables publish."""

    @pytest.fixture
    def protection(self) -> Protection:
        return protect(population(7, 800), ["concerns", "district", "risk_level", "period"], rollups=ROLLUPS)

    @pytest.mark.parametrize("dims", [("district",), ("district", "period"), ("concerns", "risk_level"),
                                      ("concerns", "district", "period")])
    @pytest.mark.parametrize(("grain", "since", "until"), [
        ("quarter", "2025-04-01", None), ("month", None, "2025-03-01"), ("month", "2025-02-01", "2025-06-01"),
    ])  # fmt: skip
    def test_a_windowed_number_is_a_sum_of_published_numbers(
        self, protection: Protection, dims: tuple[str, ...], grain: str, since: str | None, until: str | None
    ) -> None:
        from datetime import date

        coarse = frozenset({"period"}) if grain == "quarter" else frozenset()
        inside = in_window(date.fromisoformat(since) if since else None, date.fromisoformat(until) if until else None)
        windowed = cut(protection, dims, coarse=coarse, window=inside)
        full = cut(protection, tuple(dict.fromkeys((*dims, "period"))), coarse=coarse)
        everything = {attack.cell_id(c.values): c for c in [*full.cells, *(c for m in full.margins for c in m.cells)]}
        for cell in [*windowed.cells, *(c for m in windowed.margins for c in m.cells)]:
            if "period" in cell.values:
                assert inside(cell.values["period"])
                assert everything[attack.cell_id(cell.values)] == cell
                continue
            parts = [c for key, c in everything.items() if "period" in c.values and inside(c.values["period"])
                     and {d: v for d, v in c.values.items() if d != "period"} == cell.values]
            assert parts, cell
            if all(not p.suppressed for p in parts):
                assert cell.count == sum(p.count or 0 for p in parts)
            else:
                assert cell.suppressed and cell.count is None

    def test_a_window_holding_every_period_is_all_time(self, protection: Protection) -> None:
        windowed = cut(protection, ["district", "concerns"], coarse=frozenset({"period"}), window=in_window(None, None))
        assert windowed == cut(protection, ["district", "concerns"], coarse=frozenset({"period"}))

    def test_a_window_counts_as_the_period_dimension(self, protection: Protection) -> None:
        from datetime import date

        with pytest.raises(ValueError, match="at most two dimensions besides period"):
            cut(protection, ["concerns", "district", "risk_level"], window=in_window(date(2025, 4, 1), None))


def test_the_protection_of_100k_referrals_by_three_dimensions_is_fast() -> None:
    rng = random.Random(0)  # noqa: S311 - reproducible test data
    districts = [f"district-{i:02d}" for i in range(10)]
    weights = [30, 20, 15, 10, 8, 5, 3, 0.3, 0.1, 0.05]  # three small towns
    concerns = [f"concern-{i:02d}" for i in range(13)]
    records = [
        {
            "district": rng.choices(districts, weights)[0],
            "period": f"{rng.choice([2024, 2025])}-{rng.randint(1, 12):02d}",
            "concerns": rng.sample(concerns, rng.choice([1, 1, 2, 3])),
        }
        for _ in range(100_000)
    ]
    started = time.perf_counter()
    protection = protect(records, ["concerns", "district", "period"], rollups=ROLLUPS)
    table = protection.table(["district", "concerns", "period"], coarse=["period"])
    elapsed = time.perf_counter() - started
    assert len(table.cells) > 900 and table.total.count == 100_000
    assert elapsed < 8.0, f"{elapsed:.2f}s"  # about 1.5 s on one core; loose for shared CI
