"""Issue 11's review findings about reads and writes across agencies and networks (1, 2, 4, 5),
each reproduced as the review described it, asserting the fixed behaviour."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.agreements import sign_all
from support.referrals import COORDINATOR, REFERRER, referral_body

from app.audit import queries
from app.config import Settings
from app.state import AppState

Auth = Callable[..., dict[str, str]]
OPERATOR = "municipality-operator"
PLANNING = {"X-Purpose": "intervention_planning"}
SAFEGUARDING = {"X-Purpose": "safeguarding_assessment"}
RECEIPT = {"id", "status"}
REFUSED = (403, 404)  # refused, or not even shown to exist


def entries(state: AppState, request_id: str) -> list[queries.EntryView]:
    """The log entries a request left, details decrypted with the app's sealer."""
    with state.sessions() as session:
        found = queries.search(session.connection(), state.audit.sealer, queries.EntryFilter(), after=None,
                               limit=10**7)
    return [e for e in found if (e.details or {}).get("request_id") == request_id]


def refer(app_client: TestClient, auth: Auth, client_id: str = REFERRER, n: int = 0, **changes: Any) -> str:
    subject = {"given_name": f"Finding{n}", "family_name": "Person", "district": "al-mina",
               "date_of_birth": "2009-03-14", "identifiers": [{"system": "national_id", "value": f"FIND-{n}"}]}
    response = app_client.post("/v1/referrals", json=referral_body(subject=subject, **changes),
                               headers=auth(client_id))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def move(app_client: TestClient, auth: Auth, rid: str, client_id: str, body: dict[str, Any],
         **headers: str) -> Any:
    return app_client.post(f"/v1/referrals/{rid}/transitions", json=body, headers=auth(client_id, **headers))


def add_client(app_client: TestClient, auth: Auth, client_id: str, agency: str, roles: list[str],
               sector: str | None = None) -> str:
    """Through the admin API, as an operator would: the agency (if new) and the client."""
    if sector is not None:
        response = app_client.post("/v1/admin/agencies", json={"id": agency, "name": agency, "sector": sector},
                                   headers=auth(OPERATOR))
        assert response.status_code == 201, response.text
    response = app_client.post("/v1/admin/clients", headers=auth(OPERATOR),
                               json={"id": client_id, "agency_id": agency, "name": client_id, "roles": roles})
    assert response.status_code == 201, response.text
    secret: str = response.json()["client_secret"]
    token = app_client.post("/v1/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                               "client_secret": secret})
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def status_of(app_client: TestClient, auth: Auth, rid: str) -> dict[str, Any]:
    response = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **SAFEGUARDING))
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


