"""The case conference through the console: schedule, agenda, invitations, minutes and decision, closing.

Each change is checked back through the API (the chair's own read for `case_conference`); each
refusal comes back to the meeting's page with a message and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from support.referrals import COORDINATOR

from app.state import AppState

Auth = Callable[..., dict[str, str]]
CONFERENCE = {"X-Purpose": "case_conference"}
PLANNING = {"X-Purpose": "intervention_planning"}
MEETING = re.compile(r"/console/meetings/([A-Za-z0-9_-]+)\?saved=scheduled$")


def api_meeting(app_client: TestClient, auth: Auth, meeting_id: str) -> dict[str, Any]:
    found = app_client.get(f"/v1/meetings/{meeting_id}", headers=auth(COORDINATOR, **CONFERENCE))
    assert found.status_code == 200, found.text
    result: dict[str, Any] = found.json()
    return result


def meetings_of(app_client: TestClient, auth: Auth) -> list[dict[str, Any]]:
    listed = app_client.get("/v1/networks/demo-city/meetings", headers=auth(COORDINATOR))
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


def test_the_chair_holds_a_meeting_from_schedule_to_close(
    signed_in: Callable[..., Any], post_referral: Callable[..., Any], move: Callable[..., Any],
    app_client: TestClient, auth: Auth, state: AppState,
) -> None:
    rid = post_referral()["id"]
    move(rid, "triaged")
    karim = signed_in("karim-coordinator", purpose="case_conference")
    listed = karim.get("/console/meetings")
    assert listed.status_code == 200 and "No meetings yet." in listed.text

    # Scheduling in the past: the API's 422, the form again, no meeting.
    form = karim.get("/console/meetings/new")
    assert form.status_code == 200 and 'name="scheduled_for"' in form.text
    past = (state.clock() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    refused = karim.post("/console/meetings/new", {"network": "demo-city", "scheduled_for": past, "kind": "regular"})
    assert refused.status_code == 422 and 'id="scheduled_for-error"' in refused.text
    refused = karim.post("/console/meetings/new", {"network": "demo-city", "scheduled_for": "next week"})
    assert refused.status_code == 422
    refused = karim.post("/console/meetings/new", {"network": "demo-town", "scheduled_for": past})
    assert refused.status_code == 422  # not one of the person's networks
    assert meetings_of(app_client, auth) == []

    when = (state.clock() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    scheduled = karim.post("/console/meetings/new", {"network": "demo-city", "scheduled_for": when,
                                                     "kind": "regular"})
    assert scheduled.status_code == 200, scheduled.text
    found = MEETING.search(str(scheduled.url))
    assert found, scheduled.url
    mid = found.group(1)
    assert "Saved: the meeting is scheduled." in scheduled.text and "The agenda is empty." in scheduled.text
    assert [m["id"] for m in meetings_of(app_client, auth)] == [mid]
    assert mid in karim.get("/console/meetings").text

    # An item naming the referral and the agencies invited to it.
    added = karim.post(f"/console/meetings/{mid}/items", {"referral_id": rid,
                                                          "invited": ["school-north", "city-social-services"]})
    assert added.status_code == 200, added.text
    assert rid in added.text and "Saved: the item is on the agenda." in added.text
    [item] = api_meeting(app_client, auth, mid)["agenda"]
    assert item["referral_id"] == rid and item["invited"] == ["city-social-services", "school-north"]
    # The same referral again, and one that does not exist: refused, the agenda unchanged.
    again = karim.post(f"/console/meetings/{mid}/items", {"referral_id": rid})
    assert again.status_code == 409, again.text
    assert "Nothing was changed" in again.text
    unknown = karim.post(f"/console/meetings/{mid}/items", {"referral_id": "ref_nobody"})
    assert 400 <= unknown.status_code < 500 and "Nothing was changed" in unknown.text
    assert len(api_meeting(app_client, auth, mid)["agenda"]) == 1

    # Invitations edited (PATCH), then attendance.
    edited = karim.post(f"/console/meetings/{mid}/items/{item['number']}/invitations", {
        "which": "invited", "invited": ["city-social-services", "youth-ngo-bridges"]})
    assert edited.status_code == 200, edited.text
    [item] = api_meeting(app_client, auth, mid)["agenda"]
    assert item["invited"] == ["city-social-services", "youth-ngo-bridges"]
    refused = karim.post(f"/console/meetings/{mid}/items/{item['number']}/invitations", {
        "which": "attended", "attended": ["school-north"]})  # not invited
    assert refused.status_code == 422, refused.text
    attended = karim.post(f"/console/meetings/{mid}/items/{item['number']}/invitations", {
        "which": "attended", "attended": ["city-social-services"]})
    assert attended.status_code == 200
    assert api_meeting(app_client, auth, mid)["agenda"][0]["attended"] == ["city-social-services"]

    # Minutes with a decision the referral's status does not allow: refused; then the panel accepts it.
    refused = karim.post(f"/console/meetings/{mid}/items/{item['number']}/minutes", {
        "text": "Close it now.", "decision": "close", "outcome": "risk_reduced"})
    assert refused.status_code == 409, refused.text
    assert "Close it now." in refused.text  # the minutes typed are kept
    assert api_meeting(app_client, auth, mid)["agenda"][0]["decision"] is None
    minuted = karim.post(f"/console/meetings/{mid}/items/{item['number']}/minutes", {
        "text": "Discussed; the panel accepts the referral.", "decision": "accept"})
    assert minuted.status_code == 200, minuted.text
    assert "Saved: the minutes are recorded." in minuted.text
    assert api_meeting(app_client, auth, mid)["agenda"][0]["decision"] == "accept"
    status = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PLANNING)).json()["status"]
    assert status == "accepted"
    minutes = app_client.get(f"/v1/referrals/{rid}/minutes", headers=auth(COORDINATOR, **PLANNING)).json()
    assert [e["text"] for e in minutes["items"][0]["entries"]] == ["Discussed; the panel accepts the referral."]

    # Closing: the agenda is final; the page offers corrections only.
    closed = karim.post(f"/console/meetings/{mid}/close")
    assert closed.status_code == 200, closed.text
    assert "Saved: the meeting is closed." in closed.text and "Correction to the minutes" in closed.text
    assert "Add an item" not in closed.text
    assert api_meeting(app_client, auth, mid)["status"] == "closed"
    again = karim.post(f"/console/meetings/{mid}/close")
    assert again.status_code == 409 and "Nothing was changed" in again.text


def test_a_meeting_is_read_for_the_case_conference_only(
    signed_in: Callable[..., Any], app_client: TestClient, auth: Auth, state: AppState,
) -> None:
    when = (state.clock() + timedelta(days=3)).isoformat()
    created = app_client.post("/v1/networks/demo-city/meetings", headers=auth(COORDINATOR),
                              json={"scheduled_for": when, "propose_agenda": False})
    assert created.status_code == 201, created.text
    mid = created.json()["id"]
    karim = signed_in("karim-coordinator", purpose="safeguarding_assessment")
    page = karim.get(f"/console/meetings/{mid}")
    assert page.status_code == 400
    assert "case conference only" in page.text and "/console/purpose?next=" in page.text
    assert karim.get("/console/meetings").status_code == 200  # the list says nothing of the cases
    # Another network's chair: refused by the API, a page (never a 5xx).
    tarek = signed_in("town-coordinator-person", purpose="safeguarding_assessment")
    assert tarek.get(f"/console/meetings/{mid}").status_code in (400, 403, 404)
    assert mid not in tarek.get("/console/meetings").text
