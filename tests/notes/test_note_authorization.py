"""Adding a note is decided like a read: a party in force of the referral's network, holding a
writer's relation to it (referrer, assigned agency, the network's coordinator) and a writer's role."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.referrals import COORDINATOR, NAME, NARRATIVE, REFERRER
from support.refusals import SOUTH_COORDINATOR, client_headers, one_denial

from app.notes.models import Note
from app.state import AppState

Auth = Callable[..., dict[str, str]]
ADMIN = "municipality-operator"
TOWN_COORDINATOR = "town-coordinator"
TOWN_REFERRER = "town-school-referrer"
TEXT = "Note-authz-marker: spoke with the family on Monday."
SECRETS = (TEXT, "Note-authz-marker", NAME, NARRATIVE)


@pytest.fixture
def headers(state: AppState, app_client: TestClient, auth: Auth) -> Callable[..., dict[str, str]]:
    made: dict[str, dict[str, str]] = {}

    def _headers(client_id: str) -> dict[str, str]:
        if client_id != SOUTH_COORDINATOR:
            return auth(client_id)
        if client_id not in made:
            made[client_id] = client_headers(state, app_client, SOUTH_COORDINATOR, "school-south", ["coordinator"])
        return made[client_id]

    return _headers


def _add(app_client: TestClient, headers: dict[str, str], referral_id: str) -> Any:
    return app_client.post(
        f"/v1/referrals/{referral_id}/notes", headers=headers, json={"classification": "shared", "text": TEXT}
    )


def _notes(state: AppState) -> list[Note]:
    with state.sessions() as session:
        return list(session.scalars(select(Note)))


class TestWhoAddsNotes:
    @pytest.mark.parametrize("client_id", [REFERRER, COORDINATOR])
    def test_the_referrer_and_the_networks_coordinator(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], client_id: str
    ) -> None:
        referral = post_referral()
        response = _add(app_client, auth(client_id), referral["id"])  # no purpose needed to write
        assert response.status_code == 201, response.text

    def test_an_assigned_agency_once_assigned(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        referral = post_referral()
        before = _add(app_client, auth("social-services-caseworker"), referral["id"])
        assert before.status_code == 403
        one_denial(state, before, *SECRETS)
        move(referral["id"], "triaged", "accepted", ("assigned", {"agencies": ["city-social-services"]}))
        assert _add(app_client, auth("social-services-caseworker"), referral["id"]).status_code == 201

    def test_another_networks_referral_is_its_own_agencies(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        town = post_referral(TOWN_REFERRER)
        assert _add(app_client, auth(TOWN_COORDINATOR), town["id"]).status_code == 201
        assert _add(app_client, auth(COORDINATOR), town["id"]).status_code == 403


class TestRefusals:
    @pytest.mark.parametrize(
        ("client_id", "slug"),
        [
            pytest.param(SOUTH_COORDINATOR, "change-denied", id="coordinator-role-of-another-agency"),
            pytest.param("school-south-referrer", "change-denied", id="foreign-agency-same-network"),
            pytest.param("youth-ngo-reader", "change-denied", id="party-without-relation"),
            pytest.param("independent-auditor", "change-denied", id="auditor"),
            pytest.param(TOWN_COORDINATOR, "change-denied", id="other-networks-coordinator"),
            pytest.param(TOWN_REFERRER, "change-denied", id="other-networks-referrer"),
            pytest.param(ADMIN, "admin-no-case-data", id="admin"),
        ],
    )
    def test_no_one_else_adds_a_note(
        self, app_client: TestClient, state: AppState, headers: Callable[..., dict[str, str]],
        post_referral: Callable[..., Any], client_id: str, slug: str,
    ) -> None:
        referral = post_referral()
        refused = _add(app_client, headers(client_id), referral["id"])
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith(f"/{slug}")
        assert _notes(state) == []
        denial = one_denial(state, refused, *SECRETS)
        assert denial.details and denial.details["record_ids"] == {"referral_id": referral["id"]}
        if slug == "change-denied":  # logged against the referral's owner and person
            assert denial.actor_agency == "school-north" and denial.subject_index is not None

    def test_an_assigned_agency_with_a_reading_role_only(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        referral = post_referral()
        move(referral["id"], "triaged", "accepted", ("assigned", {"agencies": ["youth-ngo-bridges"]}))
        refused = _add(app_client, auth("youth-ngo-reader"), referral["id"])
        assert refused.status_code == 403
        assert "roles" in refused.json()["detail"]
        denial = one_denial(state, refused, *SECRETS)
        assert denial.details and denial.details["refusal"] == "change-denied"
        assert "Note-authz-marker" not in json.dumps(denial.details)
