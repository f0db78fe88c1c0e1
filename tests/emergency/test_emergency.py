"""Break the glass: a time-limited grant for a party to the case, every use logged and reviewed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.audit_log import entries
from support.emergency import AUDITOR, EMERGENCY, HEALTH, REASON, SOUTH, Auth, ask, review, slug
from support.referrals import NARRATIVE, PURPOSE
from support.refusals import one_denial

from app.audit.models import AuditEntry
from app.emergency.models import EmergencyGrant
from app.state import AppState


def count(state: AppState, event_type: str) -> int:
    with state.sessions() as session:
        return len(list(session.scalars(select(AuditEntry.seq).where(AuditEntry.event_type == event_type))))


class TestEmergencyAccess:
    def test_a_grant_opens_the_agreed_view_for_a_limited_time(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        for purpose in (PURPOSE, {"X-Purpose": "intervention_planning"}):
            assert app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH, **purpose)).status_code == 403
        granted = ask(app_client, auth, rid, HEALTH)
        assert granted.status_code == 201, granted.text
        grant = granted.json()
        assert grant["view"] == "referral.case" and grant["active"] is True
        assert grant["reason"] is None and grant["finding"] is None and grant["revoked_at"] is None
        expires = datetime.fromisoformat(grant["expires_at"])
        assert timedelta(hours=2, minutes=59) < expires - state.clock() <= timedelta(hours=3)
        read = app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH, **EMERGENCY))
        assert read.status_code == 200
        assert read.headers["x-emergency-grant"] == grant["id"]
        assert read.json()["narrative"] == NARRATIVE  # referral.case carries the narrative
        assert "given_name" not in read.json().get("subject", {})  # referral.case, not full
        assert count(state, "emergency_grant") == 1 and count(state, "emergency_read") == 1
        later = state.clock() + timedelta(hours=3, minutes=1)
        state.clock = lambda: later
        expired = app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH, **EMERGENCY))
        assert expired.status_code == 403 and "Yasmin" not in expired.text

    def test_emergency_is_not_an_ordinary_purpose(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        response = app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH, **EMERGENCY))
        assert response.status_code == 403
        assert "Yasmin" not in response.text
        listing = app_client.get("/v1/referrals", headers=auth(HEALTH, **EMERGENCY))
        assert listing.status_code == 400

    @pytest.mark.parametrize(
        ("client_id", "reason", "status", "refusal"),
        [
            (HEALTH, None, 422, "validation-error"),
            (HEALTH, "too short", 422, "validation-error"),
            (SOUTH, REASON, 403, "emergency-not-eligible"),  # no relation to the case
            ("youth-ngo-reader", REASON, 403, "emergency-not-eligible"),  # a role the section does not name
            ("national-statistics", REASON, 403, "emergency-not-eligible"),
            ("town-coordinator", REASON, 403, "emergency-not-party"),  # another network's coordinator
            ("municipality-operator", REASON, 403, "admin-no-case-data"),
        ],
    )
    def test_refused_attempts_are_clear_and_logged(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str],
        client_id: str, reason: str | None, status: int, refusal: str,
    ) -> None:
        rid = assigned_case()
        response = ask(app_client, auth, rid, client_id, reason)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert slug(response) == refusal
        one_denial(state, response, REASON, "Threat to life")
        assert count(state, "emergency_grant") == 0

    def test_asking_again_while_a_grant_is_active_is_409_and_logged(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        assert ask(app_client, auth, rid, HEALTH).status_code == 201
        again = ask(app_client, auth, rid, HEALTH)
        assert again.status_code == 409 and slug(again) == "emergency-grant-active"
        one_denial(state, again)

    def test_the_log_holds_references_never_the_reason(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        """The reason is sealed in the grant row under the person's data key; the log names the grant."""
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        [entry] = entries(state, event_type="emergency_grant")
        details = entry.details or {}
        assert details["record_ids"]["grant_id"] == grant["id"] and details["record_ids"]["referral_id"] == rid
        assert "reason" not in details and REASON not in json.dumps(details)
        with state.sessions() as session:
            row = session.get(EmergencyGrant, grant["id"])
            assert row is not None and REASON.encode() not in row.reason

    def test_auditors_list_unreviewed_grants_and_review_them(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        auditor = auth(AUDITOR)
        pending = app_client.get("/v1/audit/emergency-access", params={"reviewed": "false"}, headers=auditor).json()
        assert [g["id"] for g in pending["items"]] == [grant["id"]]
        assert pending["items"][0]["reason"] == REASON
        reviewed = review(app_client, auth, grant["id"], "justified", "Police report on file.")
        assert reviewed.status_code == 200, reviewed.text
        body = reviewed.json()
        assert body["reviewed_by"] == AUDITOR and body["finding"] == "justified" and body["active"] is True
        assert body["finding_note"] is None  # the reply never echoes free text
        assert app_client.get("/v1/audit/emergency-access", params={"reviewed": "false"},
                              headers=auditor).json()["items"] == []
        listed = app_client.get("/v1/audit/emergency-access", headers=auditor).json()["items"][0]
        assert listed["finding_note"] == "Police report on file."
        assert review(app_client, auth, grant["id"], "justified").status_code == 409
        assert app_client.get("/v1/audit/emergency-access", headers=auth("municipality-coordinator")).status_code == 403

    def test_the_grant_stays_readable_to_the_auditor_only_by_listing(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        """The holder's reply and the review reply carry no reason; the listing is for auditors."""
        rid = post_referral()["id"]
        granted = ask(app_client, auth, rid, "municipality-coordinator").json()
        assert granted["reason"] is None
        assert app_client.get("/v1/audit/emergency-access", headers=auth(HEALTH)).status_code == 403