class TestFinding1NetworksAreIsolated:
    """Kumanovo's coordinator, loaded side by side with demo-city, touches nothing of demo-city."""

    @pytest.fixture
    def settings(self, settings: Settings, tmp_path: Path) -> Settings:
        source = Path(settings.policies_dir)
        folder = tmp_path / "policies-with-kumanovo"
        (folder / "networks").mkdir(parents=True)
        for path in source.glob("*.yaml"):
            shutil.copy(path, folder / path.name)
        # The network files with their codes of conduct (networks/conduct/), Kumanovo's beside them.
        shutil.copytree(source / "networks", folder / "networks", dirs_exist_ok=True)
        shutil.copy(source / "examples" / "kumanovo-cat.yaml", folder / "kumanovo-cat.yaml")
        shutil.copytree(source / "examples" / "networks", folder / "networks", dirs_exist_ok=True)
        return settings.model_copy(update={"policies_dir": folder})

    def test_a_foreign_network_coordinator_lists_moves_and_writes_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: dict[str, Any]
    ) -> None:
        sign_all(state)  # the demo signs its own agreements only; Kumanovo's parties sign theirs
        assert "kumanovo-cat" in {a.id for a in state.policies.current}
        kumanovo = add_client(app_client, auth, "kumanovo-coordinator", "kumanovo-municipality", ["coordinator"],
                              sector="local_government")
        submitted = refer(app_client, auth, n=1)
        triaged = refer(app_client, auth, n=2)
        accepted = refer(app_client, auth, n=3)
        assert move(app_client, auth, triaged, COORDINATOR, {"to": "triaged"}).status_code == 200
        for step in ("triaged", "accepted"):
            assert move(app_client, auth, accepted, COORDINATOR, {"to": step}).status_code == 200
        ours = {submitted, triaged, accepted}

        listed = app_client.get("/v1/referrals?limit=200", headers=bearer(kumanovo, **SAFEGUARDING))
        if listed.status_code == 200:
            assert not ours & {item["id"] for item in listed.json()["items"]}
        else:
            assert listed.status_code in (400, 403)
        for rid in ours:
            read = app_client.get(f"/v1/referrals/{rid}", headers=bearer(kumanovo, **SAFEGUARDING))
            assert read.status_code in REFUSED, read.text

        for rid, body in ((submitted, {"to": "triaged"}), (triaged, {"to": "accepted"}),
                          (accepted, {"to": "assigned", "agencies": ["kumanovo-municipality"]})):
            response = app_client.post(f"/v1/referrals/{rid}/transitions", json=body, headers=bearer(kumanovo))
            assert response.status_code in REFUSED, response.text
        withdraw = app_client.post(f"/v1/referrals/{accepted}/consent", headers=bearer(kumanovo),
                                   json={"status": "withdrawn", "legal_basis": "public_task"})
        assert withdraw.status_code in REFUSED, withdraw.text
        hold = app_client.post(f"/v1/referrals/{accepted}/legal-hold", headers=bearer(kumanovo),
                               json={"reason": "Kumanovo court case reference 7"})
        assert hold.status_code in REFUSED, hold.text
        note = app_client.post(f"/v1/referrals/{accepted}/notes", headers=bearer(kumanovo),
                               json={"classification": "shared", "text": "kumanovo-was-here"})
        assert note.status_code in REFUSED, note.text

        # Nothing happened to the records.
        assert [status_of(app_client, auth, rid)["status"] for rid in (submitted, triaged, accepted)] == [
            "submitted", "triaged", "accepted"]
        after = status_of(app_client, auth, accepted)
        assert after["consent"]["status"] == "given" and after["assigned_agencies"] == []
        holds = app_client.get(f"/v1/referrals/{accepted}/legal-hold", headers=auth(COORDINATOR, **SAFEGUARDING))
        assert holds.status_code == 200 and holds.json()["items"] == []
        notes = app_client.get(f"/v1/referrals/{accepted}/notes", headers=auth(REFERRER, **SAFEGUARDING))
        assert "kumanovo-was-here" not in notes.text


class TestFinding2WritesNeedTheRelation:
    """A `coordinator` role at school-south is not the network's coordinator."""

    def test_a_coordinator_role_elsewhere_cannot_triage_accept_assign_or_withdraw(
        self, app_client: TestClient, auth: Auth, demo: dict[str, Any]
    ) -> None:
        south = add_client(app_client, auth, "school-south-coordinator", "school-south", ["coordinator"])
        rid = refer(app_client, auth, n=10)
        read = app_client.get(f"/v1/referrals/{rid}", headers=bearer(south, **SAFEGUARDING))
        assert read.status_code == 403, read.text

        response = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged"},
                                   headers=bearer(south))
        assert response.status_code == 403, response.text
        assert move(app_client, auth, rid, COORDINATOR, {"to": "triaged"}).status_code == 200
        response = app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "accepted"},
                                   headers=bearer(south))
        assert response.status_code == 403, response.text
        assert move(app_client, auth, rid, COORDINATOR, {"to": "accepted"}).status_code == 200
        response = app_client.post(f"/v1/referrals/{rid}/transitions", headers=bearer(south),
                                   json={"to": "assigned", "agencies": ["school-south"]})
        assert response.status_code == 403, response.text

        contact = app_client.get(f"/v1/referrals/{rid}", headers=auth("school-south-referrer", **PLANNING))
        assert contact.status_code == 403, contact.text
        consent = app_client.post(f"/v1/referrals/{rid}/consent", headers=bearer(south),
                                  json={"status": "withdrawn", "legal_basis": "public_task"})
        assert consent.status_code == 403, consent.text
        hold = app_client.post(f"/v1/referrals/{rid}/legal-hold", headers=bearer(south),
                               json={"reason": "South school holds it for a case"})
        assert hold.status_code == 403, hold.text
        document = status_of(app_client, auth, rid)
        assert document["status"] == "accepted" and document["assigned_agencies"] == []
        assert document["consent"]["status"] == "given"


