"""Legal holds are decided like reads: a referral's hold is its network coordinator's, its reasons
are sealed with the person's key and read under a purpose; operators hold agencies, never cases."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.audit_log import entries, for_request
from support.referrals import COORDINATOR, NAME, NARRATIVE, PURPOSE, REFERRER
from support.refusals import SOUTH_COORDINATOR, client_headers, one_denial
from support.retention import database_bytes, is_sqlite, rows

from app.config import Settings
from app.db import transaction
from app.retention.models import LegalHold
from app.state import AppState

Auth = Callable[..., dict[str, str]]
ADMIN = "municipality-operator"
AUDITOR = "independent-auditor"
TOWN_COORDINATOR = "town-coordinator"
TOWN_REFERRER = "town-school-referrer"
REASON = "Court case 2026/114 about Yasmin-hold-marker"
LIFT_REASON = "Proceedings closed, lift-marker-value"
SECRETS = (REASON, "hold-marker", LIFT_REASON, "lift-marker", NAME, NARRATIVE)


@pytest.fixture
def headers(state: AppState, app_client: TestClient, auth: Auth) -> Callable[..., dict[str, str]]:
    """Headers for a demo client, or for a coordinator-role client of school-south (finding 2)."""
    made: dict[str, dict[str, str]] = {}

    def _headers(client_id: str, **extra: str) -> dict[str, str]:
        if client_id != SOUTH_COORDINATOR:
            return auth(client_id, **extra)
        if client_id not in made:
            made[client_id] = client_headers(state, app_client, SOUTH_COORDINATOR, "school-south", ["coordinator"])
        return {**made[client_id], **extra}

    return _headers


def _place(app_client: TestClient, headers: dict[str, str], referral_id: str, reason: str = REASON) -> Any:
    return app_client.post(f"/v1/referrals/{referral_id}/legal-hold", headers=headers, json={"reason": reason})


def _lift(app_client: TestClient, headers: dict[str, str], referral_id: str, hold_id: str) -> Any:
    return app_client.post(
        f"/v1/referrals/{referral_id}/legal-hold/{hold_id}/lift", headers=headers, json={"reason": LIFT_REASON}
    )


def _list(app_client: TestClient, headers: dict[str, str], referral_id: str, **params: Any) -> Any:
    return app_client.get(f"/v1/referrals/{referral_id}/legal-hold", headers=headers, params=params)


# Callers with no say over a demo-city referral's holds, and the refusal each gets.
OUTSIDERS = [
    pytest.param(REFERRER, "change-denied", id="owner-not-coordinator"),
    pytest.param(SOUTH_COORDINATOR, "change-denied", id="coordinator-role-of-another-agency"),
    pytest.param("social-services-caseworker", "change-denied", id="party-without-relation"),
    pytest.param(AUDITOR, "change-denied", id="auditor"),
    pytest.param(TOWN_COORDINATOR, "change-denied", id="other-networks-coordinator"),
    pytest.param(TOWN_REFERRER, "change-denied", id="other-networks-referrer"),
    pytest.param(ADMIN, "admin-no-case-data", id="admin"),
]


class TestPlacingAndLifting:
    def test_the_networks_coordinator_places_and_lifts_and_the_replies_carry_no_reason(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        referral = post_referral()
        placed = _place(app_client, auth(COORDINATOR), referral["id"])
        assert placed.status_code == 201, placed.text
        hold = placed.json()
        assert hold["scope"] == "referral" and hold["active"] is True
        assert hold["reason"] is None and hold["lift_reason"] is None
        lifted = _lift(app_client, auth(COORDINATOR), referral["id"], hold["id"])
        assert lifted.status_code == 200, lifted.text
        assert lifted.json()["active"] is False
        assert lifted.json()["reason"] is None and lifted.json()["lift_reason"] is None
        assert _lift(app_client, auth(COORDINATOR), referral["id"], hold["id"]).status_code == 409

        changes = [e for e in entries(state, event_type="change") if (e.details or {}).get("hold_id") == hold["id"]]
        assert [e.details["action"] for e in changes if e.details] == ["legal_hold_placed", "legal_hold_lifted"]
        assert [e.details["fields"] for e in changes if e.details] == [
            ["legal_hold.reason"], ["legal_hold.lift_reason"]
        ]
        for entry in changes:
            assert all(s not in json.dumps(entry.details) for s in SECRETS)

    @pytest.mark.parametrize(("client_id", "slug"), OUTSIDERS)
    def test_no_one_else_places_a_hold(
        self, app_client: TestClient, state: AppState, headers: Callable[..., dict[str, str]],
        post_referral: Callable[..., Any], client_id: str, slug: str,
    ) -> None:
        referral = post_referral()
        refused = _place(app_client, headers(client_id), referral["id"])
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith(f"/{slug}")
        assert rows(state, LegalHold) == []
        one_denial(state, refused, *SECRETS)

    @pytest.mark.parametrize(("client_id", "slug"), OUTSIDERS)
    def test_no_one_else_lifts_one(
        self, app_client: TestClient, state: AppState, auth: Auth, headers: Callable[..., dict[str, str]],
        post_referral: Callable[..., Any], client_id: str, slug: str,
    ) -> None:
        referral = post_referral()
        hold = _place(app_client, auth(COORDINATOR), referral["id"]).json()
        refused = _lift(app_client, headers(client_id), referral["id"], hold["id"])
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith(f"/{slug}")
        assert [h.lifted_at for h in rows(state, LegalHold)] == [None]
        one_denial(state, refused, *SECRETS)

    def test_a_hold_on_another_networks_referral_is_its_coordinators(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        town = post_referral(TOWN_REFERRER)
        assert _place(app_client, auth(COORDINATOR), town["id"]).status_code == 403
        assert _place(app_client, auth(TOWN_COORDINATOR), town["id"]).status_code == 201

    def test_unknown_referral_or_hold_is_404(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        assert _place(app_client, auth(COORDINATOR), "ref_nope").status_code == 404
        referral = post_referral()
        assert _lift(app_client, auth(COORDINATOR), referral["id"], "hold_nope").status_code == 404


class TestSealedReasons:
    def test_reasons_are_sealed_with_the_persons_key_and_never_logged(
        self, app_client: TestClient, state: AppState, settings: Settings, auth: Auth,
        post_referral: Callable[..., Any],
    ) -> None:
        referral = post_referral()
        hold = _place(app_client, auth(COORDINATOR), referral["id"]).json()
        _lift(app_client, auth(COORDINATOR), referral["id"], hold["id"])
        (stored,) = rows(state, LegalHold)
        assert stored.reason is None and stored.lift_reason is None
        assert stored.sealed_reason and b"hold-marker" not in stored.sealed_reason
        assert stored.sealed_lift_reason and b"lift-marker" not in stored.sealed_lift_reason
        for entry in entries(state):
            assert all(s not in json.dumps(entry.details) for s in SECRETS)
        if is_sqlite(settings):
            raw = database_bytes(settings)
            assert b"hold-marker" not in raw and b"lift-marker" not in raw

    def test_a_reason_moved_to_another_hold_does_not_open(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        referral = post_referral()
        first = _place(app_client, auth(COORDINATOR), referral["id"]).json()
        second = _place(app_client, auth(COORDINATOR), referral["id"], "Second hold, another reason").json()
        with transaction(state.sessions) as session:
            a, b = session.get(LegalHold, first["id"]), session.get(LegalHold, second["id"])
            assert a is not None and b is not None
            b.sealed_reason = a.sealed_reason
        response = _list(app_client, auth(COORDINATOR, **PURPOSE), referral["id"])
        assert response.status_code == 500
        assert "hold-marker" not in response.text


class TestReadingHolds:
    def test_the_coordinator_reads_the_reasons_under_a_purpose_and_the_read_is_logged(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        referral = post_referral()
        hold = _place(app_client, auth(COORDINATOR), referral["id"]).json()
        _lift(app_client, auth(COORDINATOR), referral["id"], hold["id"])
        active = _list(app_client, auth(COORDINATOR, **PURPOSE), referral["id"])
        assert active.status_code == 200, active.text
        assert active.json() == {"items": [], "next_cursor": None}
        response = _list(app_client, auth(COORDINATOR, **PURPOSE), referral["id"], active=False)
        assert response.status_code == 200, response.text
        (item,) = response.json()["items"]
        assert (item["id"], item["reason"], item["lift_reason"]) == (hold["id"], REASON, LIFT_REASON)

        (read,) = for_request(state, response.headers["X-Request-ID"])
        assert (read.event_type, read.purpose) == ("disclosure", "safeguarding_assessment")
        assert read.recipient_agency == "city-municipality" and read.actor_agency == "school-north"
        assert read.details is not None
        assert read.details["record_ids"] == {"referral_id": referral["id"], "hold_id": hold["id"]}
        assert read.details["fields"] == ["legal_hold.lift_reason", "legal_hold.reason"]
        assert all(s not in json.dumps(read.details) for s in SECRETS)
        (empty,) = for_request(state, active.headers["X-Request-ID"])
        assert empty.purpose == "safeguarding_assessment" and empty.details
        assert empty.details["record_ids"]["hold_ids"] == []

    def test_pages(self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]) -> None:
        referral = post_referral()
        ids = sorted(_place(app_client, auth(COORDINATOR), referral["id"]).json()["id"] for _ in range(3))
        first = _list(app_client, auth(COORDINATOR, **PURPOSE), referral["id"], limit=2).json()
        second = _list(app_client, auth(COORDINATOR, **PURPOSE), referral["id"], limit=2,
                       cursor=first["next_cursor"]).json()
        assert [h["id"] for h in first["items"] + second["items"]] == ids
        assert second["next_cursor"] is None

    def test_without_a_purpose_it_is_400_listing_the_callers_purposes(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        referral = post_referral()
        _place(app_client, auth(COORDINATOR), referral["id"])
        refused = _list(app_client, auth(COORDINATOR), referral["id"])
        assert refused.status_code == 400
        assert refused.json()["type"].endswith("/purpose-required")
        assert "safeguarding_assessment" in refused.json()["purposes"]
        assert "hold-marker" not in refused.text
        one_denial(state, refused, *SECRETS)

    def test_a_purpose_that_grants_no_referral_is_refused(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        referral = post_referral()
        _place(app_client, auth(COORDINATOR), referral["id"])
        refused = _list(app_client, auth(COORDINATOR, **{"X-Purpose": "statistics"}), referral["id"])
        assert refused.status_code == 403
        assert "hold-marker" not in refused.text
        one_denial(state, refused, *SECRETS)

    @pytest.mark.parametrize(
        ("client_id", "slug"),
        [
            pytest.param(REFERRER, "access-denied", id="owner-not-coordinator"),
            pytest.param(SOUTH_COORDINATOR, "access-denied", id="coordinator-role-of-another-agency"),
            pytest.param(TOWN_COORDINATOR, "access-denied", id="other-networks-coordinator"),
            pytest.param(ADMIN, "admin-no-case-data", id="admin"),
        ],
    )
    def test_no_one_else_reads_them(
        self, app_client: TestClient, state: AppState, auth: Auth, headers: Callable[..., dict[str, str]],
        post_referral: Callable[..., Any], client_id: str, slug: str,
    ) -> None:
        referral = post_referral()
        _place(app_client, auth(COORDINATOR), referral["id"])
        refused = _list(app_client, headers(client_id, **PURPOSE), referral["id"])
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith(f"/{slug}")
        assert "hold-marker" not in refused.text
        one_denial(state, refused, *SECRETS)


class TestAgencyHolds:
    def test_operators_hold_agencies_and_see_only_agency_holds(
        self, app_client: TestClient, state: AppState, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        referral = post_referral()
        case_hold = _place(app_client, auth(COORDINATOR), referral["id"]).json()
        placed = app_client.post(
            "/v1/admin/legal-holds", headers=auth(ADMIN),
            json={"agency_id": "school-north", "reason": "Inquiry into school-north records 2026"},
        )
        assert placed.status_code == 201, placed.text
        agency_hold = placed.json()
        assert agency_hold["reason"] == "Inquiry into school-north records 2026"
        listed = app_client.get("/v1/admin/legal-holds", headers=auth(ADMIN)).json()
        assert [h["id"] for h in listed["items"]] == [agency_hold["id"]]
        assert case_hold["id"] not in json.dumps(listed)

        (logged,) = [e for e in entries(state, event_type="change")
                     if (e.details or {}).get("hold_id") == agency_hold["id"]]
        assert logged.details and "Inquiry" not in json.dumps(logged.details)

        refused = app_client.post(
            f"/v1/admin/legal-holds/{case_hold['id']}/lift", headers=auth(ADMIN),
            json={"reason": "An operator may not lift this"},
        )
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/admin-no-case-data")
        one_denial(state, refused, *SECRETS)
        lifted = app_client.post(
            f"/v1/admin/legal-holds/{agency_hold['id']}/lift", headers=auth(ADMIN),
            json={"reason": "Inquiry finished, nothing found"},
        )
        assert lifted.status_code == 200 and lifted.json()["lift_reason"] == "Inquiry finished, nothing found"

    def test_an_operator_holds_no_single_referral(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        referral = post_referral()
        response = app_client.post(
            "/v1/admin/legal-holds", headers=auth(ADMIN),
            json={"referral_id": referral["id"], "reason": "Court case 2026/114 needs the file"},
        )
        assert response.status_code == 422

    @pytest.mark.parametrize("client_id", [COORDINATOR, SOUTH_COORDINATOR, TOWN_COORDINATOR, AUDITOR])
    def test_only_operators_hold_agencies(
        self, app_client: TestClient, state: AppState, headers: Callable[..., dict[str, str]], client_id: str
    ) -> None:
        refused = app_client.post(
            "/v1/admin/legal-holds", headers=headers(client_id),
            json={"agency_id": "school-north", "reason": "Inquiry into school-north records"},
        )
        assert refused.status_code == 403
        assert rows(state, LegalHold) == []
        one_denial(state, refused, "Inquiry")
        listing = app_client.get("/v1/admin/legal-holds", headers=headers(client_id))
        assert listing.status_code == 403
        one_denial(state, listing)
