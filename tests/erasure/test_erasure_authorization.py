"""Erasure is decided like a change of every referral about the person: only the coordinator of
every network holding one may ask for it; every refusal leaves one denial and erases nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from support.referrals import COORDINATOR, NAME, NARRATIVE, REFERRER
from support.refusals import SOUTH_COORDINATOR, client_headers, one_denial
from support.retention import rows

from app.db import transaction
from app.referrals.models import Referral
from app.state import AppState
from app.subjects.models import Subject

Auth = Callable[..., dict[str, str]]
ADMIN = "municipality-operator"
TOWN_COORDINATOR = "town-coordinator"
TOWN_REFERRER = "town-school-referrer"
GROUND = {"legal_ground": "consent_withdrawn", "reference": "DSR-authz-0042"}
SECRETS = (NAME, NARRATIVE, "DSR-authz-0042", "Haddad", "LB-778899")


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


def _erase(app_client: TestClient, headers: dict[str, str], subject_id: str) -> Any:
    return app_client.post(f"/v1/subjects/{subject_id}/erasure", headers=headers, json=GROUND)


def _still_there(state: AppState, subject_id: str) -> bool:
    return any(s.wrapped_key is not None for s in rows(state, Subject, id=subject_id))


class TestWhoErases:
    def test_the_networks_coordinator(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        subject_id = post_referral()["subject"]["id"]
        response = _erase(app_client, auth(COORDINATOR), subject_id)
        assert response.status_code == 200, response.text
        assert not _still_there(state, subject_id)

    def test_another_networks_person_is_its_coordinators(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        subject_id = post_referral(TOWN_REFERRER)["subject"]["id"]
        refused = _erase(app_client, auth(COORDINATOR), subject_id)
        assert refused.status_code == 403
        one_denial(state, refused, *SECRETS)
        assert _erase(app_client, auth(TOWN_COORDINATOR), subject_id).status_code == 200

    def test_a_person_in_two_networks_needs_the_coordinator_of_both(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        first, second = post_referral(), post_referral()
        subject_id = first["subject"]["id"]
        assert second["subject"]["id"] == subject_id  # linked by the national id
        with transaction(state.sessions) as session:  # as if transferred to demo-town
            session.execute(update(Referral).where(Referral.id == second["id"]).values(network_id="demo-town"))
        for client in (COORDINATOR, TOWN_COORDINATOR):
            refused = _erase(app_client, auth(client), subject_id)
            assert refused.status_code == 403, refused.text
            assert refused.json()["type"].endswith("/change-denied")
            one_denial(state, refused, *SECRETS)
        assert _still_there(state, subject_id)


class TestRefusals:
    @pytest.mark.parametrize(
        ("client_id", "slug"),
        [
            pytest.param(REFERRER, "change-denied", id="owner-agency"),
            pytest.param(SOUTH_COORDINATOR, "change-denied", id="coordinator-role-of-another-agency"),
            pytest.param("school-south-referrer", "change-denied", id="foreign-agency-same-network"),
            pytest.param("independent-auditor", "change-denied", id="auditor"),
            pytest.param(TOWN_COORDINATOR, "change-denied", id="other-networks-coordinator"),
            pytest.param(TOWN_REFERRER, "change-denied", id="other-networks-referrer"),
            pytest.param(ADMIN, "admin-no-case-data", id="admin"),
        ],
    )
    def test_no_one_else_erases(
        self, app_client: TestClient, state: AppState, headers: Callable[..., dict[str, str]],
        post_referral: Callable[..., Any], client_id: str, slug: str,
    ) -> None:
        referral = post_referral()
        subject_id = referral["subject"]["id"]
        refused = _erase(app_client, headers(client_id), subject_id)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith(f"/{slug}")
        assert _still_there(state, subject_id)
        assert rows(state, Referral, id=referral["id"])
        denial = one_denial(state, refused, *SECRETS)
        if slug == "change-denied":  # logged against the person (blind index), never the id
            assert denial.subject_index is not None and denial.actor_agency == "school-north"
