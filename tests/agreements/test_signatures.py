"""Signed agreements: a loaded version decides nothing until every party has signed its text.

Through the API: the shipped agreements (signed by the demo seed), a new version of demo-town that
stays proposed while version 1 decides, its signatures (refusals included), the last one putting it
in force, a restart that rebuilds the signed version from its stored text, and a refusal that names
the agreement awaiting signatures.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.audit_log import entries
from support.row_counts import counts

from app.agreements import signing
from app.config import REPO_ROOT, Settings
from app.db import transaction
from app.demo import seed_demo
from app.main import create_app
from app.state import AppState

Headers = Callable[..., dict[str, str]]
TOWN = "/v1/agreements/demo-town/versions"
TOWN_PARTIES = ["town-council", "town-school", "town-social-services", "town-youth-club"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "policies", copy, ignore=shutil.ignore_patterns("examples"))
    return copy


def _start(settings: Settings, folder: Path) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"policies_dir": folder, "policy_reload_seconds": 0})),
                      raise_server_exceptions=False)


@pytest.fixture
def town(settings: Settings, folder: Path) -> Iterator[tuple[TestClient, Headers]]:
    """The demo, seeded (so its agreements signed); then a version 2 of demo-town loaded: proposed."""
    with _start(settings, folder) as client:
        state: AppState = client.app.state.cb  # type: ignore[attr-defined]
        with transaction(state.sessions) as session:
            secrets = {c["client_id"]: c["client_secret"] for c in seed_demo(session, state)}

        def headers(client_id: str, act: str | None = None, **extra: str) -> dict[str, str]:
            form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secrets[client_id]}
            if act is not None:
                form["act"] = act
            token = client.post("/v1/token", data=form).json()["access_token"]
            return {"Authorization": f"Bearer {token}", **extra}

        for agency in TOWN_PARTIES[1:]:  # a signatory for each party but the council (whose coordinator signs)
            made = client.post("/v1/admin/clients", headers=headers("municipality-operator"), json={
                "id": f"{agency}-signer", "agency_id": agency, "name": "Signs agreements", "roles": ["signatory"]})
            assert made.status_code == 201, made.text
            secrets[f"{agency}-signer"] = made.json()["client_secret"]
        path = folder / "demo-town.yaml"
        path.write_text(path.read_text().replace("version: 1", "version: 2", 1).replace(
            "review_by: 2027-06-30", "review_by: 2027-12-31", 1))
        reloaded = client.post("/v1/admin/agreements/reload", headers=headers("municipality-operator"))
        assert reloaded.status_code == 200 and "demo-town@v1" in reloaded.json()["in_force"]
        yield client, headers


def _hash(client: TestClient, headers: Headers, version: int) -> str:
    items = client.get(TOWN, headers=headers("town-coordinator")).json()["items"]
    found: str = next(v["content_hash"] for v in items if v["version"] == version)
    return found


def _sign(client: TestClient, headers: Headers, client_id: str, version: int, content_hash: str) -> Any:
    return client.post(f"{TOWN}/{version}/signatures", json={"content_hash": content_hash},
                       headers=headers(client_id))


class TestShipped:
    def test_the_demo_seed_signs_every_shipped_agreement_for_each_party(
        self, app_client: TestClient, auth: Headers, state: AppState
    ) -> None:
        listing = app_client.get("/v1/agreements", headers=auth("youth-ngo-reader")).json()
        assert listing["proposed"] == [] and {"demo-city", "demo-town"} <= {a["id"] for a in listing["items"]}
        versions = app_client.get(TOWN, headers=auth("youth-ngo-reader")).json()["items"]
        assert [(v["version"], v["state"], v["missing"]) for v in versions] == [(1, "in_force", [])]
        signed = versions[0]["signatures"]
        assert sorted(s["agency"] for s in signed) == TOWN_PARTIES
        assert {(s["via"], s["content_hash"]) for s in signed} == {("demo", versions[0]["content_hash"])}
        logged = entries(state, event_type="agreement_activated", agreement_id="demo-town")
        assert len(logged) == 1 and logged[0].details["agreement_version"] == 1  # type: ignore[index]


class TestSigning:
    def test_a_new_version_decides_nothing_until_every_party_signed_it(
        self, town: tuple[TestClient, Headers]
    ) -> None:
        client, headers = town
        state: AppState = client.app.state.cb  # type: ignore[attr-defined]
        assert state.policies.current.get("demo-town").version == 1  # type: ignore[union-attr]
        listing = client.get("/v1/agreements", headers=headers("town-coordinator")).json()
        assert listing["proposed"] == [{"id": "demo-town", "version": 2, "missing": TOWN_PARTIES}]
        content_hash = _hash(client, headers, 2)
        for signer, missing in [("town-coordinator", TOWN_PARTIES[1:]), ("town-school-signer", TOWN_PARTIES[2:]),
                                ("town-social-services-signer", TOWN_PARTIES[3:])]:
            assert _sign(client, headers, signer, 2, content_hash).status_code == 201
            assert state.policies.current.get("demo-town").version == 1  # type: ignore[union-attr]
            assert client.get("/v1/agreements", headers=headers(signer)).json()["proposed"][0]["missing"] == missing
        signed = _sign(client, headers, "town-youth-club-signer", 2, content_hash)
        assert signed.status_code == 201
        assert signed.json()["agency"] == "town-youth-club" and signed.json()["person"] == "town-youth-club-signer"
        assert state.policies.current.get("demo-town").version == 2  # type: ignore[union-attr]
        versions = client.get(TOWN, headers=headers("town-coordinator")).json()["items"]
        assert [(v["version"], v["state"]) for v in versions] == [(2, "in_force"), (1, "superseded")]
        listed = client.get(f"{TOWN}/2/signatures", headers=headers("town-coordinator")).json()["items"]
        assert [(s["agency"], s["via"]) for s in listed] == [(a, "api") for a in TOWN_PARTIES]
        signatures = entries(state, event_type="agreement_signed", agreement_id="demo-town")
        assert [e.details["person"] for e in signatures[-4:]] == [  # type: ignore[index]
            "town-coordinator", "town-school-signer", "town-social-services-signer", "town-youth-club-signer"]
        activated = entries(state, event_type="agreement_activated", agreement_id="demo-town")[-1]
        assert activated.details == {"agreement_version": 2, "agreement_hash": content_hash, "superseded": [1]}

    def test_a_last_signature_that_fails_to_commit_puts_nothing_in_force(
        self, town: tuple[TestClient, Headers]
    ) -> None:
        client, headers = town
        state: AppState = client.app.state.cb  # type: ignore[attr-defined]
        content_hash = _hash(client, headers, 2)
        for signer in ("town-coordinator", "town-school-signer", "town-social-services-signer"):
            assert _sign(client, headers, signer, 2, content_hash).status_code == 201
        last = signing.Signer("town-youth-club", "town-youth-club-signer", frozenset({"signatory"}), "api")
        with pytest.raises(RuntimeError), transaction(state.sessions) as session:
            signing.sign(session, state, "demo-town", 2, content_hash, last)
            raise RuntimeError("the commit fails")  # rolled back: the signature never became durable
        assert state.policies.current.get("demo-town").version == 1  # type: ignore[union-attr]
        assert client.get("/v1/agreements", headers=headers("town-coordinator")).json()["proposed"] == [
            {"id": "demo-town", "version": 2, "missing": ["town-youth-club"]}]
        assert _sign(client, headers, "town-youth-club-signer", 2, content_hash).status_code == 201
        assert state.policies.current.get("demo-town").version == 2  # type: ignore[union-attr]

    def test_a_named_signatory_signs_only_through_a_client_with_a_signing_role(
        self, town: tuple[TestClient, Headers], folder: Path
    ) -> None:
        client, headers = town
        state: AppState = client.app.state.cb  # type: ignore[attr-defined]
        named = [("town-council", "town-coordinator"), *((a, f"{a}-signer") for a in TOWN_PARTIES[1:])]
        path = folder / "demo-town.yaml"
        path.write_text(path.read_text().replace("version: 2", "version: 3", 1).replace(
            "parties: [", "signatories:\n" + "".join(f"  - {{agency: {a}, person: {p}}}\n" for a, p in named)
            + "parties: [", 1))
        assert client.post("/v1/admin/agreements/reload", headers=headers("municipality-operator")).status_code == 200
        content_hash = _hash(client, headers, 3)
        before = counts(state)
        # The youth club's partner sync only reads: naming the signatory as the person it acts for signs nothing.
        posed = client.post(f"{TOWN}/3/signatures", json={"content_hash": content_hash},
                            headers=headers("town-youth-reader", act="town-youth-club-signer"))
        assert posed.status_code == 403 and "signatory role" in posed.json()["detail"]
        unnamed = client.post(f"{TOWN}/3/signatures", json={"content_hash": content_hash},  # a signing role, not named
                              headers=headers("town-school-signer", act="town-school-head"))
        assert unnamed.status_code == 403 and "not a named signatory" in unnamed.json()["detail"]
        after = counts(state)
        assert after.pop("audit_entries") == before.pop("audit_entries") + 2  # the two refusals, logged
        assert after == before
        versions = client.get(TOWN, headers=headers("town-coordinator")).json()["items"]
        proposed = [(v["version"], v["missing"]) for v in versions if v["state"] == "proposed"]
        assert (3, [f"{a}/{p}" for a, p in named]) in proposed
        for _, person in named:
            assert _sign(client, headers, person, 3, content_hash).status_code == 201
        assert state.policies.current.get("demo-town").version == 3  # type: ignore[union-attr]

    def test_refusals_change_nothing(self, town: tuple[TestClient, Headers]) -> None:
        client, headers = town
        state: AppState = client.app.state.cb  # type: ignore[attr-defined]
        content_hash = _hash(client, headers, 2)
        before = counts(state)
        for signer, status, slug in [
            ("school-north-referrer", 403, "forbidden"),  # not a party
            ("town-school-referrer", 403, "forbidden"),  # a party, but neither coordinator nor signatory
        ]:
            response = _sign(client, headers, signer, 2, content_hash)
            assert response.status_code == status and response.json()["type"].endswith(slug), response.text
        stale = _sign(client, headers, "town-coordinator", 2, "0" * 64)
        assert stale.status_code == 409 and "content hash" in stale.json()["detail"]
        signed_before = _sign(client, headers, "town-coordinator", 1, _hash(client, headers, 1))
        assert signed_before.status_code == 409 and "in force" in signed_before.json()["detail"]
        for path in (f"{TOWN}/3/signatures", "/v1/agreements/nowhere/versions/1/signatures"):
            missing = client.post(path, json={"content_hash": content_hash}, headers=headers("town-coordinator"))
            assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert client.get("/v1/agreements/nowhere/versions", headers=headers("town-coordinator")).status_code == 404
        bad = client.post(f"{TOWN}/2/signatures", json={"content_hash": "x"}, headers=headers("town-coordinator"))
        assert bad.status_code == 422
        after = counts(state)
        assert {k: v for k, v in after.items() if k != "audit_entries"} == {
            k: v for k, v in before.items() if k != "audit_entries"}
        denials = [e for e in entries(state, event_type="denial") if "sign" in str(e.details)]
        assert len(denials) >= 2
        assert _sign(client, headers, "town-coordinator", 2, content_hash).status_code == 201
        again = _sign(client, headers, "town-coordinator", 2, content_hash)
        assert again.status_code == 409 and "already signed" in again.json()["detail"]

    def test_a_restart_keeps_the_signed_version_while_the_file_holds_the_proposed_one(
        self, town: tuple[TestClient, Headers], settings: Settings, folder: Path
    ) -> None:
        client, headers = town
        client.__exit__(None, None, None)
        with _start(settings, folder) as restarted:
            state: AppState = restarted.app.state.cb  # type: ignore[attr-defined]
            kept = state.policies.current.get("demo-town")
            assert kept is not None and kept.version == 1 and kept.review_by.isoformat() == "2027-06-30"
            assert state.policies.loaded.get("demo-town").version == 2  # type: ignore[union-attr]
            assert [p.version for p in state.policies.current.proposed if p.agreement_id == "demo-town"] == [2]

    def test_an_edit_of_a_signed_version_keeps_the_signed_text(
        self, town: tuple[TestClient, Headers], folder: Path
    ) -> None:
        client, headers = town
        state: AppState = client.app.state.cb  # type: ignore[attr-defined]
        path = folder / "demo-town.yaml"
        path.write_text(path.read_text().replace("version: 2", "version: 1", 1).replace(
            "review_by: 2027-12-31", "review_by: 2028-12-31", 1))
        report = client.post("/v1/admin/agreements/reload", headers=headers("municipality-operator")).json()
        assert any("changed after it was signed" in w for w in report["warnings"])
        assert state.policies.current.get("demo-town").review_by.isoformat() == "2027-06-30"  # type: ignore[union-attr]


class TestAwaitingSignatures:
    def test_a_refusal_names_the_agreement_awaiting_signatures(
        self, town: tuple[TestClient, Headers], folder: Path
    ) -> None:
        client, headers = town
        admin = headers("municipality-operator")
        assert client.post("/v1/admin/agencies", headers=admin,
                           json={"id": "town-clinic", "name": "Town clinic", "sector": "health"}).status_code == 201
        made = client.post("/v1/admin/clients", headers=admin, json={
            "id": "town-clinic-nurse", "agency_id": "town-clinic", "name": "Nurse", "roles": ["caseworker"]})
        text = (folder / "demo-town.yaml").read_text().replace("agreement: demo-town", "agreement: town-clinic", 1)
        (folder / "town-clinic.yaml").write_text(text.replace(
            "parties: [town-council, town-school, town-social-services, town-youth-club]",
            "parties: [town-council, town-clinic]", 1))
        reloaded = client.post("/v1/admin/agreements/reload", headers=admin).json()
        assert reloaded["errors"] == [], reloaded
        form = {"grant_type": "client_credentials", "client_id": "town-clinic-nurse",
                "client_secret": made.json()["client_secret"]}
        token = client.post("/v1/token", data=form).json()["access_token"]
        body = {"purpose": "safeguarding_assessment", "record": {"kind": "referral", "network": "demo-town"}}
        explained = client.post("/v1/decisions/explain", json=body, headers={"Authorization": f"Bearer {token}"})
        assert explained.status_code == 200, explained.text
        reason = explained.json()["decision"]["reason"]
        assert "agreement town-clinic version 2 is proposed: awaiting the signatures of town-council, town-clinic" \
            in reason
