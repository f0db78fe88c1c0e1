"""GET /v1/statistics: aggregate counts for national bodies, protected, in JSON and CSV."""

from __future__ import annotations

import csv
import importlib.util
import io
import random
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from support.referrals import referral_body

from app.audit.models import AuditEntry
from app.referrals.models import Referral
from app.state import AppState

Auth = Callable[..., dict[str, str]]
STATS = {"X-Purpose": "statistics"}
NATIONAL = "national-statistics"


@pytest.fixture
def population(app_client: TestClient, auth: Auth) -> None:
    """12 referrals in al-mina, 2 in a small village: the village's cells must not be published."""
    for index in range(14):
        district = "al-mina" if index < 12 else "small-village"
        risk = "high" if index % 2 else "medium"
        subject = referral_body()["subject"] | {"district": district, "identifiers": []}
        body = referral_body(subject=subject, risk_level=risk, concerns=["hate_speech"])
        assert app_client.post("/v1/referrals", json=body, headers=auth("school-north-referrer")).status_code == 201


def test_counts_with_small_cells_suppressed(
    app_client: TestClient, auth: Auth, population: None, state: AppState
) -> None:
    response = app_client.get("/v1/statistics", params={"dimensions": "district,risk_level"},
                              headers=auth(NATIONAL, **STATS))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dimensions"] == ["district", "risk_level"] and body["min_cell"] == 5
    published = [c for c in body["cells"] if not c.get("suppressed")]
    hidden = [c for c in body["cells"] if c.get("suppressed")]
    assert all(c["count"] >= 5 for c in published)
    assert all(c["count"] is None for c in hidden)
    assert {c["district"] for c in hidden} >= {"small-village"}
    for margin in body["margins"]:
        for cell in margin["cells"]:
            assert cell["count"] is None or cell["count"] >= 5
    assert "Yasmin" not in response.text
    with state.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.event_type == "aggregate_disclosure")).all()
    assert len(entries) == 1 and entries[0].recipient_agency == "national-prevention-authority"


