"""Break the glass: a time-limited grant, only for named roles, every use logged and reviewed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.referrals import PURPOSE

from app.audit.models import AuditEntry
from app.state import AppState

Auth = Callable[..., dict[str, str]]
REASON = "Threat to life reported by police; need contact context now."
EMERGENCY = {"X-Purpose": "emergency"}


def entries(state: AppState, event_type: str) -> list[AuditEntry]:
    with state.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.event_type == event_type)))


def ask(app_client: TestClient, auth: Auth, rid: str, client_id: str, reason: str | None = REASON) -> Any:
    body = {} if reason is None else {"reason": reason}
    return app_client.post(f"/v1/referrals/{rid}/emergency-access", json=body, headers=auth(client_id))


class TestEmergencyAccess:
    def test_a_grant_opens_the_agreed_view_for_a_limited_time(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        caller = "health-centre-caseworker"
        assert app_client.get(f"/v1/referrals/{rid}", headers=auth(caller, **PURPOSE)).status_code == 403
        granted = ask(app_client, auth, rid, caller)
        assert granted.status_code == 201, granted.text
        grant = granted.json()
        assert grant["view"] == "referral.case" and grant["active"] is True
        now = state.clock()
        from datetime import datetime

        expires = datetime.fromisoformat(grant["expires_at"])
        assert timedelta(hours=2, minutes=59) < expires - now <= timedelta(hours=3)
        read = app_client.get(f"/v1/referrals/{rid}", headers=auth(caller, **EMERGENCY))
        assert read.status_code == 200
        assert read.headers["x-emergency-grant"] == grant["id"]
        assert "given_name" not in read.json().get("subject", {})  # referral.case, not full
        assert len(entries(state, "emergency_grant")) == 1
        assert len(entries(state, "emergency_read")) == 1
        later = state.clock() + timedelta(hours=3, minutes=1)
        state.clock = lambda: later
        expired = app_client.get(f"/v1/referrals/{rid}", headers=auth(caller, **EMERGENCY))
        assert expired.status_code == 403 and "Yasmin" not in expired.text
        normal = app_client.get(f"/v1/referrals/{rid}", headers=auth(caller, **PURPOSE))
        assert normal.status_code == 403

    def test_emergency_is_not_an_ordinary_purpose(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        response = app_client.get(f"/v1/referrals/{rid}", headers=auth("health-centre-caseworker", **EMERGENCY))
        assert response.status_code == 403
        assert "Yasmin" not in response.text
        listing = app_client.get("/v1/referrals", headers=auth("health-centre-caseworker", **EMERGENCY))
        assert listing.status_code == 400

    @pytest.mark.parametrize(
        ("client_id", "reason", "status"),
        [
            ("health-centre-caseworker", None, 422),
            ("health-centre-caseworker", "too short", 422),
            ("youth-ngo-reader", REASON, 403),
            ("national-statistics", REASON, 403),
            ("municipality-operator", REASON, 403),
        ],
    )
    def test_refused_attempts_are_clear_and_logged(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
        client_id: str, reason: str | None, status: int,
    ) -> None:
        rid = post_referral()["id"]
        response = ask(app_client, auth, rid, client_id, reason)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert len(entries(state, "denial")) == 1
        assert entries(state, "emergency_grant") == []

    def test_asking_again_while_a_grant_is_active_is_409_and_logged(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        assert ask(app_client, auth, rid, "health-centre-caseworker").status_code == 201
        again = ask(app_client, auth, rid, "health-centre-caseworker")
        assert again.status_code == 409
        assert len(entries(state, "denial")) == 1

    def test_auditors_list_unreviewed_grants_and_review_them(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        grant = ask(app_client, auth, rid, "health-centre-caseworker").json()
        auditor = auth("independent-auditor")
        pending = app_client.get("/v1/audit/emergency-access", params={"reviewed": "false"}, headers=auditor).json()
        assert [g["id"] for g in pending["items"]] == [grant["id"]]
        assert pending["items"][0]["reason"] == REASON
        reviewed = app_client.post(f"/v1/audit/emergency-access/{grant['id']}/review",
                                   json={"finding": "Justified: police report on file."}, headers=auditor)
        assert reviewed.status_code == 200 and reviewed.json()["reviewed_by"] == "independent-auditor"
        assert app_client.get("/v1/audit/emergency-access", params={"reviewed": "false"},
                              headers=auditor).json()["items"] == []
        assert app_client.post(f"/v1/audit/emergency-access/{grant['id']}/review",
                               json={"finding": "again"}, headers=auditor).status_code == 409
        assert app_client.get("/v1/audit/emergency-access", headers=auth("municipality-coordinator")).status_code == 403
