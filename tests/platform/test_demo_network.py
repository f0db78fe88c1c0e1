"""The demo network a dev start seeds: referrals in every status, so each role's first call shows something."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.settings import suite_settings

from app.config import Settings
from app.db import transaction
from app.demo import demo_cases_present, seed_demo, seed_demo_cases
from app.state import AppState

EVERY_CITY_STATUS = {"submitted", "triaged", "accepted", "declined", "assigned", "in_intervention", "closed",
                     "withdrawn"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """As a first `make run` starts: dev, the demo seeded into the empty database."""
    return suite_settings(tmp_path, database_url, seed_demo=True)


Auth = Callable[..., dict[str, str]]


def items(client: TestClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


def test_the_coordinator_sees_a_referral_in_every_status(app_client: TestClient, auth: Auth) -> None:
    city = items(app_client, "/v1/referrals?limit=100",
                 auth("municipality-coordinator", **{"X-Purpose": "safeguarding_assessment"}))
    assert {r["status"] for r in city} == EVERY_CITY_STATUS
    queue = items(app_client, "/v1/referrals?status=submitted",
                  auth("municipality-coordinator", **{"X-Purpose": "safeguarding_assessment"}))
    assert queue


def test_the_transferred_referral_waits_for_the_town_coordinator(app_client: TestClient, auth: Auth) -> None:
    town = items(app_client, "/v1/referrals?limit=100",
                 auth("town-coordinator", **{"X-Purpose": "safeguarding_assessment"}))
    histories = [[step["status"] for step in r["status_history"]] for r in town]
    assert any("transferred" in h and h[-1] == "submitted" for h in histories), histories
    assert {r["status"] for r in town} >= {"submitted", "accepted"}


@pytest.mark.parametrize("partner", ["youth-ngo-reader", "religious-council-reader", "town-youth-reader"])
def test_every_partner_has_summaries_to_sync(app_client: TestClient, auth: Auth, partner: str) -> None:
    summaries = items(app_client, "/v1/summaries", auth(partner, **{"X-Purpose": "service_provision"}))
    assert summaries
    assert {s["status"] for s in summaries} <= {"accepted", "assigned", "in_intervention"}


@pytest.mark.parametrize(("client_id", "purpose"), [
    ("school-north-referrer", "safeguarding_assessment"),
    ("social-services-caseworker", "intervention_planning"),
    ("youth-ngo-caseworker", "service_provision"),
    ("town-school-referrer", "safeguarding_assessment"),
])
def test_referrers_and_assigned_caseworkers_see_their_cases(
    app_client: TestClient, auth: Auth, client_id: str, purpose: str
) -> None:
    assert items(app_client, "/v1/referrals", auth(client_id, **{"X-Purpose": purpose}))


def test_the_log_holds_the_demo_history_and_statistics_answer(app_client: TestClient, auth: Auth) -> None:
    entries = items(app_client, "/v1/audit/entries?limit=100", auth("independent-auditor"))
    kinds = {e["event_type"] for e in entries}
    assert {"create", "transition"} <= kinds
    statistics = app_client.get("/v1/statistics?dimensions=district&period=quarter",
                                headers=auth("national-statistics", **{"X-Purpose": "statistics"}))
    assert statistics.status_code == 200, statistics.text
    assert statistics.json()["cells"]


def test_cases_are_seeded_once(state: AppState, auth: Auth, app_client: TestClient) -> None:
    with transaction(state.sessions) as session:
        assert seed_demo_cases(session, state) == 0
    city = items(app_client, "/v1/referrals?limit=100",
                 auth("municipality-coordinator", **{"X-Purpose": "safeguarding_assessment"}))
    assert len(city) == len(EVERY_CITY_STATUS)


class TestLapsedDemoAgreements:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str) -> Settings:
        return Settings(env="dev", data_dir=tmp_path / "data", database_url=database_url,  # type: ignore[arg-type]
                        keyring_path=tmp_path / "data" / "keyring.json", auto_migrate=False, seed_demo=False)

    def test_no_cases_and_no_failure_once_the_demo_agreements_lapse(self, state: AppState) -> None:
        state.clock = lambda: datetime(2027, 6, 30, 9, 0, tzinfo=UTC)  # demo-city's review_by
        with transaction(state.sessions) as session:
            seed_demo(session, state)
            assert seed_demo_cases(session, state) == 0
            assert not demo_cases_present(session)