def test_csv_output(app_client: TestClient, auth: Auth, population: None) -> None:
    response = app_client.get("/v1/statistics", params={"dimensions": "district"},
                              headers=auth(NATIONAL, **STATS, Accept="text/csv"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by_district = {r["district"]: r for r in rows}
    assert by_district["small-village"]["count"] == "" and by_district["small-village"]["suppressed"] == "true"
    # 14 in all and 12 in al-mina would give the village away: one of them must go too.
    assert "true" in (by_district["al-mina"]["suppressed"], by_district["*"]["suppressed"])
    assert all(int(r["count"]) >= 5 for r in rows if r["suppressed"] == "false")


@pytest.mark.parametrize(
    ("client_id", "params", "purpose", "status", "needle"),
    [
        (NATIONAL, {"dimensions": "district"}, None, 400, "purposes"),
        (NATIONAL, {"dimensions": "district"}, "safeguarding_assessment", 400, "purposes"),
        (NATIONAL, {"dimensions": "religion"}, "statistics", 400, "allowed"),
        (NATIONAL, {"dimensions": "district,narrative"}, "statistics", 400, "allowed"),
        (NATIONAL, {"dimensions": ""}, "statistics", 400, "allowed"),
        (NATIONAL, {"dimensions": "district,period,status,outcome"}, "statistics", 400, "allowed"),
        ("youth-ngo-reader", {"dimensions": "district"}, "statistics", 400, "purposes"),
        ("school-north-referrer", {"dimensions": "district"}, "statistics", 400, "purposes"),
    ],
)
def test_bad_requests_name_what_is_allowed_and_are_logged(
    app_client: TestClient, auth: Auth, state: AppState, client_id: str, params: dict[str, str],
    purpose: str | None, status: int, needle: str,
) -> None:
    headers = auth(client_id) if purpose is None else auth(client_id, **{"X-Purpose": purpose})
    response = app_client.get("/v1/statistics", params=params, headers=headers)
    assert response.status_code == status, response.text
    assert needle in response.json()
    with state.sessions() as session:
        denials = session.scalars(select(AuditEntry).where(AuditEntry.event_type == "denial")).all()
    assert len(denials) == 1


def test_the_coordinator_may_pull_statistics_too(app_client: TestClient, auth: Auth, population: None) -> None:
    response = app_client.get("/v1/statistics", params={"dimensions": "concerns,period", "period": "month"},
                              headers=auth("municipality-coordinator", **STATS))
    assert response.status_code == 200
    assert all(c["concerns"] == "hate_speech" for c in response.json()["cells"])


def _load(name: str) -> Any:
    """A sibling helper module (the tests are imported by path, not as a package)."""
    spec = importlib.util.spec_from_file_location(f"statistics_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


attack = _load("attack")

@pytest.fixture
def dense_population(app_client: TestClient, auth: Auth, state: AppState) -> list[dict[str, Any]]:
    """120 referrals over two quarters, two or three levels per dimension, one small district."""
    rng = random.Random(11)  # noqa: S311 - reproducible test data
    today = date.today()
    born = {"16_17": today.replace(year=today.year - 17), "18_24": today.replace(year=today.year - 20)}
    created: list[tuple[str, dict[str, Any]]] = []
    for index in range(120):
        record = {
            "district": "small-village" if index % 30 == 0 else rng.choice(["al-mina", "al-mina", "bab-al-tabbaneh"]),
            "status": rng.choice(["submitted", "closed"]),
            "age_band": rng.choice(["16_17", "18_24"]),
            "risk_level": rng.choice(["medium", "high"]),
            "concerns": rng.choice([["hate_speech"], ["hate_speech"], ["recruitment_contact"],
                                    ["hate_speech", "recruitment_contact"]]),
            "period": rng.choice(["2025-01", "2025-02", "2025-04"]),
        }
        record["outcome"] = "risk_reduced" if record["status"] == "closed" else None
        subject = referral_body()["subject"] | {"district": record["district"], "identifiers": [],
                                                 "date_of_birth": born[record["age_band"]].isoformat()}
        body = referral_body(subject=subject, risk_level=record["risk_level"], concerns=record["concerns"])
        response = app_client.post("/v1/referrals", json=body, headers=auth("school-north-referrer"))
        assert response.status_code == 201, response.text
        created.append((response.json()["id"], record))
    with state.sessions() as session:
        for referral_id, record in created:
            year, month = map(int, record["period"].split("-"))
            session.execute(update(Referral).where(Referral.id == referral_id).values(
                created_at=datetime(year, month, 15, 12, tzinfo=UTC), status=record["status"],
                outcome=record["outcome"]))
        session.commit()
    return [record for _, record in created]


def fetch_every_table(app_client: TestClient, auth: Auth) -> tuple[Any, list[str]]:
    """Every table the national statistics client may ask for, read as the attacker reads it."""
    refusal = app_client.get("/v1/statistics", params={"dimensions": ""}, headers=auth(NATIONAL, **STATS))
    allowed = refusal.json()["allowed"]
    published = attack.Published()
    for size in (1, 2, 3):
        for dims in combinations(allowed, size):
            for period in ("month", "quarter") if "period" in dims else ("quarter",):
                response = app_client.get("/v1/statistics", params={"dimensions": ",".join(dims), "period": period},
                                          headers=auth(NATIONAL, **STATS))
                assert response.status_code == 200, response.text
                published.add(response.json(), period)
    return published, allowed


class TestTheUnionOfAllowedTables:
    """Every table the agreement allows, combined in one linear program, hides what each hides."""

    def test_no_suppressed_cell_is_narrowed_by_combining_tables(
        self, app_client: TestClient, auth: Auth, dense_population: list[dict[str, Any]]
    ) -> None:
        published, allowed = fetch_every_table(app_client, auth)
        assert len(allowed) == 7 and len(published.tables) == 85
        assert not published.conflicts and not published.revealed, "every table shows a cell the same way"
        for cell, count in published.cells.items():
            assert count is None or count == attack.true_count(dense_population, cell), cell
        assert published.cells[()] == 120, "the grand total stays published"
        protection = 5  # the demo agreement's min_cell, which is also the promised range
        ranges = attack.feasible_ranges(published)
        for cell, (low, high) in ranges.items():
            assert low - 1e-6 <= attack.true_count(dense_population, cell) <= high + 1e-6, "attacker model is sound"
        narrowed = sorted(((r[1] - r[0], k, r) for k, r in ranges.items() if r[1] - r[0] < protection - 1e-6),
                          key=repr)
        assert ranges and not narrowed, f"{len(narrowed)} of {len(ranges)} suppressed cells narrowed: {narrowed[:5]}"


class TestWindows:
    """since and until are whole periods, and a window shows nothing the all-time tables hide."""

    @pytest.mark.parametrize(
        ("params", "slug", "refusal"),
        [
            ({"dimensions": "district", "period": "month", "since": "2025-01-15"}, "window-not-whole-periods", False),
            ({"dimensions": "district", "since": "2025-02-01"}, "window-not-whole-periods", False),
            ({"dimensions": "district", "until": "2025-04-30"}, "window-not-whole-periods", False),
            ({"dimensions": "district", "since": "2025-04-01", "until": "2025-04-01"}, "window-empty", False),
            ({"dimensions": "district,age_band,status", "since": "2025-04-01"}, "dimensions-invalid", True),
        ],
    )
    def test_a_window_is_whole_periods(
        self, app_client: TestClient, auth: Auth, state: AppState, params: dict[str, str], slug: str, refusal: bool
    ) -> None:
        response = app_client.get("/v1/statistics", params=params, headers=auth(NATIONAL, **STATS))
        assert response.status_code == 400, response.text
        assert response.json()["type"].endswith(slug)
        with state.sessions() as session:
            denials = session.scalars(select(AuditEntry).where(AuditEntry.event_type == "denial")).all()
        assert len(denials) == refusal  # a window of too many dimensions is refused like four dimensions

    def test_windowed_counts_are_sums_of_published_counts(
        self, app_client: TestClient, auth: Auth, dense_population: list[dict[str, Any]]
    ) -> None:
        published, _ = fetch_every_table(app_client, auth)
        windows = [("quarter", {"since": "2025-04-01"}), ("month", {"until": "2025-02-01"}),
                   ("month", {"since": "2025-02-01", "until": "2025-05-01"})]
        for dims in ("district", "district,period", "concerns,status", "concerns,risk_level,period"):
            for grain, window in windows:
                response = app_client.get("/v1/statistics", params={"dimensions": dims, "period": grain, **window},
                                          headers=auth(NATIONAL, **STATS))
                assert response.status_code == 200, response.text
                body = response.json()
                for cell in [*body["cells"], *(c for m in body["margins"] for c in m["cells"])]:
                    key = attack.cell_id({k: v for k, v in cell.items() if k not in ("count", "suppressed")})
                    if "period" in dict(key):
                        assert published.cells[key] == cell["count"], key
                        continue
                    parts = [n for k, n in published.cells.items()
                             if attack.grain_of(k) == grain and _inside(dict(k)["period"], window)
                             and {d: v for d, v in k if d != "period"} == dict(key)]
                    assert parts, key
                    expected = None if None in parts else sum(n for n in parts if n is not None)
                    assert cell["count"] == expected, (dims, window, key, parts)


def _inside(period: str, window: dict[str, str]) -> bool:
    start = (f"{period[:4]}-{3 * int(period[-1]) - 2:02d}-01" if "Q" in period else f"{period}-01")
    return window.get("since", "0000") <= start < window.get("until", "9999")
