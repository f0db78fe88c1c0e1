"""The coordinator's work list follows the network's protocol (policies/networks/demo-city.yaml)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from support.audit_log import for_request
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body
from support.retention import START, Clock

from app.state import AppState

Auth = Callable[..., dict[str, str]]
WORKLIST = "/v1/networks/demo-city/worklist"


def nobody_known(**changes: Any) -> dict[str, Any]:
    """A referral about a person with no identifier: nobody to link to."""
    return {"subject": referral_body()["subject"] | {"identifiers": []}, **changes}


def due(app_client: TestClient, auth: Auth, state: AppState) -> set[tuple[str, str]]:
    response = app_client.get(WORKLIST, headers=auth(COORDINATOR, **PURPOSE))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["network"] == "demo-city"
    assert [i["due_since"] for i in body["items"]] == sorted(i["due_since"] for i in body["items"])
    # Each referral listed leaves its entry, for the purpose stated (the one door).
    logged = [e for e in for_request(state, response.headers["X-Request-ID"]) if e.event_type != "denial"]
    assert [e.details["record_ids"]["referral_id"] for e in logged] == [i["referral_id"] for i in body["items"]]
    assert {e.purpose for e in logged} <= {PURPOSE["X-Purpose"]}
    return {(item["referral_id"], item["kind"]) for item in body["items"]}


def test_a_month_of_deadlines_reviews_and_a_repeat_referral(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
    move: Callable[..., Any],
) -> None:
    clock = Clock(state)
    urgent = post_referral(**nobody_known(urgency="immediate"))["id"]  # triage within PT24H
    waiting = post_referral(**nobody_known(urgency="priority"))["id"]  # assignment within P10D
    move(waiting, "triaged", "accepted")
    closed = post_referral()["id"]  # the person with the default national id
    move(closed, "triaged", "accepted", ("assigned", {"agencies": ["city-social-services"]}), "closed")
    assert due(app_client, auth, state) == set()

    clock.at(START + timedelta(hours=25))
    assert due(app_client, auth, state) == {(urgent, "triage_overdue")}
    move(urgent, "triaged")
    assert due(app_client, auth, state) == set()  # triaged: off the list

    clock.at(START + timedelta(days=10, minutes=1))
    repeat = post_referral()["id"]  # the same national id: the same person, within P12M
    assert due(app_client, auth, state) == {(waiting, "assignment_overdue"), (repeat, "repeat_referral")}
    detail = next(i for i in app_client.get(WORKLIST, headers=auth(COORDINATOR, **PURPOSE)).json()["items"]
                  if i["kind"] == "repeat_referral")["detail"]
    assert closed in detail and "2026" in detail

    clock.at(START + timedelta(days=190))  # past the 6-month review point, within a month of it
    listed = due(app_client, auth, state)
    assert (closed, "review_due") in listed
    clock.at(START + timedelta(days=250))  # a meeting cadence later: it has had its meeting
    assert (closed, "review_due") not in due(app_client, auth, state)
    clock.at(START + timedelta(days=370))  # the 12-month review
    assert (closed, "review_due") in due(app_client, auth, state)


def test_only_the_networks_coordinator_reads_it(app_client: TestClient, auth: Auth, state: AppState) -> None:
    for client_id in (REFERRER, "municipality-operator", "town-coordinator", "youth-ngo-reader"):
        response = app_client.get(WORKLIST, headers=auth(client_id, **PURPOSE))
        assert response.status_code == 403, (client_id, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [e.event_type for e in for_request(state, response.headers["X-Request-ID"])] == ["denial"]
    assert app_client.get("/v1/networks/nowhere/worklist", headers=auth(COORDINATOR, **PURPOSE)).status_code == 404
    assert app_client.get(WORKLIST).status_code == 401
    unstated = app_client.get(WORKLIST, headers=auth(COORDINATOR))
    assert unstated.status_code == 400 and unstated.json()["type"].endswith("purpose-required")
    assert [e.event_type for e in for_request(state, unstated.headers["X-Request-ID"])] == ["denial"]
    town = app_client.get("/v1/networks/demo-town/worklist", headers=auth("town-coordinator", **PURPOSE))
    assert town.status_code == 200 and town.json() == {"network": "demo-town", "items": [], "agreements": [],
                                                       "next_cursor": None}


def test_the_list_comes_in_pages_of_what_is_granted_and_each_page_is_logged(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
) -> None:
    clock = Clock(state)
    made = [post_referral(**nobody_known(urgency="immediate"))["id"] for _ in range(5)]
    clock.at(START + timedelta(hours=25))
    whole = app_client.get(WORKLIST, headers=auth(COORDINATOR, **PURPOSE)).json()
    assert {i["referral_id"] for i in whole["items"]} == set(made) and whole["next_cursor"] is None
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "kind": "triage_overdue", **({"cursor": cursor} if cursor else {})}
        response = app_client.get(WORKLIST, params=params, headers=auth(COORDINATOR, **PURPOSE))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        logged = [e for e in for_request(state, response.headers["X-Request-ID"]) if e.event_type != "denial"]
        assert [e.details["record_ids"]["referral_id"] for e in logged] == [i["referral_id"] for i in body["items"]]
        seen += [i["referral_id"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["referral_id"] for i in whole["items"]] and pages == 3
    assert app_client.get(WORKLIST, params={"kind": "review_due"},
                          headers=auth(COORDINATOR, **PURPOSE)).json()["items"] == []
    for bad in ({"cursor": "not-a-cursor"}, {"kind": "everything"}, {"limit": 0}, {"limit": 201}):
        refused = app_client.get(WORKLIST, params=bad, headers=auth(COORDINATOR, **PURPOSE))
        assert refused.status_code in (400, 422), (bad, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
