"""Reading referrals: a stated purpose, the owner and coordinators only, pages and filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, PURPOSE, REFERRER

Auth = Callable[..., dict[str, str]]


class TestGet:
    def test_owner_and_coordinator_read_it(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        created = post_referral()
        for client_id in (REFERRER, COORDINATOR):
            response = app_client.get(f"/v1/referrals/{created['id']}", headers=auth(client_id, **PURPOSE))
            assert response.status_code == 200
            assert response.json() == created
            assert response.headers["etag"] == f'"{created["id"]}.v1"'

    @pytest.mark.parametrize("purpose", [None, "", "curiosity"])
    def test_a_read_without_a_known_purpose_is_400_listing_purposes(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], purpose: str | None
    ) -> None:
        created = post_referral()
        headers = auth(REFERRER) if purpose is None else auth(REFERRER, **{"X-Purpose": purpose})
        response = app_client.get(f"/v1/referrals/{created['id']}", headers=headers)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert "safeguarding_assessment" in response.json()["purposes"]
        assert "Yasmin" not in response.text

    @pytest.mark.parametrize(
        "client_id",
        ["school-south-referrer", "community-police-caseworker", "youth-ngo-reader",
         "national-statistics", "municipality-operator"],
    )
    def test_other_agencies_and_the_admin_cannot_read_it(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], client_id: str
    ) -> None:
        created = post_referral()
        response = app_client.get(f"/v1/referrals/{created['id']}", headers=auth(client_id, **PURPOSE))
        assert response.status_code == 403
        assert "Yasmin" not in response.text

    def test_unknown_referral_is_404(self, app_client: TestClient, auth: Auth) -> None:
        response = app_client.get("/v1/referrals/ref_nope", headers=auth(COORDINATOR, **PURPOSE))
        assert response.status_code == 404

    def test_anonymous_is_401(self, app_client: TestClient, post_referral: Callable[..., Any]) -> None:
        created = post_referral()
        assert app_client.get(f"/v1/referrals/{created['id']}", headers=PURPOSE).status_code == 401


class TestList:
    def test_pages_newest_change_first_with_filters(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        ids = [post_referral(risk_level=r)["id"] for r in ("low", "high", "high", "medium", "critical")]
        post_referral("school-south-referrer")
        move(ids[0], "triaged")
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = app_client.get("/v1/referrals", params=params, headers=auth(REFERRER, **PURPOSE)).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen[0] == ids[0]  # most recently changed
        assert sorted(seen) == sorted(ids)
        high = app_client.get("/v1/referrals", params={"risk_level": "high"}, headers=auth(REFERRER, **PURPOSE))
        assert sorted(r["id"] for r in high.json()["items"]) == sorted(ids[1:3])
        triaged = app_client.get("/v1/referrals", params={"status": "triaged"}, headers=auth(COORDINATOR, **PURPOSE))
        assert [r["id"] for r in triaged.json()["items"]] == [ids[0]]
        every = app_client.get("/v1/referrals", params={"limit": 50}, headers=auth(COORDINATOR, **PURPOSE))
        assert len(every.json()["items"]) == 6

    def test_concern_and_updated_since_filters(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        hate = post_referral(concerns=["hate_incident"])
        post_referral(concerns=["family_concern"])
        response = app_client.get(
            "/v1/referrals", params={"concern": "hate_incident"}, headers=auth(REFERRER, **PURPOSE)
        )
        assert [r["id"] for r in response.json()["items"]] == [hate["id"]]
        future = app_client.get("/v1/referrals", params={"updated_since": "2999-01-01T00:00:00Z"},
                                headers=auth(REFERRER, **PURPOSE))
        assert future.json() == {"items": [], "next_cursor": None}

    def test_list_needs_a_purpose_and_a_valid_cursor(self, app_client: TestClient, auth: Auth) -> None:
        assert app_client.get("/v1/referrals", headers=auth(REFERRER)).status_code == 400
        bad = app_client.get("/v1/referrals", params={"cursor": "!!!"}, headers=auth(REFERRER, **PURPOSE))
        assert bad.status_code == 400
        zero = app_client.get("/v1/referrals", params={"limit": 0}, headers=auth(REFERRER, **PURPOSE))
        assert zero.status_code == 422


class TestAdminNeverSeesCaseData:
    @pytest.fixture
    def admin_coordinator(self, app_client: TestClient, auth: Auth) -> dict[str, str]:
        """A client holding admin next to case roles: admin still wins."""
        created = app_client.post(
            "/v1/admin/clients",
            json={"agency_id": "school-north", "name": "dual", "roles": ["admin", "coordinator", "referrer"]},
            headers=auth("municipality-operator"),
        ).json()
        token = app_client.post("/v1/token", data={
            "grant_type": "client_credentials", "client_id": created["id"], "client_secret": created["client_secret"],
        }).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def test_every_case_data_endpoint_refuses_an_admin(
        self, app_client: TestClient, post_referral: Callable[..., Any], admin_coordinator: dict[str, str]
    ) -> None:
        from support.referrals import referral_body

        rid = post_referral()["id"]
        headers = {**admin_coordinator, **PURPOSE}
        calls = [
            app_client.get(f"/v1/referrals/{rid}", headers=headers),
            app_client.get("/v1/referrals", headers=headers),
            app_client.get(f"/v1/referrals/{rid}/notes", headers=headers),
            app_client.get("/v1/events", headers=headers),
            app_client.post("/v1/referrals", json=referral_body(), headers=headers),
            app_client.post(f"/v1/referrals/{rid}/notes", json={"classification": "shared", "text": "x"},
                            headers=headers),
            app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged"}, headers=headers),
        ]
        for response in calls:
            assert response.status_code == 403, response.request.url
            assert response.json()["type"].endswith("admin-no-case-data")
            assert "Yasmin" not in response.text
