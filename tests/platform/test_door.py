"""The one door: every route is classified, and case data leaves only in a door-built response."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body

from app import door

Auth = Callable[..., dict[str, str]]

# Operations whose 2xx replies may carry case data: each builds them with app.door.
DOOR_OPERATIONS = frozenset({
    "create_referral", "get_referral", "list_referrals", "transition_referral", "update_consent",
    "reassess_referral", "list_assessments", "get_worklist", "list_events", "create_note", "list_notes",
    "sync_summaries", "list_referral_legal_holds", "get_subject_disclosures", "schedule_meeting", "get_meeting",
    "add_agenda_item", "edit_agenda_item", "get_agenda_referral", "list_minutes", "list_referral_actions",
    "list_my_actions",
})
# Operations that never carry a referral's or a note's content (ids, codes, metadata, aggregates).
NO_CASE_DATA = frozenset({
    "get_health", "get_readiness", "get_metrics", "issue_token", "get_jwks", "get_me",
    "list_agencies", "create_agency", "list_clients", "create_client", "disable_client",
    "list_mappings", "create_mapping", "list_schemas", "get_schema", "list_vocabularies", "get_vocabulary",
    "list_agreements", "explain_decision", "reload_agreements", "list_networks", "get_network",
    "list_agreement_versions", "list_agreement_signatures", "sign_agreement",
    "get_statistics", "request_emergency_access", "list_emergency_grants", "review_emergency_grant",
    "list_flagged_agencies", "clear_agency_flag",
    "erase_subject", "list_legal_holds", "place_legal_hold", "lift_legal_hold", "place_referral_legal_hold",
    "lift_referral_legal_hold", "list_audit_entries", "export_audit_log", "get_audit_checkpoint",
    "get_audit_consistency_proof", "get_audit_inclusion_proof", "get_audit_leaf", "get_audit_verifier_keys",
    # The case conference's writes answer with receipts (ids, statuses, dates); its list, meetings' dates.
    "list_meetings", "close_meeting", "record_minutes", "remove_agenda_item", "create_action", "update_action",
    # Training records: people's course completions, never a case's.
    "record_training", "list_training_records", "training_status",
})
# Keys whose presence in a body means a referral's or a note's content is in it.
CASE_KEYS = frozenset({
    "subject", "narrative", "concerns", "vulnerability_factors", "protective_factors", "risk_level",
    "consent", "requested_services", "intervention_type", "status_history", "referring_person", "text",
    "do_not_contact", "original_codes", "author_person", "outcome",
})


def _operations(app_client: TestClient) -> dict[str, str]:
    spec = app_client.app.openapi()  # type: ignore[attr-defined]
    return {
        operation["operationId"]: f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def test_every_route_is_classified(app_client: TestClient) -> None:
    """A new route must say whether it carries case data; if it does, the door builds its replies."""
    operations = _operations(app_client)
    unclassified = sorted(set(operations) - DOOR_OPERATIONS - NO_CASE_DATA)
    assert not unclassified, f"classify these operations in tests/platform/test_door.py: {unclassified}"
    assert set(operations) >= DOOR_OPERATIONS


def _case_keys(content: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(content, dict):
        found |= CASE_KEYS & set(content)
        for value in content.values():
            found |= _case_keys(value)
    elif isinstance(content, list):
        for value in content:
            found |= _case_keys(value)
    return found


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every JSON response carrying case data that the door did not build."""
    bypasses: list[str] = []
    render = JSONResponse.render

    def checked(self: JSONResponse, content: Any) -> bytes:
        if not isinstance(self, door.CaseDataResponse) and self.status_code < 400:
            keys = _case_keys(content)
            if keys:
                bypasses.append(f"{type(self).__name__} {self.status_code}: {sorted(keys)}")
        return render(self, content)

    monkeypatch.setattr(JSONResponse, "render", checked)
    yield bypasses


def test_case_data_leaves_only_through_the_door(
    app_client: TestClient, auth: Auth, guard: list[str], move: Callable[..., Any]
) -> None:
    key = {"Idempotency-Key": "door-walk-1"}
    created = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER, **key))
    assert created.status_code == 201, created.text
    replay = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER, **key))
    assert replay.headers.get("Idempotent-Replayed") == "true"
    rid = created.json()["id"]
    calls = [
        app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)),
        app_client.get("/v1/referrals", headers=auth(COORDINATOR, **PURPOSE)),
        app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged", "reason": "door"},
                        headers=auth(COORDINATOR, **PURPOSE)),
        app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "accepted"}, headers=auth(COORDINATOR)),
        app_client.post(f"/v1/referrals/{rid}/consent", json={"status": "given"},
                        headers=auth(REFERRER, **PURPOSE)),
        app_client.get("/v1/events", headers=auth(REFERRER, **PURPOSE)),
        app_client.post(f"/v1/referrals/{rid}/notes", json={"classification": "shared", "text": "door note"},
                        headers=auth(REFERRER)),
        app_client.get(f"/v1/referrals/{rid}/notes", headers=auth(REFERRER, **PURPOSE)),
        app_client.get("/v1/summaries", headers=auth("youth-ngo-reader", **{"X-Purpose": "service_provision"})),
    ]
    assert all(c.status_code < 300 for c in calls), [(c.status_code, c.text[:200]) for c in calls]
    assert not guard, guard
    # Every door reply names the view it was projected to; a receipt says it holds none.
    assert all(door.GRANTED_VIEW in c.headers for c in calls)
    assert calls[3].json() == {"id": rid, "status": "accepted"}
    assert calls[3].headers[door.GRANTED_VIEW] == "none"

    # The case conference: the agenda, an item's referral, minutes and actions go out through the door too.
    conference = {"X-Purpose": "case_conference"}
    meeting = app_client.post("/v1/networks/demo-city/meetings", headers=auth(COORDINATOR, **conference),
                              json={"scheduled_for": "2099-01-01T10:00:00Z", "items": [{"referral_id": rid}]})
    assert meeting.status_code == 201, meeting.text
    mid = meeting.json()["id"]
    action = {"description": "door action", "owner_agency": "school-north", "due_on": "2099-01-02"}
    more = [
        meeting,
        app_client.get(f"/v1/meetings/{mid}", headers=auth(REFERRER, **conference)),
        app_client.get(f"/v1/meetings/{mid}/items/1/referral", headers=auth(REFERRER, **conference)),
        app_client.post(f"/v1/meetings/{mid}/items/1/minutes", json={"text": "door minutes"},
                        headers=auth(COORDINATOR)),
        app_client.get(f"/v1/referrals/{rid}/minutes", headers=auth(COORDINATOR, **PURPOSE)),
        app_client.post(f"/v1/referrals/{rid}/actions", json=action, headers=auth(COORDINATOR)),
        app_client.get(f"/v1/referrals/{rid}/actions", headers=auth(COORDINATOR, **PURPOSE)),
        app_client.get("/v1/actions", headers=auth(REFERRER, **PURPOSE)),
    ]
    assert all(c.status_code < 300 for c in more), [(c.status_code, c.text[:200]) for c in more]
    assert not guard, guard
    assert more[4].json()["items"][0]["entries"][0]["text"] == "door minutes"
    assert more[7].json()["items"][0]["description"] == "door action"


def test_only_the_door_builds_case_data_responses() -> None:
    with pytest.raises(TypeError):
        door.CaseDataResponse({"narrative": "x"}, status_code=200, headers={}, key=object())
    with pytest.raises(TypeError):
        door.Released({"narrative": "x"}, None, "referral.full", key=object())  # type: ignore[arg-type]
