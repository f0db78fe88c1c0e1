"""The emergency section's guardrails, through the API: who may ask, reasons, statuses, the daily cap."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.emergency import EMERGENCY, HEALTH, OTHER_REASON, OWNER, REASON, SOUTH, Auth, ask, slug
from support.referrals import COORDINATOR, REFERRER
from support.refusals import one_denial

from app.emergency import reasons
from app.emergency.models import EmergencyGrant
from app.policy.model import ReasonRule
from app.state import AppState


def grants(state: AppState) -> list[EmergencyGrant]:
    with state.sessions() as session:
        return list(session.query(EmergencyGrant).all())


class TestWhoMayAsk:
    def test_an_agency_with_no_relation_to_the_case_is_refused(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        response = ask(app_client, auth, rid, SOUTH)
        assert response.status_code == 403 and slug(response) == "emergency-not-eligible"
        assert "relations [] not in [assigned, coordinator, owner, referrer]" in response.json()["detail"]
        denial = one_denial(state, response, REASON)
        assert denial.purpose == "emergency" and denial.subject_index is not None  # against the person
        assert grants(state) == []

    @pytest.mark.parametrize("client_id", [OWNER, HEALTH, COORDINATOR])
    def test_parties_to_the_case_and_the_networks_coordinator_may_ask(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str], client_id: str
    ) -> None:
        """owner/referrer (school-north), assigned (health centre), coordinator (the municipality)."""
        rid = assigned_case()
        granted = ask(app_client, auth, rid, client_id)
        assert granted.status_code == 201, granted.text
        read = app_client.get(f"/v1/referrals/{rid}", headers=auth(client_id, **EMERGENCY))
        assert read.status_code == 200 and read.headers["x-emergency-grant"] == granted.json()["id"]


class TestReasons:
    @pytest.mark.parametrize(
        ("reason", "rule"),
        [
            ("x" * 32, "min_length"),
            ("x" * 80, "max_char_share"),
            ("Lorem ipsum dolor sit amet, lorem ipsum dolor sit amet.", "min_words"),
            ("aaa bbb ccc ddd eee fff ggg hhh iii jjj kkk lll", "min_words"),
            ("Emergency! Urgent! Emergency! Urgent! Emergency! Urgent!", "min_words"),
        ],
    )
    def test_a_reason_without_substance_is_422_naming_the_rule(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str],
        reason: str, rule: str,
    ) -> None:
        rid = assigned_case()
        response = ask(app_client, auth, rid, HEALTH, reason)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["rule"] == rule and f"rule {rule}" in problem["detail"]
        assert f"reason_{rule}" in {e["type"] for e in problem["errors"]}
        one_denial(state, response, reason)
        assert grants(state) == []

    def test_a_reason_of_substance_passes(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        assert ask(app_client, auth, rid, HEALTH, OTHER_REASON).status_code == 201

    @pytest.mark.parametrize(
        ("text", "failed"),
        [
            (REASON, []),
            (OTHER_REASON, []),
            ("x" * 32, ["min_length", "max_char_share", "min_words"]),
            ("   Police report a credible threat against her tonight.   ", []),
            ("Threat to life, need it", ["min_length", "min_words"]),
            ("test test test test test test test test test test", ["max_char_share", "min_words"]),
            ("Father threatened to take the child abroad today; flight at nine.", []),
            ("الأب هدد بأخذ الطفل إلى الخارج اليوم والرحلة في التاسعة مساء", []),
        ],
    )
    def test_the_rule_table(self, text: str, failed: list[str]) -> None:
        assert [f.rule for f in reasons.check(text, ReasonRule())] == failed

    def test_the_rule_is_the_agreements(self) -> None:
        lenient = ReasonRule(min_length=5, min_words=1, max_char_share=1.0)
        assert reasons.check("Fire in the house", lenient) == []
        strict = ReasonRule(min_length=200, min_words=6, max_char_share=0.25)
        assert [f.rule for f in reasons.check(REASON, strict)] == ["min_length"]


class TestExcludedStatuses:
    @pytest.mark.parametrize(
        ("steps", "status"),
        [
            (("triaged", "accepted", ("assigned", {"agencies": ["city-health-centre"]}), "closed"), "closed"),
            (("triaged", "declined"), "declined"),
        ],
    )
    def test_a_closed_or_declined_referral_is_refused_naming_the_status(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
        move: Callable[..., Any], steps: tuple[Any, ...], status: str,
    ) -> None:
        rid = post_referral()["id"]
        move(rid, *steps)
        response = ask(app_client, auth, rid, COORDINATOR)
        assert response.status_code == 403 and slug(response) == "emergency-status-excluded"
        problem = response.json()
        assert problem["referral_status"] == status and f"status {status!r}" in problem["detail"]
        assert problem["excluded_statuses"] == ["closed", "declined", "transferred", "withdrawn"]
        one_denial(state, response)
        assert grants(state) == []

    def test_a_withdrawn_referral_is_refused(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any],
    ) -> None:
        rid = post_referral()["id"]
        move(rid, "withdrawn", client_id=REFERRER)
        response = ask(app_client, auth, rid, OWNER)
        assert response.status_code == 403 and response.json()["referral_status"] == "withdrawn"

    @pytest.mark.parametrize("steps", [(), ("triaged",), ("triaged", "accepted")])
    def test_open_statuses_are_not_excluded(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any],
        steps: tuple[str, ...],
    ) -> None:
        rid = post_referral()["id"]
        move(rid, *steps)
        assert ask(app_client, auth, rid, COORDINATOR).status_code == 201


class TestDailyCap:
    def test_the_fourth_grant_in_24_hours_is_429_until_the_window_frees(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        cases = [assigned_case() for _ in range(5)]
        for rid in cases[:3]:
            assert ask(app_client, auth, rid, HEALTH).status_code == 201
        fourth = ask(app_client, auth, cases[3], HEALTH)
        assert fourth.status_code == 429 and slug(fourth) == "emergency-limit-reached"
        problem = fourth.json()
        assert problem["max_per_agency_per_day"] == 3 and problem["agreement"] == "demo-city"
        assert "max_per_agency_per_day" in problem["detail"]
        assert 23 * 3600 < int(fourth.headers["retry-after"]) <= 24 * 3600 + 1
        one_denial(state, fourth, REASON)
        assert len(grants(state)) == 3
        # The cap is the agency's: another party to the case is not held by it.
        assert ask(app_client, auth, cases[3], COORDINATOR).status_code == 201
        later = state.clock() + timedelta(hours=24, seconds=1)
        state.clock = lambda: later
        assert ask(app_client, auth, cases[4], HEALTH).status_code == 201

    def test_reviewed_grants_still_count(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str]
    ) -> None:
        cases = [assigned_case() for _ in range(4)]
        first = ask(app_client, auth, cases[0], COORDINATOR).json()
        review = app_client.post(f"/v1/audit/emergency-access/{first['id']}/review", json={"finding": "justified"},
                                 headers=auth("independent-auditor"))
        assert review.status_code == 200
        for rid in cases[1:3]:
            assert ask(app_client, auth, rid, COORDINATOR).status_code == 201
        assert ask(app_client, auth, cases[3], COORDINATOR).status_code == 429
