"""A subject-access report is case data: read for the purpose `subject_access`, only on the people
of networks whose agreement opens it to the caller, logged with that purpose; refusals are logged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.audit_log import for_request
from support.referrals import COORDINATOR, NAME, NARRATIVE, PURPOSE, REFERRER
from support.refusals import SOUTH_COORDINATOR, client_headers, one_denial

from app.state import AppState

Auth = Callable[..., dict[str, str]]
AUDITOR = "independent-auditor"
ADMIN = "municipality-operator"
TOWN_COORDINATOR = "town-coordinator"
TOWN_REFERRER = "town-school-referrer"
SUBJECT_ACCESS = {"X-Purpose": "subject_access"}
SECRETS = (NAME, NARRATIVE, "Haddad", "LB-778899")


@pytest.fixture
def headers(state: AppState, app_client: TestClient, auth: Auth) -> Callable[..., dict[str, str]]:
    made: dict[str, dict[str, str]] = {}

    def _headers(client_id: str, **extra: str) -> dict[str, str]:
        if client_id != SOUTH_COORDINATOR:
            return auth(client_id, **extra)
        if client_id not in made:
            made[client_id] = client_headers(state, app_client, SOUTH_COORDINATOR, "school-south", ["coordinator"])
        return {**made[client_id], **extra}

    return _headers


@pytest.fixture
def person(app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]) -> str:
    """A demo-city person whose referral the coordinator has read (one disclosure)."""
    referral = post_referral()
    read = app_client.get(f"/v1/referrals/{referral['id']}", headers=auth(COORDINATOR, **PURPOSE))
    assert read.status_code == 200, read.text
    subject_id: str = referral["subject"]["id"]
    return subject_id


def _report(app_client: TestClient, headers: dict[str, str], subject_id: str) -> Any:
    return app_client.get(f"/v1/subjects/{subject_id}/disclosures", headers=headers)


class TestReadForSubjectAccess:
    @pytest.mark.parametrize(
        ("client_id", "agency", "rule"),
        [
            (AUDITOR, "independent-auditor", "auditor-subject-access"),
            (COORDINATOR, "city-municipality", "coordinator-subject-access"),
        ],
    )
    def test_the_networks_auditor_and_coordinator_read_it_and_the_read_is_logged_with_its_purpose(
        self, app_client: TestClient, state: AppState, auth: Auth, person: str, client_id: str, agency: str,
        rule: str,
    ) -> None:
        response = _report(app_client, auth(client_id, **SUBJECT_ACCESS), person)
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["subject_id"] == person
        assert [r["agency"] for r in report["recipients"]] == ["city-municipality"]
        assert report["items"][0]["purpose"] == "safeguarding_assessment"

        (entry,) = for_request(state, response.headers["X-Request-ID"])
        assert (entry.event_type, entry.purpose) == ("audit_query", "subject_access")
        assert (entry.actor_agency, entry.recipient_agency) == (agency, agency)
        assert (entry.agreement_id, entry.rule_id) == ("demo-city", rule)
        assert entry.subject_index is not None and entry.details is not None
        assert entry.details["fields"] == ["disclosures", "recipients"]
        assert person not in json.dumps(entry.details["fields"])
        assert all(s not in json.dumps(entry.details) for s in SECRETS)

    def test_a_person_with_no_referral_left_is_the_log_auditors_only(
        self, app_client: TestClient, state: AppState, auth: Auth
    ) -> None:
        assert _report(app_client, auth(AUDITOR, **SUBJECT_ACCESS), "sub_nobody").json()["items"] == []
        refused = _report(app_client, auth(COORDINATOR, **SUBJECT_ACCESS), "sub_nobody")
        assert refused.status_code == 403
        one_denial(state, refused)


class TestPurpose:
    def test_without_a_purpose_it_is_400_listing_the_callers_purposes(
        self, app_client: TestClient, state: AppState, auth: Auth, person: str
    ) -> None:
        refused = _report(app_client, auth(AUDITOR), person)
        assert refused.status_code == 400
        assert refused.json()["type"].endswith("/purpose-required")
        assert refused.json()["purposes"] == ["subject_access"]
        assert "recipients" not in refused.json()
        one_denial(state, refused, *SECRETS)

    def test_any_other_purpose_is_refused(
        self, app_client: TestClient, state: AppState, auth: Auth, person: str
    ) -> None:
        refused = _report(app_client, auth(COORDINATOR, **PURPOSE), person)
        assert refused.status_code == 400
        assert refused.json()["type"].endswith("/purpose-unknown")
        assert refused.json()["purposes"] == ["subject_access"]
        entry = one_denial(state, refused, *SECRETS)
        assert entry.purpose == "safeguarding_assessment"


class TestRefusals:
    @pytest.mark.parametrize(
        ("client_id", "status", "slug"),
        [
            pytest.param(REFERRER, 403, "forbidden", id="wrong-role"),
            pytest.param("youth-ngo-reader", 403, "forbidden", id="partner-role"),
            pytest.param(ADMIN, 403, "forbidden", id="admin"),
            pytest.param(SOUTH_COORDINATOR, 400, "purpose-unknown", id="coordinator-role-of-another-agency"),
            pytest.param(TOWN_COORDINATOR, 403, "access-denied", id="other-networks-coordinator"),
        ],
    )
    def test_no_one_else_reads_a_report_on_the_networks_person(
        self, app_client: TestClient, state: AppState, headers: Callable[..., dict[str, str]], person: str,
        client_id: str, status: int, slug: str,
    ) -> None:
        refused = _report(app_client, headers(client_id, **SUBJECT_ACCESS), person)
        assert refused.status_code == status, refused.text
        assert refused.json()["type"].endswith(f"/{slug}")
        assert "city-municipality" not in refused.text
        one_denial(state, refused, *SECRETS)

    def test_the_city_auditor_reads_nothing_of_a_town_person(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        subject_id = post_referral(TOWN_REFERRER)["subject"]["id"]
        refused = _report(app_client, auth(AUDITOR, **SUBJECT_ACCESS), subject_id)
        assert refused.status_code == 403
        denial = one_denial(state, refused, *SECRETS)
        assert denial.subject_index is not None and denial.actor_agency == "town-school"
        assert _report(app_client, auth(TOWN_COORDINATOR, **SUBJECT_ACCESS), subject_id).status_code == 200
