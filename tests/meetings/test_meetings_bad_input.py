"""The case conference's bad paths: each a clear RFC 9457 problem, each refusal logged, nothing changed.

A meeting of another network, an agenda item for a referral outside the network, an invitation or
an action owned by a non-member, a due date or meeting date in the past, a decision the referral's
status does not allow, a closed meeting's agenda, a caller who is not the chair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from support.audit_log import for_request
from support.referrals import COORDINATOR, REFERRER
from support.refusals import SOUTH_COORDINATOR, client_headers, one_denial
from support.retention import START, Clock
from support.row_counts import counts

from app.state import AppState

Auth = Callable[..., dict[str, str]]
CONFERENCE = {"X-Purpose": "case_conference"}
TOWN_COORDINATOR = "town-coordinator"
TOWN_REFERRER = "town-school-referrer"
OPERATOR = "municipality-operator"


@pytest.fixture
def sitting(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
    move: Callable[..., Any],
) -> Iterator[dict[str, Any]]:
    """demo-city with a scheduled meeting discussing one triaged referral, and demo-town with its own."""
    clock = Clock(state)
    city = post_referral()["id"]
    move(city, "triaged")
    town = post_referral(TOWN_REFERRER)["id"]
    move(town, "triaged", client_id=TOWN_COORDINATOR)
    scheduled = app_client.post("/v1/networks/demo-city/meetings", headers=auth(COORDINATOR),
                                json={"scheduled_for": (START + timedelta(days=7)).isoformat()})
    assert scheduled.status_code == 201, scheduled.text
    town_meeting = app_client.post("/v1/networks/demo-town/meetings", headers=auth(TOWN_COORDINATOR),
                                   json={"scheduled_for": (START + timedelta(days=7)).isoformat()})
    assert town_meeting.status_code == 201, town_meeting.text
    yield {"clock": clock, "city": city, "town": town, "meeting": scheduled.json()["id"],
           "town_meeting": town_meeting.json()["id"]}


def refused(state: AppState, response: Response, status: int, slug_or_path: str) -> dict[str, Any]:
    """A problem document of that status naming the slug (in its type) or the path (in its errors)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    named = [problem["type"]] + [e.get("path", "") for e in problem.get("errors", [])]
    assert any(slug_or_path in n for n in named), (slug_or_path, problem)
    return problem


def unchanged(state: AppState, before: dict[str, int]) -> None:
    """Only the log grew (by the refusal's denial entry, if any): no meeting, item, minutes or action."""
    after = counts(state)
    assert {k: v for k, v in after.items() if k != "audit_entries"} == {
        k: v for k, v in before.items() if k != "audit_entries"}


