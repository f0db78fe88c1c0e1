"""Networks: isolated on one deployment, chosen at creation, left only by a logged transfer."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.audit_log import entries, for_request
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body

from app.config import REPO_ROOT, Settings
from app.main import create_app
from app.state import AppState

Auth = Callable[..., dict[str, str]]
TOWN_COORDINATOR = "town-coordinator"
TOWN_REFERRER = "town-school-referrer"


def _denials(state: AppState, request_id: str) -> list[Any]:
    return [e for e in for_request(state, request_id) if e.event_type == "denial"]


class TestNetworksAreListed:
    def test_both_demo_networks_with_coordinator_and_members(self, app_client: TestClient, auth: Auth) -> None:
        response = app_client.get("/v1/networks", headers=auth(REFERRER))
        assert response.status_code == 200, response.text
        networks = {n["id"]: n for n in response.json()["items"]}
        assert networks["demo-city"]["coordinator"] == "city-municipality"
        assert networks["demo-town"]["coordinator"] == "town-council"
        assert "school-north" in networks["demo-city"]["members"]
        assert "school-north" not in networks["demo-town"]["members"]
        assert networks["demo-town"]["agreements"] == ["demo-town", "national-statistics"]
        one = app_client.get("/v1/networks/demo-town", headers=auth(REFERRER))
        assert one.status_code == 200 and one.json()["name"] == "Demo Town Community Action Team"
        missing = app_client.get("/v1/networks/nowhere", headers=auth(REFERRER))
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

    def test_each_network_states_its_protocol(self, app_client: TestClient, auth: Auth) -> None:
        city = app_client.get("/v1/networks/demo-city", headers=auth(REFERRER)).json()["protocol"]
        assert city["meetings"] == {"cadence": "P1M", "chair": "city-municipality"}
        assert city["deadlines"]["triage"]["immediate"] == "PT24H"
        assert city["reviews_after_closure"] == ["P6M", "P12M"] and city["repeat_referral_window"] == "P12M"
        assert city["reassessment_by"] == ["coordinator", "owner", "assigned"]
        town = app_client.get("/v1/networks/demo-town", headers=auth(REFERRER)).json()["protocol"]
        assert town["meetings"]["chair"] == "town-council"  # defaults where its file is silent
        assert town["reassessment_by"] == ["coordinator", "owner"]


class TestIsolation:
    """Finding 1: another network's coordinator read, moved and changed this network's referrals."""

    def test_a_referral_belongs_to_its_referrers_network(
        self, post_referral: Callable[..., dict[str, Any]], app_client: TestClient, auth: Auth
    ) -> None:
        city = post_referral()
        town = post_referral(TOWN_REFERRER)
        assert city["network"] == "demo-city" and town["network"] == "demo-town"

    def test_another_networks_coordinator_sees_and_changes_nothing(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]],
        state: AppState, move: Callable[..., Any],
    ) -> None:
        city = [post_referral()["id"] for _ in range(3)]
        move(city[1], "triaged")
        own = post_referral(TOWN_REFERRER)["id"]
        listed = app_client.get("/v1/referrals", headers=auth(TOWN_COORDINATOR, **PURPOSE))
        assert listed.status_code == 200
        assert [r["id"] for r in listed.json()["items"]] == [own]
        read = app_client.get(f"/v1/referrals/{city[0]}", headers=auth(TOWN_COORDINATOR, **PURPOSE))
        assert read.status_code == 403
        feed = app_client.get("/v1/events", headers=auth(TOWN_COORDINATOR, **PURPOSE))
        assert {e["referral_id"] for e in feed.json()["items"]} <= {own}
        attempts = [
            app_client.post(f"/v1/referrals/{city[0]}/transitions", json={"to": "triaged"},
                            headers=auth(TOWN_COORDINATOR)),
            app_client.post(f"/v1/referrals/{city[1]}/transitions", json={"to": "accepted"},
                            headers=auth(TOWN_COORDINATOR)),
            app_client.post(f"/v1/referrals/{city[2]}/consent",
                            json={"status": "withdrawn", "legal_basis": "public_task"},
                            headers=auth(TOWN_COORDINATOR)),
        ]
        for attempt in attempts:
            assert attempt.status_code == 403, attempt.text
            assert attempt.json()["network"] == "demo-city"
            assert len(_denials(state, attempt.headers["X-Request-ID"])) == 1
        after = app_client.get(f"/v1/referrals/{city[1]}", headers=auth(COORDINATOR, **PURPOSE)).json()
        assert after["status"] == "triaged" and after["consent"]["status"] == "given"


class TestWritesNeedTheRelation:
    """Finding 2: a coordinator-role client of school-south triaged and assigned school-north's referral."""

    @pytest.fixture
    def south_coordinator(self, state: AppState, app_client: TestClient) -> dict[str, str]:
        from app.agencies import service
        from app.agencies.schemas import ClientIn, Role
        from app.db import transaction

        with transaction(state.sessions) as session:
            created = service.add_client(
                session, ClientIn(id="south-coordinator", agency_id="school-south", name="South head",
                                  roles=[Role.coordinator]), hasher=state.secret_hasher,
            )
        form = {"grant_type": "client_credentials", "client_id": "south-coordinator",
                "client_secret": created.secret}
        token = app_client.post("/v1/token", data=form).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def test_role_without_relation_changes_nothing(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]],
        south_coordinator: dict[str, str], state: AppState, move: Callable[..., Any],
    ) -> None:
        rid = post_referral()["id"]
        steps = [{"to": "triaged"}, {"to": "accepted"}, {"to": "assigned", "agencies": ["school-south"]}]
        for step in steps:
            response = app_client.post(f"/v1/referrals/{rid}/transitions", json=step, headers=south_coordinator)
            assert response.status_code == 403, response.text
            assert response.json()["type"].endswith("/change-denied")
            assert len(_denials(state, response.headers["X-Request-ID"])) == 1
            move(rid, step["to"] if step["to"] != "assigned" else ("assigned", {"agencies": ["city-social-services"]}))
        consent = app_client.post(f"/v1/referrals/{rid}/consent",
                                  json={"status": "withdrawn", "legal_basis": "public_task"},
                                  headers=south_coordinator)
        assert consent.status_code == 403
        read = app_client.get(f"/v1/referrals/{rid}", headers={**south_coordinator, **PURPOSE})
        assert read.status_code in (400, 403)

    def test_assignment_is_only_to_agencies_of_the_network(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]],
        move: Callable[..., Any],
    ) -> None:
        rid = post_referral()["id"]
        move(rid, "triaged", "accepted")
        response = app_client.post(f"/v1/referrals/{rid}/transitions",
                                   json={"to": "assigned", "agencies": ["town-social-services"]},
                                   headers=auth(COORDINATOR))
        assert response.status_code == 422
        assert response.json()["errors"][0]["type"] == "not_in_network"