class TestFinding4TransitionRepliesShowOnlyWhatMayBeRead:
    REASON = "father known to police for violence"

    def test_an_assigned_agency_without_a_read_grant_gets_a_receipt(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: dict[str, Any]
    ) -> None:
        rid = refer(app_client, auth, n=20)
        assert move(app_client, auth, rid, COORDINATOR, {"to": "triaged", "reason": self.REASON}).status_code == 200
        assert move(app_client, auth, rid, COORDINATOR, {"to": "accepted"}).status_code == 200
        assigned = move(app_client, auth, rid, COORDINATOR,
                        {"to": "assigned", "agencies": ["city-social-services", "youth-ngo-bridges"]})
        assert assigned.status_code == 200, assigned.text
        withdrawn = app_client.post(f"/v1/referrals/{rid}/consent", headers=auth(REFERRER),
                                    json={"status": "withdrawn", "legal_basis": "public_task"})
        assert withdrawn.status_code == 200, withdrawn.text
        read = app_client.get(f"/v1/referrals/{rid}", headers=auth("social-services-caseworker", **PLANNING))
        assert read.status_code == 403, read.text

        start = move(app_client, auth, rid, "social-services-caseworker", {"to": "in_intervention"})
        assert start.status_code in (200, 403), start.text
        if start.status_code == 200:
            assert set(start.json()) <= RECEIPT, start.json()
            assert self.REASON not in start.text and "school-north" not in start.text

    def test_a_partner_with_the_summary_gets_the_summary_at_most_and_it_is_logged(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: dict[str, Any]
    ) -> None:
        rid = refer(app_client, auth, n=21)
        assert move(app_client, auth, rid, COORDINATOR, {"to": "triaged", "reason": self.REASON}).status_code == 200
        assert move(app_client, auth, rid, COORDINATOR, {"to": "accepted"}).status_code == 200
        assert move(app_client, auth, rid, COORDINATOR,
                    {"to": "assigned", "agencies": ["youth-ngo-bridges"]}).status_code == 200
        summary = {"id", "subject.age_band", "subject.district", "concerns", "requested_services", "status"}

        start = move(app_client, auth, rid, "youth-ngo-caseworker", {"to": "in_intervention"},
                     **{"X-Purpose": "service_provision", "X-Request-ID": "finding-4-partner"})
        assert start.status_code in (200, 403), start.text
        if start.status_code != 200:
            return
        document = start.json()
        paths = {k for k in document if k != "subject"} | {f"subject.{k}" for k in document.get("subject", {})}
        assert paths <= summary, sorted(paths - summary)
        assert self.REASON not in start.text and "referring_agency" not in document
        if paths - RECEIPT:  # case data left: its entry names the fields that did
            logged = [e for e in entries(state, "finding-4-partner") if e.event_type != "denial"]
            named = {f for e in logged for f in (e.details or {}).get("fields", [])}
            assert paths - {"id"} <= named, (sorted(paths), logged)


class TestFinding5ReplaysAreLogged:
    def test_a_replayed_note_leaves_its_entry(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: dict[str, Any]
    ) -> None:
        rid = refer(app_client, auth, "health-centre-caseworker", n=30)
        body = {"classification": "health", "text": "health-note-marker: seen at the clinic"}
        key = {"Idempotency-Key": "finding-5-note"}
        first = app_client.post(f"/v1/referrals/{rid}/notes", json=body,
                                headers=auth("health-centre-caseworker", **key))
        assert first.status_code == 201, first.text
        replay = app_client.post(f"/v1/referrals/{rid}/notes", json=body,
                                 headers=auth("health-centre-caseworker", **key, **{"X-Request-ID": "finding-5-r"}))
        assert replay.status_code in (200, 201, 403), replay.text
        if "health-note-marker" in replay.text:
            logged = [e for e in entries(state, "finding-5-r") if e.event_type != "denial"]
            assert logged, "a replay that returns the note's text leaves an entry"
            assert any(first.json()["id"] in str((e.details or {}).get("record_ids")) for e in logged)

    def test_a_replayed_transition_leaves_its_entry_when_it_shows_anything(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: dict[str, Any]
    ) -> None:
        rid = refer(app_client, auth, n=31)
        key = {"Idempotency-Key": "finding-5-transition"}
        first = move(app_client, auth, rid, COORDINATOR, {"to": "triaged", "reason": "urgent family review"}, **key)
        assert first.status_code == 200, first.text
        for n, purpose in enumerate((None, "safeguarding_assessment")):
            headers = {**key, "X-Request-ID": f"finding-5-t{n}", **({"X-Purpose": purpose} if purpose else {})}
            replay = move(app_client, auth, rid, COORDINATOR, {"to": "triaged", "reason": "urgent family review"},
                          **headers)
            assert replay.status_code == 200, replay.text
            shown = set(replay.json()) - RECEIPT
            if shown:
                logged = [e for e in entries(state, f"finding-5-t{n}") if e.event_type != "denial"]
                assert logged, f"a replay showing {sorted(shown)} leaves an entry"