class TestAnotherNetwork:
    def test_a_meeting_of_another_network_is_not_yours_to_schedule_edit_or_read(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        before = counts(state)
        town_meeting, city = sitting["town_meeting"], sitting["city"]
        attempts = [
            app_client.post("/v1/networks/demo-town/meetings", headers=auth(COORDINATOR),
                            json={"scheduled_for": (START + timedelta(days=8)).isoformat()}),
            app_client.post(f"/v1/meetings/{town_meeting}/items", headers=auth(COORDINATOR),
                            json={"referral_id": city}),
            app_client.patch(f"/v1/meetings/{town_meeting}/items/1", headers=auth(COORDINATOR),
                             json={"invited": ["town-school"]}),
            app_client.delete(f"/v1/meetings/{town_meeting}/items/1", headers=auth(COORDINATOR)),
            app_client.post(f"/v1/meetings/{town_meeting}/items/1/minutes", headers=auth(COORDINATOR),
                            json={"text": "Not ours.", "decision": "accept"}),
            app_client.post(f"/v1/meetings/{town_meeting}/close", headers=auth(COORDINATOR)),
            app_client.get(f"/v1/meetings/{town_meeting}", headers=auth(COORDINATOR, **CONFERENCE)),
            app_client.get(f"/v1/meetings/{town_meeting}/items/1/referral", headers=auth(COORDINATOR, **CONFERENCE)),
            app_client.get("/v1/networks/demo-town/meetings", headers=auth(COORDINATOR)),
        ]
        for response in attempts:
            refused(state, response, 403, "access-denied")
            one_denial(state, response, "Not ours.")
            assert sitting["town"] not in response.text
        unchanged(state, before)

    def test_an_item_for_a_referral_outside_the_network_is_unknown_to_it(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        before = counts(state)
        meeting, town = sitting["meeting"], sitting["town"]
        for response in (
            app_client.post(f"/v1/meetings/{meeting}/items", headers=auth(COORDINATOR), json={"referral_id": town}),
            app_client.post(f"/v1/meetings/{meeting}/items", headers=auth(COORDINATOR),
                            json={"referral_id": "ref_doesnotexist"}),
            app_client.post("/v1/networks/demo-city/meetings", headers=auth(COORDINATOR), json={
                "scheduled_for": (START + timedelta(days=9)).isoformat(), "items": [{"referral_id": town}]}),
        ):
            problem = refused(state, response, 422, "referral_id")
            assert problem["errors"][0]["type"] == "unknown_referral"
        unchanged(state, before)


class TestMembers:
    def test_invitations_attendance_and_action_owners_are_members_of_the_network(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        before = counts(state)
        meeting, city = sitting["meeting"], sitting["city"]
        day = (START + timedelta(days=3)).date().isoformat()
        cases = [
            (app_client.patch(f"/v1/meetings/{meeting}/items/1", headers=auth(COORDINATOR),
                              json={"invited": ["school-north", "town-school"]}), "$.invited", "not_a_member"),
            (app_client.patch(f"/v1/meetings/{meeting}/items/1", headers=auth(COORDINATOR),
                              json={"attended": ["city-health-centre"]}), "$.attended", "not_invited"),
            (app_client.post("/v1/networks/demo-city/meetings", headers=auth(COORDINATOR), json={
                "scheduled_for": (START + timedelta(days=9)).isoformat(),
                "items": [{"referral_id": city, "invited": ["nowhere-agency"]}]}), "$.items[0].invited",
             "not_a_member"),
            (app_client.post(f"/v1/referrals/{city}/actions", headers=auth(COORDINATOR), json={
                "description": "Visit", "owner_agency": "town-social-services", "due_on": day}),
             "$.owner_agency", "not_a_member"),
        ]
        for response, path, kind in cases:
            problem = refused(state, response, 422, path)
            assert problem["errors"][0] == {"path": path, "type": kind, "message": problem["errors"][0]["message"]}
        unchanged(state, before)
        held = app_client.get(f"/v1/meetings/{meeting}", headers=auth(COORDINATOR, **CONFERENCE)).json()
        assert held["agenda"][0]["invited"] == ["school-north"] and held["agenda"][0]["attended"] is None


class TestDates:
    def test_a_due_date_or_a_meeting_in_the_past_is_refused(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        before = counts(state)
        yesterday = (START - timedelta(days=1)).date().isoformat()
        action = app_client.post(f"/v1/referrals/{sitting['city']}/actions", headers=auth(COORDINATOR), json={
            "description": "Too late", "owner_agency": "city-social-services", "due_on": yesterday})
        assert refused(state, action, 422, "$.due_on")["errors"][0]["type"] == "past"
        meeting = app_client.post("/v1/networks/demo-city/meetings", headers=auth(COORDINATOR),
                                  json={"scheduled_for": (START - timedelta(hours=2)).isoformat()})
        assert refused(state, meeting, 422, "$.scheduled_for")["errors"][0]["type"] == "past"
        for body in ({"scheduled_for": "next tuesday"}, {"scheduled_for": START.isoformat(), "kind": "monthly"},
                     {"scheduled_for": START.isoformat(), "surprise": 1}, {},
                     {"scheduled_for": (START + timedelta(days=3)).replace(tzinfo=None).isoformat()}):
            malformed = app_client.post("/v1/networks/demo-city/meetings", headers=auth(COORDINATOR), json=body)
            assert malformed.status_code == 422, (body, malformed.text)
            assert malformed.headers["content-type"].startswith("application/problem+json")
        unchanged(state, before)


class TestDecisions:
    def test_a_decision_the_referrals_status_does_not_allow_changes_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        meeting, city = sitting["meeting"], sitting["city"]
        before = counts(state)
        for decision, body in (("continue_support", {}), ("refer_on", {}), ("assign", {"agencies": []})):
            response = app_client.post(f"/v1/meetings/{meeting}/items/1/minutes", headers=auth(COORDINATOR),
                                       json={"text": "The panel decides.", "decision": decision, **body})
            assert response.status_code in (409, 422), (decision, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        no_outcome = app_client.post(f"/v1/meetings/{meeting}/items/1/minutes", headers=auth(COORDINATOR),
                                     json={"text": "Noted.", "outcome": "risk_reduced"})
        refused(state, no_outcome, 422, "$.decision")
        unknown = app_client.post(f"/v1/meetings/{meeting}/items/1/minutes", headers=auth(COORDINATOR),
                                  json={"text": "Noted.", "decision": "adjourn"})
        assert unknown.status_code == 422
        no_item = app_client.post(f"/v1/meetings/{meeting}/items/9/minutes", headers=auth(COORDINATOR),
                                  json={"text": "Noted."})
        assert no_item.status_code == 404
        unchanged(state, before)
        status = app_client.get(f"/v1/referrals/{city}", headers=auth(COORDINATOR, **{
            "X-Purpose": "intervention_planning"})).json()["status"]
        assert status == "triaged"
        held = app_client.get(f"/v1/meetings/{meeting}", headers=auth(COORDINATOR, **CONFERENCE)).json()
        assert held["agenda"][0]["decision"] is None

    def test_decided_once_and_never_after_the_meeting_closed(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        meeting = sitting["meeting"]
        minutes = f"/v1/meetings/{meeting}/items/1/minutes"
        first = app_client.post(minutes, headers=auth(COORDINATOR), json={"text": "Accepted.", "decision": "accept"})
        assert first.status_code == 201, first.text
        before = counts(state)
        again = app_client.post(minutes, headers=auth(COORDINATOR), json={"text": "Again.", "decision": "decline"})
        refused(state, again, 409, "item-decided")
        assert app_client.post(f"/v1/meetings/{meeting}/close", headers=auth(COORDINATOR)).status_code == 200
        before = counts(state)
        for response in (
            app_client.post(f"/v1/meetings/{meeting}/items", headers=auth(COORDINATOR),
                            json={"referral_id": sitting["city"]}),
            app_client.patch(f"/v1/meetings/{meeting}/items/1", headers=auth(COORDINATOR),
                             json={"attended": ["school-north"]}),
            app_client.delete(f"/v1/meetings/{meeting}/items/1", headers=auth(COORDINATOR)),
            app_client.post(f"/v1/meetings/{meeting}/close", headers=auth(COORDINATOR)),
            app_client.post(minutes, headers=auth(COORDINATOR), json={"text": "Late.", "decision": "assign",
                                                                      "agencies": ["city-social-services"]}),
        ):
            refused(state, response, 409, "meeting-closed")
        unchanged(state, before)

    def test_an_item_with_minutes_stays_on_the_agenda(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        meeting = sitting["meeting"]
        noted = app_client.post(f"/v1/meetings/{meeting}/items/1/minutes", headers=auth(COORDINATOR),
                                json={"text": "Discussed, no decision yet."})
        assert noted.status_code == 201
        before = counts(state)
        refused(state, app_client.delete(f"/v1/meetings/{meeting}/items/1", headers=auth(COORDINATOR)), 409,
                "item-has-minutes")
        unchanged(state, before)


class TestNotTheChair:
    def test_only_the_chair_runs_the_meeting_and_each_refusal_is_logged(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        meeting, city = sitting["meeting"], sitting["city"]
        south = client_headers(state, app_client, SOUTH_COORDINATOR, "school-south", ["coordinator"])
        before = counts(state)
        for headers in (auth(REFERRER), south, auth(OPERATOR)):
            for response in (
                app_client.post("/v1/networks/demo-city/meetings", headers=headers,
                                json={"scheduled_for": (START + timedelta(days=8)).isoformat()}),
                app_client.post(f"/v1/meetings/{meeting}/items", headers=headers, json={"referral_id": city}),
                app_client.patch(f"/v1/meetings/{meeting}/items/1", headers=headers,
                                 json={"invited": ["school-north", "city-social-services"]}),
                app_client.delete(f"/v1/meetings/{meeting}/items/1", headers=headers),
                app_client.post(f"/v1/meetings/{meeting}/items/1/minutes", headers=headers,
                                json={"text": "We decide.", "decision": "accept"}),
                app_client.post(f"/v1/meetings/{meeting}/close", headers=headers),
            ):
                assert response.status_code == 403, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                one_denial(state, response, "We decide.")
                assert city not in response.text
        unchanged(state, before)

    def test_an_agency_not_invited_reads_nothing_of_the_meeting(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        meeting, city = sitting["meeting"], sitting["city"]
        for client in ("health-centre-caseworker", "youth-ngo-caseworker"):
            for response in (
                app_client.get(f"/v1/meetings/{meeting}", headers=auth(client, **CONFERENCE)),
                app_client.get(f"/v1/meetings/{meeting}/items/1/referral", headers=auth(client, **CONFERENCE)),
            ):
                refused(state, response, 403, "access-denied")
                assert city not in response.text
                assert [e.event_type for e in for_request(state, response.headers["X-Request-ID"])] == ["denial"]
            listed = app_client.get("/v1/networks/demo-city/meetings", headers=auth(client))
            assert listed.status_code == 200 and listed.json()["items"] == []
        # The invited referrer reads it, but only for the conference's purpose.
        wrong = app_client.get(f"/v1/meetings/{meeting}", headers=auth(REFERRER, **{"X-Purpose": "referral"}))
        assert wrong.status_code in (400, 403), wrong.text
        assert city not in wrong.text

    def test_actions_are_set_by_the_parties_and_changed_by_owner_or_chair(
        self, app_client: TestClient, auth: Auth, state: AppState, sitting: dict[str, Any],
    ) -> None:
        city = sitting["city"]
        day = (START + timedelta(days=5)).date().isoformat()
        body = {"description": "Call the family", "owner_agency": "city-social-services", "due_on": day}
        before = counts(state)
        for client in ("health-centre-caseworker", OPERATOR, TOWN_COORDINATOR):
            response = app_client.post(f"/v1/referrals/{city}/actions", headers=auth(client), json=body)
            assert response.status_code == 403, (client, response.text)
            one_denial(state, response, "Call the family")
            assert "Call the family" not in response.text
        unchanged(state, before)
        created = app_client.post(f"/v1/referrals/{city}/actions", headers=auth(COORDINATOR), json=body)
        assert created.status_code == 201, created.text
        action = created.json()["id"]
        before = counts(state)
        for client, status in (("health-centre-caseworker", "done"), (REFERRER, "done"),
                               ("social-services-caseworker", "cancelled")):
            response = app_client.post(f"/v1/actions/{action}/status", headers=auth(client),
                                       json={"status": status})
            assert response.status_code == 403, (client, response.text)
        for response in (
            app_client.post(f"/v1/actions/{action}/status", headers=auth(COORDINATOR), json={"status": "overdue"}),
            app_client.post(f"/v1/actions/{action}/status", headers=auth(COORDINATOR), json={"status": "finished"}),
            app_client.post(f"/v1/actions/{action}/status", headers={**auth(COORDINATOR), "If-Match": '"stale"'},
                            json={"status": "done"}),
            app_client.post("/v1/actions/act_nothing/status", headers=auth(COORDINATOR), json={"status": "done"}),
        ):
            assert response.status_code in (404, 412, 422), response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        unchanged(state, before)
        held = app_client.get(f"/v1/referrals/{city}/actions",
                              headers=auth(COORDINATOR, **{"X-Purpose": "intervention_planning"}))
        assert [(a["id"], a["status"]) for a in held.json()["items"]] == [(action, "open")]
