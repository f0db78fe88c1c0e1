"""The admin API under /v1/admin: operators manage agencies and clients, nobody else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.agencies.models import Agency, ApiClient
from app.demo import DEMO_AGENCIES
from app.state import AppState

Auth = Callable[..., dict[str, str]]


def _count(state: AppState, model: type[Any]) -> int:
    with state.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


class TestAgencies:
    def test_admin_adds_and_lists_agencies(self, app_client: TestClient, auth: Auth) -> None:
        created = app_client.post(
            "/v1/admin/agencies",
            json={"id": "karak-youth-centre", "name": "Karak Youth Centre", "sector": "youth_work"},
            headers=auth("municipality-operator"),
        )
        assert created.status_code == 201
        assert created.json()["id"] == "karak-youth-centre"
        ids: list[str] = []
        cursor = None
        while True:
            params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
            page = app_client.get("/v1/admin/agencies", params=params, headers=auth("municipality-operator"))
            assert page.status_code == 200
            ids += [a["id"] for a in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert ids == sorted(ids)
        assert len(ids) == len(set(ids)) == len(DEMO_AGENCIES) + 1
        assert "karak-youth-centre" in ids

    @pytest.mark.parametrize(
        ("body", "path"),
        [
            ({"id": "x y", "name": "n", "sector": "health"}, "$.id"),
            ({"id": "valid-id", "name": "n", "sector": "astrology"}, "$.sector"),
            ({"id": "valid-id", "sector": "health"}, "$.name"),
            ({"id": "valid-id", "name": "n", "sector": "health", "extra": 1}, "$.extra"),
        ],
    )
    def test_invalid_agency_is_422_with_the_path(
        self, app_client: TestClient, auth: Auth, state: AppState, body: dict[str, Any], path: str
    ) -> None:
        before = _count(state, Agency)
        response = app_client.post("/v1/admin/agencies", json=body, headers=auth("municipality-operator"))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert path in [e["path"] for e in response.json()["errors"]]
        assert _count(state, Agency) == before

    def test_duplicate_agency_is_409(self, app_client: TestClient, auth: Auth) -> None:
        response = app_client.post(
            "/v1/admin/agencies",
            json={"id": "school-north", "name": "Again", "sector": "education"},
            headers=auth("municipality-operator"),
        )
        assert response.status_code == 409


class TestClients:
    def test_admin_creates_a_client_whose_secret_is_shown_once(
        self, app_client: TestClient, auth: Auth, state: AppState
    ) -> None:
        created = app_client.post(
            "/v1/admin/clients",
            json={"agency_id": "school-north", "name": "Deputy head", "roles": ["referrer"]},
            headers=auth("municipality-operator"),
        )
        assert created.status_code == 201
        body = created.json()
        secret = body["client_secret"]
        assert len(secret) >= 40
        with state.sessions() as session:
            stored = session.get(ApiClient, body["id"])
            assert stored is not None
            assert secret not in stored.secret_hash
            assert stored.secret_hash.startswith("hmac-sha256$")  # keyed hash (app/crypto/secrets.py)
        listing = app_client.get(
            "/v1/admin/clients", params={"agency_id": "school-north"}, headers=auth("municipality-operator")
        )
        assert secret not in listing.text
        assert body["id"] in [c["id"] for c in listing.json()["items"]]
        token = app_client.post(
            "/v1/token",
            data={"grant_type": "client_credentials", "client_id": body["id"], "client_secret": secret},
        )
        assert token.status_code == 200

    def test_client_for_unknown_agency_is_422_and_creates_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState
    ) -> None:
        before = _count(state, ApiClient)
        response = app_client.post(
            "/v1/admin/clients",
            json={"agency_id": "no-such-agency", "name": "x", "roles": ["referrer"]},
            headers=auth("municipality-operator"),
        )
        assert response.status_code == 422
        assert _count(state, ApiClient) == before

    @pytest.mark.parametrize("roles", [[], ["superuser"], "admin"])
    def test_bad_roles_are_422(self, app_client: TestClient, auth: Auth, roles: Any) -> None:
        response = app_client.post(
            "/v1/admin/clients",
            json={"agency_id": "school-north", "name": "x", "roles": roles},
            headers=auth("municipality-operator"),
        )
        assert response.status_code == 422

    def test_disabling_an_unknown_client_is_404(self, app_client: TestClient, auth: Auth) -> None:
        response = app_client.post("/v1/admin/clients/ghost/disable", headers=auth("municipality-operator"))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_a_fault_mid_request_leaves_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.agencies import router

        headers = auth("municipality-operator")
        before = _count(state, ApiClient)

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(router.ClientOut, "model_validate", broken)
        response = app_client.post(
            "/v1/admin/clients",
            json={"agency_id": "school-north", "name": "x", "roles": ["referrer"]},
            headers=headers,
        )
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "disk on fire" not in response.text
        assert _count(state, ApiClient) == before


class TestOnlyAdmins:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", "/v1/admin/agencies"),
            ("post", "/v1/admin/agencies"),
            ("get", "/v1/admin/clients"),
            ("post", "/v1/admin/clients"),
            ("post", "/v1/admin/clients/school-north-referrer/disable"),
        ],
    )
    @pytest.mark.parametrize(
        "client_id", ["municipality-coordinator", "independent-auditor", "school-north-referrer"]
    )
    def test_other_roles_are_403(
        self, app_client: TestClient, auth: Auth, method: str, path: str, client_id: str
    ) -> None:
        response = app_client.request(method, path, headers=auth(client_id), json={})
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"

    def test_anonymous_is_401(self, app_client: TestClient) -> None:
        response = app_client.get("/v1/admin/agencies")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
