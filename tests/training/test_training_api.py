"""Training before access, over HTTP: demo-city's contact view requires `data-protection-basics`.

The acting person is the one a client acts for (`act`): a worker no record names is untrained.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.audit_log import entries, for_request
from support.referrals import COORDINATOR

from app.state import AppState

Auth = Callable[..., dict[str, str]]
WORKER_CLIENT = "social-services-caseworker"
COURSE = "data-protection-basics"
REFUSAL = (f"training required: {COURSE} (rule assigned-caseworker-contact of agreement demo-city)"
           " is missing or expired")


@pytest.fixture
def case(post_referral: Callable[..., Any], move: Callable[..., Any]) -> str:
    rid: str = post_referral()["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-social-services"]}))
    return rid


@pytest.fixture
def worker(token_for: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Headers of the social-services case system acting for a person (fresh token per call)."""
    def _headers(person: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(WORKER_CLIENT, act=person)}", **extra}
    return _headers


def record(app_client: TestClient, auth: Auth, **body: Any) -> Any:
    return app_client.post("/v1/training-records", headers=auth(COORDINATOR), json=body)


def today(state: AppState) -> Any:
    return state.clock().date()


class TestDisclosure:
    def test_untrained_person_is_refused_the_contact_view_and_gets_the_lesser_one(
        self, app_client: TestClient, state: AppState, worker: Callable[..., dict[str, str]], case: str
    ) -> None:
        headers = worker("worker-untrained", **{"X-Purpose": "intervention_planning"})
        lesser = app_client.get(f"/v1/referrals/{case}", headers=headers)
        assert lesser.status_code == 200, lesser.text
        assert lesser.headers["x-granted-view"] == "referral.case"
        refused = app_client.get(f"/v1/referrals/{case}", params={"view": "referral.contact"}, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert REFUSAL in refused.json()["detail"]
        logged = for_request(state, refused.headers["X-Request-ID"])
        assert [e.event_type for e in logged] == ["denial"]
        assert logged[0].rule_id == "assigned-caseworker-contact" or "assigned-caseworker-contact" in str(
            logged[0].details)
        assert REFUSAL in str(logged[0].details)

    def test_the_client_itself_is_trained_by_the_demo(
        self, app_client: TestClient, auth: Auth, case: str
    ) -> None:
        read = app_client.get(f"/v1/referrals/{case}",
                              headers=auth(WORKER_CLIENT, **{"X-Purpose": "intervention_planning"}))
        assert read.status_code == 200 and read.headers["x-granted-view"] == "referral.contact"

    def test_explain_says_which_course_is_missing(
        self, app_client: TestClient, worker: Callable[..., dict[str, str]], case: str
    ) -> None:
        explained = app_client.post("/v1/decisions/explain", headers=worker("worker-untrained"), json={
            "purpose": "intervention_planning", "referral_id": case, "view": "referral.contact"})
        assert explained.status_code == 200, explained.text
        body = explained.json()
        assert body["decision"]["permit"] is False
        assert body["decision"]["reason_code"] == "training_required"
        assert body["decision"]["reason"] == REFUSAL
        (trace,) = [r for r in body["rules"] if r["rule"] == "assigned-caseworker-contact"]
        assert trace["requires_training"] == [COURSE]
        assert trace["status"] == "not_matched"
        assert trace["reason"] == f"training required: {COURSE} is missing or expired"

    def test_recorded_training_opens_the_contact_view_on_the_next_request(
        self, app_client: TestClient, auth: Auth, state: AppState, worker: Callable[..., dict[str, str]], case: str
    ) -> None:
        day = today(state)
        made = record(app_client, auth, person_id="worker-new", agency_id="city-social-services", course_id=COURSE,
                      completed_on=str(day), expires_on=str(day + timedelta(days=365)))
        assert made.status_code == 201, made.text
        assert made.json()["source"] == "api" and made.json()["recorded_by"] == COORDINATOR
        headers = worker("worker-new", **{"X-Purpose": "intervention_planning"})
        read = app_client.get(f"/v1/referrals/{case}", headers=headers)
        assert read.status_code == 200 and read.headers["x-granted-view"] == "referral.contact"
        listed = app_client.get("/v1/referrals", headers=headers)
        assert listed.status_code == 200
        assert "address" in str(listed.json()["items"]) or listed.headers.get("x-granted-view") is None
        (logged,) = entries(state, event_type="training_recorded")
        assert logged.actor_agency == "city-municipality" and logged.recipient_agency == "city-social-services"
        assert logged.details is not None and logged.details["course_id"] == COURSE

    def test_a_client_of_another_agency_naming_a_trained_person_borrows_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState, token_for: Callable[..., str],
        post_referral: Callable[..., Any], move: Callable[..., Any],
    ) -> None:
        rid = post_referral()["id"]
        move(rid, "triaged", "accepted",
             ("assigned", {"agencies": ["city-social-services", "city-health-centre"]}))
        day = today(state)
        made = record(app_client, auth, person_id="worker-trained", agency_id="city-social-services",
                      course_id=COURSE, completed_on=str(day), expires_on=str(day + timedelta(days=365)))
        assert made.status_code == 201, made.text

        def read(client_id: str) -> Any:
            return app_client.get(f"/v1/referrals/{rid}", params={"view": "referral.contact"}, headers={
                "Authorization": f"Bearer {token_for(client_id, act='worker-trained')}",
                "X-Purpose": "intervention_planning"})

        assert read(WORKER_CLIENT).status_code == 200  # the person's own agency's system
        borrowed = read("health-centre-caseworker")  # another agency's, naming the same person
        assert borrowed.status_code == 403 and REFUSAL in borrowed.json()["detail"]
        assert [e.event_type for e in for_request(state, borrowed.headers["X-Request-ID"])] == ["denial"]

    def test_an_expired_course_is_refused_until_a_later_completion(
        self, app_client: TestClient, auth: Auth, state: AppState, worker: Callable[..., dict[str, str]], case: str
    ) -> None:
        day = today(state)
        old = record(app_client, auth, person_id="worker-lapsed", agency_id="city-social-services",
                     course_id=COURSE, completed_on=str(day - timedelta(days=400)),
                     expires_on=str(day - timedelta(days=35)))
        assert old.status_code == 201, old.text
        headers = worker("worker-lapsed", **{"X-Purpose": "intervention_planning"})
        refused = app_client.get(f"/v1/referrals/{case}", params={"view": "referral.contact"}, headers=headers)
        assert refused.status_code == 403 and REFUSAL in refused.json()["detail"]
        status = app_client.get("/v1/training/status", headers=worker("worker-lapsed")).json()
        assert status["courses"] == [{"course_id": COURSE, "state": "expired",
                                      "completed_on": str(day - timedelta(days=400)),
                                      "expires_on": str(day - timedelta(days=35))}]
        renewed = record(app_client, auth, person_id="worker-lapsed", agency_id="city-social-services",
                         course_id=COURSE, completed_on=str(day), expires_on=str(day + timedelta(days=20)))
        assert renewed.status_code == 201
        read = app_client.get(f"/v1/referrals/{case}", params={"view": "referral.contact"}, headers=headers)
        assert read.status_code == 200, read.text
        status = app_client.get("/v1/training/status", headers=worker("worker-lapsed")).json()
        assert [c["state"] for c in status["courses"]] == ["expiring"]


