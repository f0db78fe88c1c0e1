"""The training network: synthetic, marked training everywhere, and isolated from every real network.

Through the public API, on both databases, with the demo's training network (policies/training-demo.yaml)
seeded beside the demo networks as the first start seeds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.audit_log import entries
from support.console import PASSWORD, ConsoleClient, password_hash
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body

from app.console.models import Person
from app.db import transaction
from app.state import AppState
from app.training_network import create
from app.training_network.marks import HEADER

TRAINING = create.DEMO_PLAN.network_id
T_COORDINATOR = create.DEMO_PLAN.client("coordinator")
T_REFERRER = create.DEMO_PLAN.client("school-referrer")
T_READER = create.DEMO_PLAN.client("youth-reader")
T_AUDITOR = create.DEMO_PLAN.client("auditor")

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def training(state: AppState, demo: dict[str, dict[str, Any]]) -> create.Seeded:
    """The demo's training network's agencies, clients, people and cases (as the first start seeds them)."""
    with transaction(state.sessions) as session:
        seeded = create.seed_demo_network(session, state)
    assert seeded is not None
    return seeded


@pytest.fixture
def t_auth(app_client: TestClient, training: create.Seeded) -> Auth:
    secrets = {c["client_id"]: c["client_secret"] for c in training.clients}
    cache: dict[str, str] = {}

    def _headers(client_id: str, **extra: str) -> dict[str, str]:
        if client_id not in cache:
            form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secrets[client_id]}
            response = app_client.post("/v1/token", data=form)
            assert response.status_code == 200, response.text
            cache[client_id] = response.json()["access_token"]
        return {"Authorization": f"Bearer {cache[client_id]}", **extra}

    return _headers


def _training_referral(app_client: TestClient, t_auth: Auth, **changes: Any) -> dict[str, Any]:
    response = app_client.post("/v1/referrals", json=referral_body(network=TRAINING, **changes),
                               headers=t_auth(T_REFERRER))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


class TestMarkedTraining:
    def test_every_reply_to_a_training_caller_carries_the_header_and_no_real_reply_does(
        self, app_client: TestClient, auth: Auth, t_auth: Auth
    ) -> None:
        replies = [
            app_client.get("/v1/networks", headers=t_auth(T_COORDINATOR)),
            app_client.get("/v1/referrals", headers=t_auth(T_COORDINATOR, **PURPOSE)),
            app_client.get("/v1/referrals/nope", headers=t_auth(T_READER, **PURPOSE)),  # a refusal too
            app_client.post("/v1/referrals", json={"schema": "nonsense"}, headers=t_auth(T_REFERRER)),
        ]
        assert [r.status_code for r in replies][:2] == [200, 200]
        assert all(r.headers.get(HEADER) == "true" for r in replies), [(r.status_code, r.headers) for r in replies]
        real = [app_client.get("/v1/networks", headers=auth(REFERRER)),
                app_client.get("/v1/referrals", headers=auth(COORDINATOR, **PURPOSE))]
        assert all(r.status_code == 200 and HEADER not in r.headers for r in real)

    def test_networks_say_which_is_training(self, app_client: TestClient, auth: Auth, training: create.Seeded) -> None:
        listed = {n["id"]: n for n in app_client.get("/v1/networks", headers=auth(REFERRER)).json()["items"]}
        assert listed[TRAINING]["training"] is True
        assert listed["demo-city"]["training"] is False and listed["demo-town"]["training"] is False
        one = app_client.get(f"/v1/networks/{TRAINING}", headers=auth(REFERRER)).json()
        assert one["training"] is True and one["locales"] == ["ar", "en", "mk", "sq"]

    def test_every_log_entry_about_the_training_network_is_marked_and_no_other(
        self, app_client: TestClient, state: AppState, auth: Auth, t_auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        _training_referral(app_client, t_auth)
        post_referral()
        training_agencies = {create.DEMO_PLAN.agency(s) for s, _, _ in create._AGENCIES}
        logged = entries(state)
        ours = [e for e in logged if {e.actor_agency, e.recipient_agency} & training_agencies]
        others = [e for e in logged if e not in ours]
        assert len(ours) > create.DEMO_PLAN.people  # the seed's entries and the API's
        assert all((e.details or {}).get("training") is True for e in ours)
        assert others and not any((e.details or {}).get("training") for e in others)

    def test_the_seeded_cases_are_in_every_status_with_notes_in_the_four_languages(
        self, app_client: TestClient, t_auth: Auth
    ) -> None:
        listed = app_client.get("/v1/referrals?limit=100", headers=t_auth(T_COORDINATOR, **PURPOSE)).json()["items"]
        assert {r["status"] for r in listed} >= {"submitted", "triaged", "accepted", "declined", "assigned",
                                                 "in_intervention", "closed", "withdrawn"}
        assert all(r["network"] == TRAINING for r in listed)
        narratives = " ".join(r.get("narrative") or "" for r in listed)
        assert re.search("[\u0600-\u06ff]", narratives) and re.search("[\u0400-\u04ff]", narratives)
        assert " ë" in narratives or "ë" in narratives  # Albanian
        note_reply = app_client.get(f"/v1/referrals/{listed[0]['id']}/notes", headers=t_auth(T_REFERRER, **PURPOSE))
        assert note_reply.status_code == 200 and note_reply.json()["items"], note_reply.text

    def test_the_console_shows_the_banner_to_a_training_person_only(
        self, app_client: TestClient, state: AppState, training: create.Seeded, demo: dict[str, Any]
    ) -> None:
        from app.console import people

        trainee = create.DEMO_PLAN.person("en", "caseworker")
        with transaction(state.sessions) as session:
            person = session.get(Person, trainee)
            assert person is not None
            person.password_hash = password_hash()
            people.create_person(session, person_id="real-caseworker", agency_id="school-north", name="Real Person",
                                 roles=["referrer", "caseworker"], password=None).password_hash = password_hash()
        for person_id, banner in ((trainee, True), ("real-caseworker", False)):
            browser = ConsoleClient(app_client.app, state)
            page = browser.sign_in(person_id, PASSWORD)
            assert page.status_code == 200, page.text[:500]
            for path in ("/console/", "/console/referrals/mine"):
                html = browser.get(path).text
                assert ('class="training-banner"' in html) is banner, (person_id, path)
            browser.http.close()


class TestIsolated:
    def test_no_transfer_between_a_training_and_a_real_network(
        self, app_client: TestClient, auth: Auth, t_auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        ours = _training_referral(app_client, t_auth)
        app_client.post(f"/v1/referrals/{ours['id']}/transitions", json={"to": "triaged"},
                        headers=t_auth(T_COORDINATOR))
        out = app_client.post(f"/v1/referrals/{ours['id']}/transitions",
                              json={"to": "transferred", "to_network": "demo-city", "reason": "moving"},
                              headers=t_auth(T_COORDINATOR))
        assert out.status_code in (400, 422), out.text
        assert out.json()["errors"][0]["type"] == "training_isolation"
        real = post_referral()
        app_client.post(f"/v1/referrals/{real['id']}/transitions", json={"to": "triaged"}, headers=auth(COORDINATOR))
        into = app_client.post(f"/v1/referrals/{real['id']}/transitions",
                               json={"to": "transferred", "to_network": TRAINING, "reason": "moving"},
                               headers=auth(COORDINATOR))
        assert into.status_code in (400, 422) and into.json()["errors"][0]["type"] == "training_isolation"
        assert TRAINING not in into.json()["errors"][0]["valid_codes"]
        for referral_id, headers, network in ((ours["id"], t_auth(T_COORDINATOR, **PURPOSE), TRAINING),
                                              (real["id"], auth(COORDINATOR, **PURPOSE), "demo-city")):
            after = app_client.get(f"/v1/referrals/{referral_id}", headers=headers).json()
            assert after["network"] == network and after["status"] == "triaged"

    def test_no_assignment_to_an_agency_of_the_other_kind(
        self, app_client: TestClient, auth: Auth, t_auth: Auth, post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        ours = _training_referral(app_client, t_auth)
        for step in ("triaged", "accepted"):
            app_client.post(f"/v1/referrals/{ours['id']}/transitions", json={"to": step}, headers=t_auth(T_COORDINATOR))
        refused = app_client.post(f"/v1/referrals/{ours['id']}/transitions",
                                  json={"to": "assigned", "agencies": ["city-social-services"]},
                                  headers=t_auth(T_COORDINATOR))
        assert refused.status_code in (400, 422) and refused.json()["errors"][0]["type"] == "not_in_network"
        real = post_referral()
        move(real["id"], "triaged", "accepted")
        into = app_client.post(f"/v1/referrals/{real['id']}/transitions",
                               json={"to": "assigned", "agencies": [create.DEMO_PLAN.agency("social-services")]},
                               headers=auth(COORDINATOR))
        assert into.status_code in (400, 422) and into.json()["errors"][0]["type"] == "not_in_network"

    def test_the_same_identifier_never_links_a_training_person_to_a_real_one(
        self, app_client: TestClient, auth: Auth, t_auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        real = post_referral()
        ours = _training_referral(app_client, t_auth)  # the very same identifier, national_id LB-778899
        seen = app_client.get(f"/v1/referrals/{ours['id']}", headers=t_auth(T_REFERRER, **PURPOSE)).json()
        assert seen["subject"]["id"] != real["subject"]["id"]
        assert seen["subject"]["identifiers"] == [{"system": "training:national_id", "value": "LB-778899"}]
        assert not seen.get("link_conflicts")
        again = _training_referral(app_client, t_auth)  # within the training network, linking works as ever
        assert again["subject"]["id"] == seen["subject"]["id"]
        reserved = app_client.post("/v1/referrals", json=referral_body(subject={
            **referral_body()["subject"], "identifiers": [{"system": "training:national_id", "value": "LB-778899"}]}),
            headers=auth(REFERRER))
        assert reserved.status_code in (400, 422), reserved.text
        assert reserved.json()["errors"][0]["path"] == "$.subject.identifiers[0].system"

    def test_nothing_is_disclosed_across(
        self, app_client: TestClient, auth: Auth, t_auth: Auth, post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        real = post_referral()
        move(real["id"], "triaged", "accepted")  # a real partner would now see its summary
        ours = _training_referral(app_client, t_auth)
        crossings = [
            app_client.get(f"/v1/referrals/{real['id']}", headers=t_auth(T_COORDINATOR, **PURPOSE)),
            app_client.get(f"/v1/referrals/{real['id']}", headers=t_auth(T_REFERRER, **PURPOSE)),
            app_client.get(f"/v1/referrals/{ours['id']}", headers=auth(COORDINATOR, **PURPOSE)),
        ]
        assert all(r.status_code in (403, 404) for r in crossings), [r.status_code for r in crossings]
        notes = app_client.get(f"/v1/referrals/{ours['id']}/notes", headers=auth(COORDINATOR, **PURPOSE))
        assert notes.status_code in (403, 404) or notes.json()["items"] == [], notes.text
        summaries = app_client.get("/v1/summaries", headers=t_auth(T_READER, **{"X-Purpose": "service_provision"}))
        assert summaries.status_code == 200, summaries.text
        assert summaries.json()["items"] and real["id"] not in {s["id"] for s in summaries.json()["items"]}
        listed = app_client.get("/v1/referrals?limit=100", headers=auth(COORDINATOR, **PURPOSE)).json()["items"]
        assert ours["id"] not in {r["id"] for r in listed}
        mine = app_client.get("/v1/referrals?limit=100", headers=t_auth(T_COORDINATOR, **PURPOSE)).json()["items"]
        assert real["id"] not in {r["id"] for r in mine}