class TestWriteReplies:
    """Finding 4: a transition's reply carried the referrer and the status history, with no purpose."""

    def test_without_a_readable_grant_the_reply_is_a_receipt(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]],
        move: Callable[..., Any], state: AppState,
    ) -> None:
        rid = post_referral()["id"]
        move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-social-services"]}))
        withdrawn = app_client.post(f"/v1/referrals/{rid}/consent",
                                    json={"status": "withdrawn", "legal_basis": "public_task"},
                                    headers=auth(REFERRER))
        assert withdrawn.status_code == 200
        caseworker = "social-services-caseworker"
        assert app_client.get(f"/v1/referrals/{rid}", headers=auth(caseworker, **{
            "X-Purpose": "intervention_planning"})).status_code == 403
        started = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "in_intervention"},
                                  headers=auth(caseworker))
        assert started.status_code == 200, started.text
        assert started.json() == {"id": rid, "status": "in_intervention"}
        assert started.headers["X-Granted-View"] == "none" and started.headers["ETag"]
        with_purpose = app_client.post(
            f"/v1/referrals/{rid}/transitions", json={"to": "closed", "outcome": "risk_reduced"},
            headers=auth(COORDINATOR, **PURPOSE),
        )
        assert with_purpose.status_code == 200
        body = with_purpose.json()
        assert body["status"] == "closed" and "subject" in body  # the coordinator's grant: referral.full
        kinds = {e.event_type for e in for_request(state, with_purpose.headers["X-Request-ID"])}
        assert kinds == {"transition", "disclosure"}

    def test_a_replayed_note_is_logged(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]], state: AppState,
    ) -> None:
        """Finding 5: replaying a note POST returned the note text and wrote no entry."""
        rid = post_referral()["id"]
        headers = auth(REFERRER, **{"Idempotency-Key": "note-replay-1"})
        note = {"classification": "health", "text": "replayed-note-marker"}
        first = app_client.post(f"/v1/referrals/{rid}/notes", json=note, headers=headers)
        again = app_client.post(f"/v1/referrals/{rid}/notes", json=note, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        logged = for_request(state, again.headers["X-Request-ID"])
        assert [e.event_type for e in logged] == ["access"]
        assert logged[0].details and logged[0].details["record_ids"]["note_id"] == again.json()["id"]

    def test_a_replayed_transition_is_decided_again(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]], state: AppState,
    ) -> None:
        rid = post_referral()["id"]
        headers = auth(COORDINATOR, **PURPOSE, **{"Idempotency-Key": "transition-replay-1"})
        first = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged"}, headers=headers)
        again = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged"}, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert [e.event_type for e in for_request(state, again.headers["X-Request-ID"])] == ["disclosure"]


