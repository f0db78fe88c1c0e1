"""The lifecycle: only allowed transitions, by allowed roles; the closed loop and the change feed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, PURPOSE, REFERRER

from app.referrals.lifecycle import TRANSITIONS, Status

Auth = Callable[..., dict[str, str]]

# How to reach each status from submitted, and who makes the last step.
PATHS: dict[Status, list[Any]] = {
    Status.submitted: [],
    Status.triaged: ["triaged"],
    Status.accepted: ["triaged", "accepted"],
    Status.declined: ["triaged", "declined"],
    Status.assigned: ["triaged", "accepted", "assigned"],
    Status.closed: ["triaged", "accepted", "closed"],
    Status.withdrawn: [],
    Status.transferred: ["transferred"],
}


def reach(move: Callable[..., Any], referral_id: str, target: Status) -> None:
    if target is Status.withdrawn:
        move(referral_id, "withdrawn", client_id=REFERRER)
    elif target is Status.in_intervention:
        move(referral_id, "triaged", "accepted", "assigned")
        move(referral_id, "in_intervention", client_id="youth-ngo-caseworker")
    else:
        move(referral_id, *PATHS[target])


class TestHappyPath:
    def test_from_submission_to_closure_with_the_referrer_kept_informed(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        move(rid, "triaged", "accepted", ("assigned", {"agencies": ["youth-ngo-bridges", "city-social-services"]}))
        started = move(rid, "in_intervention", client_id="youth-ngo-caseworker")
        assert started["status"] == "in_intervention"
        assert "subject" not in started and "narrative" not in started
        closed = move(rid, ("closed", {"outcome": "engaged_completed", "reason": "programme done"}))
        assert closed == {"id": rid, "status": "closed"}  # no purpose stated: a receipt
        mine = app_client.get(f"/v1/referrals/{rid}", headers=auth(REFERRER, **PURPOSE)).json()
        assert mine["status"] == "closed" and mine["outcome"] == "engaged_completed"
        assert [h["status"] for h in mine["status_history"]] == [
            "submitted", "triaged", "accepted", "assigned", "in_intervention", "closed"]
        assert mine["assigned_agencies"] == ["city-social-services", "youth-ngo-bridges"]
        assert mine["status_history"][3]["agencies"] == ["city-social-services", "youth-ngo-bridges"]

    def test_the_change_feed_shows_each_agency_its_own_referrals(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        mine = post_referral()["id"]
        other = post_referral("school-south-referrer")["id"]
        move(mine, "triaged", "accepted", "assigned")
        move(other, "triaged")
        feed = app_client.get("/v1/events", headers=auth(REFERRER, **PURPOSE)).json()
        assert {e["referral_id"] for e in feed["items"]} == {mine}
        assert [e["status"] for e in feed["items"]] == ["submitted", "triaged", "accepted", "assigned"]
        assert "Yasmin" not in str(feed)
        ngo = app_client.get(
            "/v1/events", headers=auth("youth-ngo-caseworker", **{"X-Purpose": "service_provision"})
        ).json()
        assert {e["referral_id"] for e in ngo["items"]} == {mine}
        move(mine, "in_intervention", client_id="youth-ngo-caseworker")
        later = app_client.get("/v1/events", params={"after": feed["next_cursor"]},
                               headers=auth(REFERRER, **PURPOSE)).json()
        assert [e["status"] for e in later["items"]] == ["in_intervention"]
        again = app_client.get("/v1/events", params={"after": later["next_cursor"]},
                               headers=auth(REFERRER, **PURPOSE)).json()
        assert again["items"] == [] and again["next_cursor"] == later["next_cursor"]
        assert app_client.get("/v1/events", headers=auth(REFERRER)).status_code == 400


ALL_PAIRS = [(s, t) for s in Status for t in Status]
LEGAL = {(t.source, t.target) for t in TRANSITIONS}


class TestIllegalTransitions:
    # A transferred referral rests as `submitted` in its new network (tests/networks), so
    # `transferred` is never a status to move on from.
    @pytest.mark.parametrize(("source", "target"),
                             [p for p in ALL_PAIRS if p not in LEGAL and p[0] is not Status.transferred],
                             ids=lambda s: s.value)
    def test_every_illegal_transition_is_409_naming_the_allowed_ones(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any],
        source: Status, target: Status,
    ) -> None:
        rid = post_referral()["id"]
        reach(move, rid, source)
        before = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)).json()
        body: dict[str, Any] = {"to": target.value, "reason": "r", "outcome": None}
        response = app_client.post(f"/v1/referrals/{rid}/transitions", json=body, headers=auth(COORDINATOR))
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["allowed"] == sorted(t.target.value for t in TRANSITIONS if t.source is source)
        after = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)).json()
        assert after == before

    @pytest.mark.parametrize(
        ("steps", "target", "client_id"),
        [
            ([], "triaged", REFERRER),
            ([], "triaged", "youth-ngo-caseworker"),
            (["triaged"], "accepted", REFERRER),
            (["triaged", "accepted"], "withdrawn", REFERRER),
            (["triaged", "accepted", "assigned"], "in_intervention", REFERRER),
            (["triaged", "accepted", "assigned"], "in_intervention", "school-south-referrer"),
            (["triaged", "accepted", "assigned"], "closed", "youth-ngo-caseworker"),
            ([], "withdrawn", "school-south-referrer"),
            ([], "withdrawn", COORDINATOR),
        ],
    )
    def test_wrong_roles_are_refused(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any],
        steps: list[str], target: str, client_id: str,
    ) -> None:
        rid = post_referral()["id"]
        move(rid, *steps)
        body = {"to": target, "reason": "because"}
        if target == "closed":
            body["outcome"] = "risk_reduced"
        response = app_client.post(f"/v1/referrals/{rid}/transitions", json=body, headers=auth(client_id))
        assert response.status_code in (403, 409), response.text
        status = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)).json()["status"]
        assert status == (steps[-1] if steps else "submitted")

    @pytest.mark.parametrize(
        ("steps", "body", "path"),
        [
            (["triaged", "accepted"], {"to": "assigned"}, "$.agencies"),
            (["triaged", "accepted"], {"to": "assigned", "agencies": ["no-such-agency"]}, "$.agencies[0]"),
            (["triaged", "accepted"], {"to": "closed"}, "$.outcome"),
            (["triaged", "accepted"], {"to": "closed", "outcome": "vanished"}, "$.outcome"),
            (["triaged"], {"to": "declined"}, "$.reason"),
            ([], {"to": "transferred", "reason": "moved"}, "$.to_network"),
            ([], {"to": "triaged", "agencies": ["school-north"]}, "$.agencies"),
            ([], {"to": "flying"}, "$.to"),
        ],
    )
    def test_incomplete_transitions_are_422(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any],
        steps: list[str], body: dict[str, Any], path: str,
    ) -> None:
        rid = post_referral()["id"]
        move(rid, *steps)
        response = app_client.post(f"/v1/referrals/{rid}/transitions", json=body, headers=auth(COORDINATOR))
        assert response.status_code == 422, response.text
        assert path in [e["path"] for e in response.json()["errors"]]

    def test_referrer_withdraws_before_acceptance(
        self, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        move(rid, "triaged")
        assert move(rid, ("withdrawn", {"reason": "family moved"}), client_id=REFERRER)["status"] == "withdrawn"


class TestConditionalUpdates:
    def test_a_stale_if_match_is_412_and_changes_nothing(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        created = post_referral()
        rid = created["id"]
        etag = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)).headers["etag"]
        ok = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged"},
                             headers={**auth(COORDINATOR), "If-Match": etag})
        assert ok.status_code == 200
        assert ok.headers["etag"] == f'"{rid}.v2"'
        stale = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "accepted"},
                                headers={**auth(COORDINATOR), "If-Match": etag})
        assert stale.status_code == 412
        assert stale.headers["content-type"] == "application/problem+json"
        status = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)).json()["status"]
        assert status == "triaged"

    def test_a_retried_transition_with_its_key_is_applied_once(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        headers = {**auth(COORDINATOR), "Idempotency-Key": "t-1"}
        first = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged"}, headers=headers)
        again = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged"}, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        history = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)).json()["status_history"]
        assert [h["status"] for h in history] == ["submitted", "triaged"]