class TestRecording:
    def test_only_a_coordinator_of_the_persons_network_records(
        self, app_client: TestClient, auth: Auth, state: AppState
    ) -> None:
        day = str(today(state))
        body = {"person_id": "social-services-caseworker", "course_id": COURSE, "completed_on": day}
        not_coordinator = app_client.post("/v1/training-records", headers=auth(WORKER_CLIENT), json=body)
        assert not_coordinator.status_code == 403
        assert not_coordinator.json()["type"].endswith("/training-not-coordinator")
        other_network = app_client.post("/v1/training-records", headers=auth("town-coordinator"), json=body)
        assert other_network.status_code == 403
        assert record(app_client, auth, **body).status_code == 201
        assert [e.event_type for e in entries(state, event_type="denial")] == ["denial", "denial"]

    def test_a_coordinator_whose_agreement_expired_records_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState
    ) -> None:
        moment = datetime(2027, 6, 30, 9, 0, tzinfo=UTC)  # demo-city's agreement has expired by then
        state.clock = lambda: moment
        body = {"person_id": "social-services-caseworker", "course_id": COURSE, "completed_on": "2027-06-29"}
        refused = record(app_client, auth, **body)
        assert refused.status_code == 403 and refused.json()["type"].endswith("/training-not-coordinator")
        assert "under an agreement in force" in refused.json()["detail"]
        assert entries(state, event_type="training_recorded") == []
        assert [e.event_type for e in for_request(state, refused.headers["X-Request-ID"])] == ["denial"]
        listed = app_client.get("/v1/training-records", params={"person_id": "social-services-caseworker"},
                                headers=auth(COORDINATOR))
        assert listed.status_code == 403

    @pytest.mark.parametrize(("change", "slug"), [
        ({"completed_on": "2999-01-01"}, "training-dates"),
        ({"expires_on": "2000-01-01"}, "training-dates"),
        ({"person_id": "someone-unknown"}, "agency-required"),
        ({"agency_id": "school-north"}, "agency-mismatch"),
        ({"course_id": "Not A Slug"}, "validation-error"),
        ({"colour": "red"}, "validation-error"),
    ])
    def test_bad_input_is_a_problem_and_changes_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState, change: dict[str, str], slug: str
    ) -> None:
        body = {"person_id": "social-services-caseworker", "course_id": COURSE,
                "completed_on": str(today(state) - timedelta(days=1)), **change}
        before = len(entries(state, event_type="training_recorded"))
        response = record(app_client, auth, **body)
        assert response.status_code == (422 if slug == "validation-error" else 400), response.text
        assert response.json()["type"].endswith(f"/{slug}")
        assert len(entries(state, event_type="training_recorded")) == before

    def test_records_are_for_the_person_and_their_coordinators(
        self, app_client: TestClient, auth: Auth, state: AppState, worker: Callable[..., dict[str, str]]
    ) -> None:
        day = today(state)
        for completed in (day - timedelta(days=10), day):
            assert record(app_client, auth, person_id="worker-listed", agency_id="city-social-services",
                          course_id=COURSE, completed_on=str(completed)).status_code == 201
        params = {"person_id": "worker-listed"}
        own = app_client.get("/v1/training-records", params=params, headers=worker("worker-listed"))
        assert own.status_code == 200
        assert [i["completed_on"] for i in own.json()["items"]] == [str(day), str(day - timedelta(days=10))]
        # A person the service does not know (an API client's `act`) is found only by themself.
        for other in (COORDINATOR, "school-north-referrer"):
            assert app_client.get("/v1/training-records", params=params, headers=auth(other)).status_code == 404
        known = {"person_id": WORKER_CLIENT}
        assert app_client.get("/v1/training-records", params=known, headers=auth("school-north-referrer")
                              ).status_code == 403
        assert app_client.get("/v1/training-records", params=known, headers=auth(COORDINATOR)).status_code == 200

    def test_status_lists_each_required_course(
        self, app_client: TestClient, auth: Auth, worker: Callable[..., dict[str, str]]
    ) -> None:
        mine = app_client.get("/v1/training/status", headers=auth(WORKER_CLIENT))
        assert mine.status_code == 200
        assert mine.json()["person_id"] == WORKER_CLIENT
        assert [(c["course_id"], c["state"]) for c in mine.json()["courses"]] == [(COURSE, "ok")]
        missing = app_client.get("/v1/training/status", headers=worker("worker-untrained")).json()
        assert missing["courses"] == [{"course_id": COURSE, "state": "missing", "completed_on": None,
                                       "expires_on": None}]
        town = app_client.get("/v1/training/status", headers=auth("town-coordinator")).json()
        assert town["courses"] == []
