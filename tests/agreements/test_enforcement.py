"""Agreements enforced over HTTP: each caller gets exactly its view, for a stated purpose, in force."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, REFERRER

from app.referrals.schemas import HISTORY_FIELDS
from app.state import AppState

Auth = Callable[..., dict[str, str]]
ASSIGNED = ["city-social-services", "city-community-police", "youth-ngo-bridges", "city-health-centre"]


def paths(document: dict[str, Any]) -> set[str]:
    found = {k for k in document if k != "subject"}
    found |= {f"subject.{k}" for k in document.get("subject", {})}
    return found


def view_fields(state: AppState, view: str) -> set[str]:
    """What a referral document shows of a view: the re-assessment history has its own endpoint."""
    agreement = state.policies.current.get("demo-city")
    assert agreement is not None
    return (set(agreement.views[view].items) - HISTORY_FIELDS) | {"id"}


@pytest.fixture
def case(post_referral: Callable[..., Any], move: Callable[..., Any]) -> str:
    rid: str = post_referral()["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ASSIGNED}))
    move(rid, "in_intervention", client_id="social-services-caseworker")
    return rid


# (client, purpose) -> the view it must get, or the status code it must get instead.
EXPECTED: list[tuple[str, str, str | int]] = [
    (COORDINATOR, "safeguarding_assessment", "referral.full"),
    (COORDINATOR, "intervention_planning", "referral.full"),
    (REFERRER, "safeguarding_assessment", "referral.full"),
    (REFERRER, "service_provision", "referral.full"),
    ("social-services-caseworker", "intervention_planning", "referral.contact"),
    ("social-services-caseworker", "service_provision", "referral.contact"),
    ("social-services-caseworker", "safeguarding_assessment", 403),
    ("health-centre-caseworker", "service_provision", "referral.contact"),
    ("community-police-caseworker", "intervention_planning", "referral.police"),
    ("community-police-caseworker", "service_provision", 403),
    ("youth-ngo-caseworker", "service_provision", "referral.summary"),
    ("youth-ngo-reader", "service_provision", "referral.summary"),
    ("religious-council-reader", "service_provision", "referral.summary"),
    ("religious-council-reader", "safeguarding_assessment", 403),
    ("school-south-referrer", "safeguarding_assessment", 403),
    ("national-statistics", "statistics", 403),
    ("national-statistics", "safeguarding_assessment", 403),
    ("national-statistics", "marketing", 400),
    ("independent-auditor", "safeguarding_assessment", 403),
]


class TestEachCallerGetsExactlyItsView:
    @pytest.mark.parametrize(("client_id", "purpose", "expected"), EXPECTED)
    def test_view_per_caller_and_purpose(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str,
        client_id: str, purpose: str, expected: str | int,
    ) -> None:
        response = app_client.get(f"/v1/referrals/{case}", headers=auth(client_id, **{"X-Purpose": purpose}))
        if isinstance(expected, int):
            assert response.status_code == expected, response.text
            assert "Yasmin" not in response.text and "subject" not in response.json()
            return
        assert response.status_code == 200, response.text
        assert response.headers["x-granted-view"] == expected
        assert paths(response.json()) == view_fields(state, expected)

    def test_police_never_get_names_or_narrative(self, app_client: TestClient, auth: Auth, case: str) -> None:
        response = app_client.get(
            f"/v1/referrals/{case}",
            headers=auth("community-police-caseworker", **{"X-Purpose": "intervention_planning"}),
        )
        body = response.json()
        assert "narrative" not in body
        assert not {"given_name", "family_name", "date_of_birth", "address", "religion"} & set(body["subject"])

    def test_an_explicit_view_narrows_and_an_unknown_one_is_400(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str
    ) -> None:
        headers = auth(COORDINATOR, **{"X-Purpose": "safeguarding_assessment"})
        narrow = app_client.get(f"/v1/referrals/{case}", params={"view": "referral.status"}, headers=headers)
        assert narrow.status_code == 200
        assert paths(narrow.json()) == view_fields(state, "referral.status")
        unknown = app_client.get(f"/v1/referrals/{case}", params={"view": "referral.everything"}, headers=headers)
        assert unknown.status_code == 400
        more = app_client.get(
            f"/v1/referrals/{case}", params={"view": "referral.full"},
            headers=auth("youth-ngo-reader", **{"X-Purpose": "service_provision"}),
        )
        assert more.status_code == 403

    def test_lists_hold_only_permitted_records_each_projected(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str, post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        refused = post_referral(consent={"status": "refused", "legal_basis": "public_task"})["id"]
        move(refused, "triaged", "accepted", ("assigned", {"agencies": ["youth-ngo-bridges"]}))
        post_referral()  # submitted: not yet for partners
        page = app_client.get("/v1/referrals", headers=auth("youth-ngo-reader", **{"X-Purpose": "service_provision"}))
        assert page.status_code == 200
        items = page.json()["items"]
        assert [i["id"] for i in items] == [case]
        assert paths(items[0]) == view_fields(state, "referral.summary")
        everything = app_client.get(
            "/v1/referrals", headers=auth(COORDINATOR, **{"X-Purpose": "safeguarding_assessment"})
        )
        assert len(everything.json()["items"]) == 3

    def test_health_notes_never_reach_police(self, app_client: TestClient, auth: Auth, case: str) -> None:
        for classification in ("shared", "health"):
            response = app_client.post(
                f"/v1/referrals/{case}/notes",
                json={"classification": classification, "text": f"{classification} note"},
                headers=auth("health-centre-caseworker"),
            )
            assert response.status_code == 201
        police = app_client.get(f"/v1/referrals/{case}/notes",
                                headers=auth("community-police-caseworker", **{"X-Purpose": "intervention_planning"}))
        assert [n["classification"] for n in police.json()["items"]] == ["shared"]
        social = app_client.get(f"/v1/referrals/{case}/notes",
                                headers=auth("social-services-caseworker", **{"X-Purpose": "intervention_planning"}))
        assert [n["classification"] for n in social.json()["items"]] == ["shared", "health"]


class TestPurposeIsRequired:
    @pytest.mark.parametrize("path", ["/v1/referrals/{id}", "/v1/referrals", "/v1/referrals/{id}/notes", "/v1/events"])
    @pytest.mark.parametrize("purpose", [None, "", "marketing", "statistics"])
    def test_every_read_without_an_open_purpose_is_400(
        self, app_client: TestClient, auth: Auth, case: str, path: str, purpose: str | None
    ) -> None:
        headers = auth(COORDINATOR) if purpose is None else auth(REFERRER, **{"X-Purpose": purpose})
        response = app_client.get(path.format(id=case), headers=headers)
        if purpose == "statistics":  # declared, but not open to a school
            assert response.status_code == 400
        assert response.status_code == 400
        problem = response.json()
        assert "Yasmin" not in response.text and "items" not in problem
        assert isinstance(problem["purposes"], list)


class TestAgreementsInForce:
    def test_an_expired_agreement_discloses_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str
    ) -> None:
        state.clock = lambda: datetime(2027, 6, 30, 9, 0, tzinfo=UTC)  # review_by: nothing from this day
        for client_id, purpose in [(COORDINATOR, "safeguarding_assessment"), (REFERRER, "safeguarding_assessment"),
                                   ("youth-ngo-reader", "service_provision")]:
            headers = auth(client_id, **{"X-Purpose": purpose})
            for path in (f"/v1/referrals/{case}", "/v1/referrals", f"/v1/referrals/{case}/notes", "/v1/events"):
                response = app_client.get(path, headers=headers)
                assert response.status_code == 403, (path, response.text)
                assert response.json()["type"].endswith("/agreement-expired")  # tests/agreements/test_lifecycle.py
                assert response.json()["purposes"] == []
        listing = app_client.get("/v1/agreements", headers=auth(COORDINATOR)).json()["items"]
        assert listing[0]["in_force"] is False

    def test_before_it_takes_effect_nothing_either(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str
    ) -> None:
        state.clock = lambda: datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
        response = app_client.get(
            f"/v1/referrals/{case}", headers=auth(COORDINATOR, **{"X-Purpose": "safeguarding_assessment"})
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("/agreement-not-yet-effective")

    def test_agreements_are_listed_with_version_hash_and_review_date(
        self, app_client: TestClient, auth: Auth
    ) -> None:
        items = app_client.get("/v1/agreements", headers=auth("youth-ngo-reader")).json()["items"]
        assert [(a["id"], a["version"], a["review_by"], a["in_force"]) for a in items] == [
            ("demo-city", 3, "2027-06-30", True), ("demo-town", 1, "2027-06-30", True),
            ("national-statistics", 1, "2027-06-30", True), ("training-demo", 1, "2027-06-30", True)]
        assert len(items[0]["content_hash"]) == 64
        assert app_client.get("/v1/agreements").status_code == 401
