"""The owner agency and the network's coordinator are told of a grant through the change feed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.audit_log import entries
from support.emergency import HEALTH, OWNER, REASON, SOUTH, Auth, ask, review
from support.referrals import COORDINATOR, PURPOSE

from app.state import AppState

INTERVENTION = {"X-Purpose": "intervention_planning"}


def feed(app_client: TestClient, auth: Auth, client_id: str, purpose: dict[str, str] = PURPOSE,
         **params: Any) -> dict[str, Any]:
    response = app_client.get("/v1/events", params=params, headers=auth(client_id, **purpose))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def emergency_items(page: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in page["items"] if i["kind"] != "status"]


class TestFeed:
    @pytest.mark.parametrize("client_id", [OWNER, COORDINATOR])
    def test_the_owner_and_the_coordinator_are_told_who_broke_the_glass_until_when(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str], client_id: str
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        page = feed(app_client, auth, client_id)
        [item] = emergency_items(page)
        assert item["kind"] == "emergency_access" and item["referral_id"] == rid
        assert (item["grant_id"], item["agency_id"], item["by_agency"]) == (
            grant["id"], "city-health-centre", "city-health-centre"
        )
        assert datetime.fromisoformat(item["expires_at"]) == datetime.fromisoformat(grant["expires_at"])
        assert item["status"] == "assigned" and item["from_status"] is None
        assert REASON not in json.dumps(page) and "reason" not in item
        # Status changes keep their shape; the new keys are optional and empty for them.
        statuses = [i for i in page["items"] if i["kind"] == "status"]
        assert statuses and all(i["grant_id"] is None for i in statuses)

    @pytest.mark.parametrize(("client_id", "purpose"), [(HEALTH, INTERVENTION), (SOUTH, PURPOSE)])
    def test_nobody_else_is_told(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str], client_id: str,
        purpose: dict[str, str],
    ) -> None:
        """Not the grant's holder (assigned, its ordinary view lapsed) nor an agency with no relation."""
        rid = assigned_case(withdraw=False)
        assert ask(app_client, auth, rid, HEALTH).status_code == 201
        assert emergency_items(feed(app_client, auth, client_id, purpose)) == []

    def test_a_revocation_is_told_too(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        assert review(app_client, auth, grant["id"], "unjustified", "no threat on record").status_code == 200
        kinds = [(i["kind"], i["by_agency"]) for i in emergency_items(feed(app_client, auth, OWNER))]
        assert kinds == [("emergency_access", "city-health-centre"), ("emergency_revoked", "independent-auditor")]

    def test_paging_keeps_its_place_in_both_sources(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str], move: Callable[..., Any],
    ) -> None:
        first, second = assigned_case(), assigned_case()
        ask(app_client, auth, first, HEALTH)
        move(second, ("assigned", {"agencies": ["city-health-centre", "city-social-services"]}))
        ask(app_client, auth, second, HEALTH)
        whole = feed(app_client, auth, OWNER, limit=200)["items"]
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = feed(app_client, auth, OWNER, limit=1, **({"after": cursor} if cursor else {}))
            seen.extend(page["items"])
            if not page["items"]:
                break
            cursor = page["next_cursor"]
        assert [i["id"] for i in seen] == [i["id"] for i in whole]
        assert len({i["id"] for i in seen}) == len(seen)
        assert [i["referral_id"] for i in emergency_items({"items": seen})] == [first, second]
        at = [datetime.fromisoformat(i["at"]) for i in whole]
        assert at == sorted(at)

    def test_the_feeds_log_entry_names_the_grant(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        feed(app_client, auth, OWNER)
        [entry] = [e for e in entries(state) if (e.details or {}).get("record_ids", {}).get("grant_ids")]
        assert entry.details is not None and entry.details["record_ids"]["grant_ids"] == [grant["id"]]
        assert entry.recipient_agency == "school-north"
