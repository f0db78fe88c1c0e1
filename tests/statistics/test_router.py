"""GET /v1/statistics: aggregate counts for national bodies, protected, in JSON and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.referrals import referral_body

from app.audit.models import AuditEntry
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
