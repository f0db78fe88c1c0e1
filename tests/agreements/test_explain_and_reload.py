"""Explaining decisions, reloading agreements without a restart, and the policy command line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.agreements import sign_all
from support.referrals import COORDINATOR, REFERRER
from typer.testing import CliRunner

from app.cli import cli
from app.config import REPO_ROOT, Settings
from app.main import create_app

Auth = Callable[..., dict[str, str]]
runner = CliRunner()


class TestExplain:
    def test_why_police_do_not_get_health_notes(self, app_client: TestClient, auth: Auth) -> None:
        body = {"purpose": "intervention_planning",
                "record": {"kind": "note", "classification": "health", "consent": "given",
                           "status": "in_intervention", "relations": ["assigned"]}}
        response = app_client.post("/v1/decisions/explain", json=body, headers=auth("community-police-caseworker"))
        assert response.status_code == 200
        result = response.json()
        assert result["decision"]["permit"] is False
        traces = {t["rule"]: t for t in result["rules"]}
        assert traces["health-notes-to-care"]["status"] == "not_matched"
        assert "police" in traces["health-notes-to-care"]["reason"]
        assert result["winning_deny"] in (None, "no-health-notes-to-police")

    def test_a_real_referral_the_caller_is_involved_in(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        mine = app_client.post("/v1/decisions/explain", json={"purpose": "safeguarding_assessment", "referral_id": rid},
                               headers=auth(REFERRER))
        assert mine.status_code == 200
        assert mine.json()["decision"]["permit"] is True
        assert mine.json()["decision"]["view"] == "referral.full"
        stranger = app_client.post("/v1/decisions/explain",
                                   json={"purpose": "safeguarding_assessment", "referral_id": rid},
                                   headers=auth("school-south-referrer"))
        assert stranger.status_code == 403
        assert "submitted" not in stranger.text

    @pytest.mark.parametrize("body", [
        {"purpose": "x"},
        {"purpose": "x", "referral_id": "ref_1", "record": {}},
        {"purpose": "x", "record": {"kind": "planet"}},
        {"purpose": "x", "record": {"relations": ["boss"]}},
    ])
    def test_bad_requests_are_422(self, app_client: TestClient, auth: Auth, body: dict[str, Any]) -> None:
        assert app_client.post("/v1/decisions/explain", json=body, headers=auth(COORDINATOR)).status_code == 422


@pytest.fixture
def policies_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "policies", folder, ignore=shutil.ignore_patterns("examples"))
    return folder


@pytest.fixture
def reloading_client(settings: Settings, policies_copy: Path) -> Iterator[TestClient]:
    custom = settings.model_copy(update={"policies_dir": policies_copy, "policy_reload_seconds": 0})
    with TestClient(create_app(custom), raise_server_exceptions=False) as client:
        yield client


class TestReload:
    def _seed(self, client: TestClient) -> Auth:
        from app.db import transaction
        from app.demo import seed_demo

        state = client.app.state.cb  # type: ignore[attr-defined]
        with transaction(state.sessions) as session:
            creds = {c["client_id"]: c for c in seed_demo(session, state)}

        def headers(client_id: str) -> dict[str, str]:
            form = {"grant_type": "client_credentials", "client_id": client_id,
                    "client_secret": creds[client_id]["client_secret"]}
            return {"Authorization": "Bearer " + client.post("/v1/token", data=form).json()["access_token"]}

        return headers

    def test_a_new_version_takes_effect_and_a_broken_one_leaves_the_old_in_force(
        self, reloading_client: TestClient, policies_copy: Path
    ) -> None:
        headers = self._seed(reloading_client)
        admin = headers("municipality-operator")
        path = policies_copy / "demo-city.yaml"
        original = path.read_text()
        path.write_text(original.replace("version: 3", "version: 4", 1))
        report = reloading_client.post("/v1/admin/agreements/reload", headers=admin).json()
        assert "demo-city@v3" in report["in_force"] and report["errors"] == []  # v4 is proposed: unsigned
        assert report["proposed"] == ["demo-city@v4"]
        assert sign_all(reloading_client.app.state.cb) > 0  # type: ignore[attr-defined]
        report = reloading_client.post("/v1/admin/agreements/reload", headers=admin).json()
        assert "demo-city@v4" in report["in_force"] and report["errors"] == []
        path.write_text(
            original.replace("version: 3", "version: 5", 1).replace("legal_basis: public_task", "legal_basis: whim", 1)
        )
        broken = reloading_client.post("/v1/admin/agreements/reload", headers=admin).json()
        assert "demo-city@v4" in broken["in_force"]
        assert broken["errors"][0]["file"].endswith("demo-city.yaml") and broken["errors"][0]["line"] > 0
        assert "legal_basis" in broken["errors"][0]["path"] and "public_task" in broken["errors"][0]["reason"]
        listed = reloading_client.get("/v1/agreements", headers=headers(COORDINATOR)).json()["items"]
        assert listed[0]["version"] == 4

    def test_the_watcher_notices_a_changed_folder(self, reloading_client: TestClient, policies_copy: Path) -> None:
        from app.agreements.watcher import PolicyWatcher

        state = reloading_client.app.state.cb  # type: ignore[attr-defined]
        watcher = PolicyWatcher(state, interval=0)
        assert watcher.poll() is False
        path = policies_copy / "demo-city.yaml"
        path.write_text(path.read_text().replace("version: 3", "version: 7", 1))
        assert watcher.poll() is True
        assert state.policies.loaded.get("demo-city").version == 7
        assert sign_all(state) > 0
        assert state.policies.current.get("demo-city").version == 7

    def test_only_admins_reload(self, app_client: TestClient, auth: Auth) -> None:
        assert app_client.post("/v1/admin/agreements/reload", headers=auth(COORDINATOR)).status_code == 403


class TestPolicyCli:
    def test_check_passes_on_the_shipped_agreements(self) -> None:
        for folder in ("policies", "policies/examples"):
            result = runner.invoke(cli, ["policy", "check", "--dir", str(REPO_ROOT / folder), "--on", "2026-06-01"])
            assert result.exit_code == 0, result.output

    def test_check_lists_each_networks_protocol_and_refuses_a_broken_one(self, policies_copy: Path) -> None:
        result = runner.invoke(cli, ["policy", "check", "--dir", str(policies_copy)])
        assert result.exit_code == 0, result.output
        assert ("network demo-city: meets every P1M, chaired by city-municipality; triage within immediate "
                "PT24H, urgent P2D, priority P5D, routine P14D;") in result.stdout
        town = policies_copy / "networks" / "demo-town.yaml"
        protocol = "protocol:\n  meetings: {cadence: P1M}\n"
        town.write_text(town.read_text().replace(protocol, protocol + "  reviews_after_closure: [P6M, later]\n"))
        broken = runner.invoke(cli, ["policy", "check", "--dir", str(policies_copy), "--json"])
        assert broken.exit_code == 1
        (finding,) = [f for f in json.loads(broken.stdout) if "demo-town.yaml" in f["message"]]
        assert finding["level"] == "error"
        assert finding["message"].endswith(":12: protocol.reviews_after_closure[1]: bad duration 'later': "
                                           "expected ISO 8601 such as P6Y, P90D or PT3H")

    def test_check_fails_on_a_broken_agreement(self, policies_copy: Path) -> None:
        (policies_copy / "broken.yaml").write_text("agreement: broken\nversion: 1\nrules: [\n")
        result = runner.invoke(cli, ["policy", "check", "--dir", str(policies_copy), "--json"])
        assert result.exit_code == 1
        findings = json.loads(result.stdout)
        assert any("broken.yaml" in json.dumps(f) for f in findings)

    def test_policy_tests_pass_with_full_coverage(self) -> None:
        for folder in ("policies", "policies/examples"):
            result = runner.invoke(cli, ["policy", "test", "--dir", str(REPO_ROOT / folder), "--json"])
            assert result.exit_code == 0, result.output
            report = json.loads(result.stdout)
            assert report["failed"] == [] and report["uncovered"] == {} and report["passed"] > 0

    def test_who_can_and_ropa(self) -> None:
        who = runner.invoke(cli, ["policy", "who-can", "--view", "referral.summary", "--purpose", "service_provision",
                                  "--json", "--on", "2026-06-01"])
        assert who.exit_code == 0
        assert "partner-summary" in {r["rule"] for r in json.loads(who.stdout)}
        ropa = runner.invoke(cli, ["policy", "ropa"])
        assert ropa.exit_code == 0 and "Record of processing activities" in ropa.stdout
        as_json = runner.invoke(cli, ["policy", "ropa", "--format", "json"])
        assert json.loads(as_json.stdout)["agreements"][0]["agreement"] == "demo-city"
        assert runner.invoke(cli, ["policy", "ropa", "--format", "pdf"]).exit_code == 2

    def test_explain_from_the_cli(self) -> None:
        args = ["policy", "explain", "--agency", "city-community-police", "--sector", "police", "--roles", "caseworker",
                "--relations", "assigned", "--purpose", "intervention_planning", "--kind", "note",
                "--record", "classification=health", "--record", "consent=given", "--on", "2026-06-01"]
        result = runner.invoke(cli, args)
        assert result.exit_code == 3
        assert json.loads(result.stdout)["decision"]["permit"] is False
        assert runner.invoke(cli, [*args[:-4], "--record", "oops"]).exit_code == 2

    def test_explain_a_record_with_several_concerns_from_the_cli(self) -> None:
        args = ["policy", "explain", "--dir", str(REPO_ROOT / "policies" / "examples"), "--agency", "nyc-nypd-htf",
                "--sector", "police", "--roles", "caseworker", "--relations", "assigned",
                "--purpose", "intervention_planning", "--record", "status=assigned", "--record", "risk_level=high",
                "--record", "network=nyc-interagency", "--on", "2026-06-01"]
        granted = runner.invoke(cli, [*args, "--record", "concerns=school_conflict,hate_incident"])
        assert granted.exit_code == 0, granted.output
        assert json.loads(granted.stdout)["decision"]["rule_ids"] == ["law-enforcement-assigned"]
        refused = runner.invoke(cli, [*args, "--record", "concerns=school_conflict,family_concern"])
        assert refused.exit_code == 3
        assert json.loads(refused.stdout)["decision"]["permit"] is False
