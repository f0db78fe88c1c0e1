"""An auditor's finding: `unjustified` revokes the grant at once and flags the agency until cleared."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from support.audit_log import entries
from support.emergency import AUDITOR, EMERGENCY, HEALTH, Auth, ask, review, slug
from support.refusals import one_denial

from app.emergency.models import AgencyFlag, EmergencyGrant, EmergencyNotice
from app.state import AppState

NOTE = "Caseworker-note-marker: no threat was on record at the time."


class TestUnjustified:
    def test_revokes_the_grant_at_once_and_flags_the_agency(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid, other = assigned_case(), assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        assert app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH, **EMERGENCY)).status_code == 200
        found = review(app_client, auth, grant["id"], "unjustified", NOTE)
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["finding"] == "unjustified" and body["active"] is False
        assert body["revoked_at"] is not None and body["revoked_by"] == AUDITOR and body["flag_id"]
        # From that moment, reads under the grant fail (and the refusal is logged).
        read = app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH, **EMERGENCY))
        assert read.status_code == 403 and "Yasmin" not in read.text
        one_denial(state, read)
        # The agency is flagged: an auditor lists it; it may not break the glass again in the network.
        auditor = auth(AUDITOR)
        flags = app_client.get("/v1/audit/flagged-agencies", params={"active": "true"}, headers=auditor).json()
        assert [(f["id"], f["agency_id"], f["network_id"], f["grant_id"]) for f in flags["items"]] == [
            (body["flag_id"], "city-health-centre", "demo-city", grant["id"])
        ]
        listed = app_client.get("/v1/audit/emergency-access", headers=auditor).json()["items"]
        assert [(g["id"], g["active"], g["flag_id"], g["finding"]) for g in listed] == [
            (grant["id"], False, body["flag_id"], "unjustified")
        ]
        refused = ask(app_client, auth, other, HEALTH)
        assert refused.status_code == 403 and slug(refused) == "emergency-agency-flagged"
        assert refused.json()["flag_id"] == body["flag_id"]
        one_denial(state, refused)
        # Asking again on the revoked referral is refused too: not a 409 for a grant that is gone.
        assert slug(ask(app_client, auth, rid, HEALTH)) == "emergency-agency-flagged"
        # Until an auditor clears the flag.
        cleared = app_client.post(f"/v1/audit/flagged-agencies/{body['flag_id']}/clear", headers=auditor)
        assert cleared.status_code == 200 and cleared.json()["active"] is False
        assert cleared.json()["cleared_by"] == AUDITOR
        assert app_client.post(f"/v1/audit/flagged-agencies/{body['flag_id']}/clear",
                               headers=auditor).status_code == 409
        assert app_client.get("/v1/audit/flagged-agencies", params={"active": "true"},
                              headers=auditor).json()["items"] == []
        assert ask(app_client, auth, other, HEALTH).status_code == 201

    def test_the_owner_is_untouched_by_another_agencys_flag(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str]
    ) -> None:
        rid, other = assigned_case(), assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        assert review(app_client, auth, grant["id"], "unjustified").status_code == 200
        assert ask(app_client, auth, other, "municipality-coordinator").status_code == 201


class TestFindings:
    def test_justified_leaves_the_grant_active(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        found = review(app_client, auth, grant["id"], "justified")
        assert found.status_code == 200 and found.json()["active"] is True and found.json()["flag_id"] is None
        assert app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH, **EMERGENCY)).status_code == 200
        assert app_client.get("/v1/audit/flagged-agencies", headers=auth(AUDITOR)).json()["items"] == []

    def test_a_finding_is_a_controlled_code(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        free_text = review(app_client, auth, grant["id"], "UNJUSTIFIED - revoke")
        assert free_text.status_code == 422
        assert any(e["path"] == "$.finding" for e in free_text.json()["errors"])
        with state.sessions() as session:
            row = session.get(EmergencyGrant, grant["id"])
            assert row is not None and row.reviewed_at is None and row.revoked_at is None

    def test_the_note_is_sealed_under_the_persons_key_and_never_logged(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        assert review(app_client, auth, grant["id"], "unjustified", NOTE).status_code == 200
        with state.sessions() as session:
            row = session.get(EmergencyGrant, grant["id"])
            assert row is not None and row.finding == "unjustified"
            assert row.finding_note is not None and b"Caseworker-note-marker" not in row.finding_note
        logged = json.dumps([e.details for e in entries(state)])
        assert "Caseworker-note-marker" not in logged
        [change] = [e for e in entries(state, event_type="change")
                    if (e.details or {}).get("action") == "emergency_review"]
        details: dict[str, Any] = change.details or {}
        assert details["finding"] == "unjustified" and details["revoked"] is True
        assert details["fields"] == ["finding", "finding_note"]
        assert details["record_ids"]["grant_id"] == grant["id"] and "flag_id" in details["record_ids"]
        listed = app_client.get("/v1/audit/emergency-access", headers=auth(AUDITOR)).json()["items"][0]
        assert listed["finding_note"] == NOTE

    def test_only_auditors_review_and_clear(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        for client_id in ("municipality-coordinator", HEALTH, "municipality-operator"):
            refused = review(app_client, auth, grant["id"], "unjustified", client_id=client_id)
            assert refused.status_code == 403
            one_denial(state, refused)
            assert app_client.get("/v1/audit/flagged-agencies", headers=auth(client_id)).status_code == 403
        assert review(app_client, auth, "emg_nope", "justified").status_code == 404
        with state.sessions() as session:
            assert session.query(AgencyFlag).count() == 0


class TestNetworks:
    def test_an_auditor_reviews_only_grants_of_networks_it_is_party_to(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
    ) -> None:
        town = post_referral("town-school-referrer")["id"]
        grant = ask(app_client, auth, town, "town-coordinator")
        assert grant.status_code == 201, grant.text
        auditor = auth(AUDITOR)  # independent-auditor: a party to demo-city only
        assert app_client.get("/v1/audit/emergency-access", headers=auditor).json()["items"] == []
        refused = review(app_client, auth, grant.json()["id"], "unjustified")
        assert refused.status_code == 403 and slug(refused) == "change-denied"
        one_denial(state, refused)


class TestErasure:
    def test_erasing_the_person_shreds_grants_and_feed_entries_and_keeps_the_flag(
        self, app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        grant = ask(app_client, auth, rid, HEALTH).json()
        flag_id = review(app_client, auth, grant["id"], "unjustified", NOTE).json()["flag_id"]
        subject_id = app_client.get(f"/v1/referrals/{rid}", headers=auth("municipality-coordinator",
                                                                          **{"X-Purpose": "safeguarding_assessment"}))
        erased = app_client.post(f"/v1/subjects/{subject_id.json()['subject']['id']}/erasure",
                                 headers=auth("municipality-coordinator"),
                                 json={"legal_ground": "consent_withdrawn", "reference": "DSR-2026-0042"})
        assert erased.status_code == 200, erased.text
        with state.sessions() as session:
            assert session.query(EmergencyGrant).count() == 0
            assert session.query(EmergencyNotice).count() == 0
            [flag] = session.query(AgencyFlag).all()  # the agency's record outlives the person's data
            assert (flag.id, flag.grant_id) == (flag_id, grant["id"])