class TestTransfer:
    def test_transfer_moves_the_referral_and_is_a_logged_disclosure(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]],
        move: Callable[..., Any], state: AppState,
    ) -> None:
        created = post_referral()
        rid = created["id"]
        move(rid, "triaged")
        moved = app_client.post(f"/v1/referrals/{rid}/transitions",
                                json={"to": "transferred", "to_network": "demo-town", "reason": "moved town"},
                                headers=auth(COORDINATOR))
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == "submitted"
        town = app_client.get(f"/v1/referrals/{rid}", headers=auth(TOWN_COORDINATOR, **PURPOSE))
        assert town.status_code == 200 and town.json()["network"] == "demo-town"
        assert [h["status"] for h in town.json()["status_history"]][-2:] == ["transferred", "submitted"]
        city = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE))
        assert city.status_code == 403
        disclosed = [e for e in entries(state, event_type="disclosure", rule_id="transfer")]
        assert len(disclosed) == 1 and disclosed[0].recipient_agency == "town-council"
        report = app_client.get(f"/v1/subjects/{created['subject']['id']}/disclosures",
                                headers=auth("independent-auditor", **{"X-Purpose": "subject_access"}))
        if report.status_code == 200:
            assert "town-council" in {r["agency"] for r in report.json()["recipients"]}

    def test_an_unknown_network_is_refused(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]],
    ) -> None:
        rid = post_referral()["id"]
        response = app_client.post(f"/v1/referrals/{rid}/transitions",
                                   json={"to": "transferred", "to_network": "saida-lpn", "reason": "moved"},
                                   headers=auth(COORDINATOR))
        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert error["type"] == "unknown_network" and error["valid_codes"] == ["demo-town"]
        same = app_client.post(f"/v1/referrals/{rid}/transitions",
                               json={"to": "transferred", "to_network": "demo-city", "reason": "moved"},
                               headers=auth(COORDINATOR))
        assert same.status_code == 422


@pytest.fixture
def two_network_client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """school-north is also a party of demo-town's agreement: a member of two networks."""
    folder = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "policies", folder, ignore=shutil.ignore_patterns("examples"))
    town = folder / "demo-town.yaml"
    town.write_text(town.read_text().replace("parties: [town-council,", "parties: [school-north, town-council,"))
    custom = settings.model_copy(update={"policies_dir": folder, "policy_reload_seconds": 0})
    with TestClient(create_app(custom), raise_server_exceptions=False) as client:
        yield client


def test_an_agency_of_several_networks_names_one(two_network_client: TestClient) -> None:
    from app.db import transaction
    from app.demo import seed_demo

    state = two_network_client.app.state.cb  # type: ignore[attr-defined]
    with transaction(state.sessions) as session:
        creds = {c["client_id"]: c for c in seed_demo(session, state)}
    form = {"grant_type": "client_credentials", "client_id": REFERRER,
            "client_secret": creds[REFERRER]["client_secret"]}
    headers = {"Authorization": "Bearer " + two_network_client.post("/v1/token", data=form).json()["access_token"]}
    unnamed = two_network_client.post("/v1/referrals", json=referral_body(), headers=headers)
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["valid_codes"] == ["demo-city", "demo-town"]
    named = two_network_client.post("/v1/referrals", json=referral_body(network="demo-town"), headers=headers)
    assert named.status_code == 201 and named.json()["network"] == "demo-town"
    foreign = referral_body(network="nowhere")
    assert two_network_client.post("/v1/referrals", json=foreign, headers=headers).status_code == 422


class TestStatisticsAcrossNetworks:
    """A national agreement across networks shares aggregates of each; a city's coordinator counts its own."""

    def test_each_caller_counts_the_networks_granted_to_it(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]],
    ) -> None:
        for _ in range(6):
            post_referral()
        for _ in range(7):
            post_referral(TOWN_REFERRER)
        stats = {"X-Purpose": "statistics"}

        def total(client_id: str) -> tuple[int | None, list[str]]:
            response = app_client.get("/v1/statistics", params={"dimensions": "risk_level"},
                                      headers=auth(client_id, **stats))
            assert response.status_code == 200, response.text
            body = response.json()
            grand_total = body["margins"][-1]["cells"][0]["count"]  # the margin with no dimensions
            return grand_total, body["networks"]

        assert total("national-statistics") == (13, ["demo-city", "demo-town"])
        assert total(COORDINATOR) == (6, ["demo-city"])
        refused = app_client.get("/v1/statistics", params={"dimensions": "risk_level"},
                                 headers=auth(TOWN_COORDINATOR, **stats))
        assert refused.status_code in (400, 403)
