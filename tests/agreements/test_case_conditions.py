"""Agreements that look at more of the case: `when` on intervention type, urgency and concerns,
and on the read itself: `invited`, through a case conference's agenda item.

The demo agreement is rewritten here so the community police's grant depends on all three, as a
city's might (the cities' fifth tip: the information needed differs by intervention type). Each
read is decided on the referral as stored; every list holds exactly what single reads grant,
so the SQL prefilter derived from the new conditions drops nothing. A second agreement of the
demo network opens a summary to a school invited to a case conference, and only then.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from bola.oracle import Caller as OracleCaller
from bola.oracle import Oracle, Rec
from fastapi.testclient import TestClient
from support.agreements import sign_all
from support.referrals import COORDINATOR, REFERRER
from support.settings import suite_settings
from typer.testing import CliRunner

from app import access
from app.auth.principal import Principal
from app.cli import cli
from app.config import Settings
from app.db import transaction
from app.referrals import service as referrals
from app.state import AppState

Auth = Callable[..., dict[str, str]]
REPO_ROOT = Path(__file__).resolve().parents[2]
POLICE = "community-police-caseworker"
PLANNING = {"X-Purpose": "intervention_planning"}
CONDITIONS = """    when:
      consent: [given, not_required]
      status: [assigned, in_intervention]
      intervention_type: [family_intervention, multi_agency_case_plan]
      urgency: [urgent, immediate]
      concerns: [threat_of_violence, recruitment_contact]
"""
SCHOOL = "school-south-referrer"  # party to the conference agreement; no relation to the referrals
CONFERENCE = "case_conference"
CONFERENCE_AGREEMENT = """agreement: invited-test
network: demo-city
version: 1
title: Case conferences - what an invited school reads
effective_from: 2026-01-01
review_by: 2027-06-30
controller_contact: dpo@city-municipality.example
parties: [city-municipality, school-south]
purposes:
  case_conference: Discuss a referral at the network's case conference.
views:
  referral.summary: [id, subject.age_band, subject.district, concerns, requested_services, status]
rules:
  - id: invitee-summary
    to: {agencies: [school-south]}
    view: referral.summary
    purposes: [case_conference]
    when: {invited: true, status: [accepted, assigned, in_intervention]}
    legal_basis: public_task
    retention: P90D
"""
runner = CliRunner()


def policies_with_the_conference(folder: Path) -> Path:
    """The shipped networks and the conference agreement alone."""
    shutil.copytree(REPO_ROOT / "policies" / "networks", folder / "networks")
    (folder / "invited-test.yaml").write_text(CONFERENCE_AGREEMENT)
    return folder


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    folder = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "policies", folder, ignore=shutil.ignore_patterns("examples"))
    agreement = folder / "demo-city.yaml"
    text = agreement.read_text()
    old = "    when: {consent: [given, not_required], status: [assigned, in_intervention]}\n"
    start = text.index("  - id: police-assigned-case")
    at = text.index(old, start)
    agreement.write_text(text[:at] + CONDITIONS + text[at + len(old):])
    (folder / "invited-test.yaml").write_text(CONFERENCE_AGREEMENT)
    return suite_settings(tmp_path, database_url).model_copy(update={"policies_dir": folder})


@pytest.fixture
def demo(demo: dict[str, dict[str, Any]], state: AppState) -> dict[str, dict[str, Any]]:
    """The demo, and the test's own agreement signed by its parties (the demo signs only its own)."""
    sign_all(state)
    return demo


def assigned_to_police(post_referral: Callable[..., Any], move: Callable[..., Any], **changes: Any) -> str:
    rid: str = post_referral(REFERRER, **changes)["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-community-police"]}))
    return rid


@pytest.mark.parametrize(
    ("changes", "granted"),
    [
        ({"intervention_type": "family_intervention", "urgency": "urgent",
          "concerns": ["school_conflict", "threat_of_violence"]}, True),
        ({"intervention_type": "individual_mentoring", "urgency": "urgent",
          "concerns": ["threat_of_violence"]}, False),
        ({"intervention_type": "family_intervention", "urgency": "routine",
          "concerns": ["threat_of_violence"]}, False),
        ({"intervention_type": "family_intervention", "urgency": "immediate",
          "concerns": ["school_conflict", "family_concern"]}, False),
        ({"intervention_type": None, "urgency": "urgent", "concerns": ["recruitment_contact"]}, False),
    ],
    ids=["all-hold", "mentoring", "routine", "no-listed-concern", "no-intervention-yet"],
)
def test_the_police_read_depends_on_the_intervention_urgency_and_concerns(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any],
    changes: dict[str, Any], granted: bool,
) -> None:
    rid = assigned_to_police(post_referral, move, **changes)
    response = app_client.get(f"/v1/referrals/{rid}", headers=auth(POLICE, **PLANNING))
    if granted:
        assert response.status_code == 200, response.text
        assert response.headers["x-granted-view"] == "referral.police"
        assert "narrative" not in response.json()
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
    explained = app_client.post("/v1/decisions/explain", headers=auth(POLICE),
                                json={"purpose": "intervention_planning", "referral_id": rid})
    assert explained.status_code == 200, explained.text
    assert explained.json()["decision"]["permit"] is granted


def test_lists_hold_exactly_what_single_reads_grant(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
) -> None:
    ids = [
        assigned_to_police(post_referral, move, intervention_type=kind, urgency=urgency, concerns=concerns)
        for kind in ("family_intervention", "individual_mentoring")
        for urgency in ("urgent", "routine")
        for concerns in (["threat_of_violence"], ["school_conflict"], ["school_conflict", "recruitment_contact"])
    ]
    headers = auth(POLICE, **PLANNING)
    readable = {rid for rid in ids if app_client.get(f"/v1/referrals/{rid}", headers=headers).status_code == 200}
    assert len(readable) == 2  # family intervention, urgent, a listed concern (alone or among others)
    listed = app_client.get("/v1/referrals?limit=200", headers=headers)
    assert listed.status_code == 200, listed.text
    assert {item["id"] for item in listed.json()["items"]} == readable


def test_explain_a_described_record_with_concerns(app_client: TestClient, auth: Auth) -> None:
    def explain(**record: Any) -> dict[str, Any]:
        body = {"purpose": "intervention_planning",
                "record": {"status": "assigned", "consent": "given", "relations": ["assigned"], **record}}
        response = app_client.post("/v1/decisions/explain", headers=auth(POLICE), json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    granted = explain(intervention_type="family_intervention", urgency="immediate",
                      concerns=["family_concern", "recruitment_contact"])
    assert granted["decision"]["permit"] is True
    refused = explain(intervention_type="family_intervention", urgency="immediate", concerns=["family_concern"])
    assert refused["decision"]["permit"] is False
    assert "concerns=[family_concern] has none of [recruitment_contact, threat_of_violence]" in str(refused)
    assert app_client.post("/v1/decisions/explain", headers=auth(COORDINATOR), json={
        "purpose": "intervention_planning", "record": {"concerns": "threat_of_violence"}}).status_code == 422


def test_a_reassessment_is_what_the_conditions_see_next(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
) -> None:
    rid = assigned_to_police(post_referral, move, intervention_type="individual_mentoring", urgency="urgent",
                             concerns=["threat_of_violence"])
    url, police = f"/v1/referrals/{rid}", auth(POLICE, **PLANNING)
    assert app_client.get(url, headers=police).status_code == 403
    changed = app_client.post(f"{url}/assessments", headers=auth(COORDINATOR), json={
        "intervention_type": "family_intervention", "reason": "The family asked for support."})
    assert changed.status_code == 200, changed.text
    granted = app_client.get(url, headers=police)
    assert granted.status_code == 200 and granted.json()["intervention_type"] == "family_intervention"
    listed = app_client.get("/v1/referrals?limit=200", headers=police).json()["items"]
    assert rid in {item["id"] for item in listed}


class TestInvited:
    """`when: {invited: true}`: only a read through an agenda item the caller's agency is invited to."""

    def explain(self, app_client: TestClient, auth: Auth, **record: Any) -> dict[str, Any]:
        body = {"purpose": CONFERENCE, "record": {"status": "assigned", **record}}
        response = app_client.post("/v1/decisions/explain", headers=auth(SCHOOL), json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def test_explain_permits_an_invited_read_only(self, app_client: TestClient, auth: Auth) -> None:
        granted = self.explain(app_client, auth, invited=True)
        assert granted["decision"]["permit"] is True
        assert {t["rule"]: t["status"] for t in granted["rules"]}["invitee-summary"] == "matched"
        for record in ({}, {"invited": False}):  # a described record is read outside a meeting by default
            refused = self.explain(app_client, auth, **record)
            assert refused["decision"]["reason_code"] == "no_rule"
            traces = {t["rule"]: t for t in refused["rules"]}
            assert traces["invitee-summary"]["reason"] == "invited=false not in [true]"

    @pytest.mark.parametrize("invited", ["yes", "true", 1, [True]])
    def test_explain_takes_a_boolean_only(self, app_client: TestClient, auth: Auth, invited: Any) -> None:
        body = {"purpose": CONFERENCE, "record": {"status": "assigned", "invited": invited}}
        assert app_client.post("/v1/decisions/explain", headers=auth(SCHOOL), json=body).status_code == 422

    def test_decide_referral_permits_when_invited_and_denies_by_default(
        self, app_client: TestClient, state: AppState, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        rid = post_referral(REFERRER)["id"]
        move(rid, "triaged", "accepted")
        school = Principal(SCHOOL, "school-south", "education", frozenset({"referrer", "caseworker"}), None, "t")
        policies, today = state.policies.current, state.clock().date()
        with transaction(state.sessions) as session:
            referral = referrals.load(session, rid)
            invited = access.decide_referral(policies, school, referral, CONFERENCE, None, today, invited=True)
            default = access.decide_referral(policies, school, referral, CONFERENCE, None, today)
            grant = access.referral_grant(policies, school, referral, CONFERENCE, None, today, invited=True)
            with pytest.raises(access.AccessDenied):
                access.referral_grant(policies, school, referral, CONFERENCE, None, today)
        assert invited.permit is True and grant.kind == "disclosure"
        assert (default.permit, default.reason_code) == (False, "no_rule")

    @pytest.mark.parametrize("invited", ["true", "false"])
    def test_the_agreement_loads_and_lint_does_not_flag_it(self, tmp_path: Path, invited: str) -> None:
        folder = policies_with_the_conference(tmp_path / "policies")
        agreement = folder / "invited-test.yaml"
        agreement.write_text(agreement.read_text().replace("invited: true", f"invited: {invited}"))
        result = runner.invoke(cli, ["policy", "check", "--dir", str(folder), "--json", "--on", "2026-06-01"])
        assert result.exit_code == 0, result.output
        assert [f for f in json.loads(result.stdout) if f["agreement"] == "invited-test"] == []
        who = runner.invoke(cli, ["policy", "who-can", "--view", "referral.summary", "--purpose", CONFERENCE,
                                  "--json", "--on", "2026-06-01"] + ["--dir", str(folder)])
        assert who.exit_code == 0, who.output
        (rule,) = json.loads(who.stdout)
        assert rule["conditions"]["invited"] == [invited]

    @pytest.mark.parametrize("written", ["[true]", '"yes"', "1", "[]"])
    def test_anything_but_a_boolean_is_refused_with_file_and_line(self, tmp_path: Path, written: str) -> None:
        folder = policies_with_the_conference(tmp_path / "policies")
        text = CONFERENCE_AGREEMENT.replace("when: {invited: true,", f"when: {{invited: {written},")
        (folder / "invited-test.yaml").write_text(text)
        line = next(n for n, row in enumerate(text.splitlines(), 1) if "when: {invited" in row)
        result = runner.invoke(cli, ["policy", "check", "--dir", str(folder), "--json", "--on", "2026-06-01"])
        assert result.exit_code == 1, result.output
        (error,) = [f for f in json.loads(result.stdout) if "invited-test.yaml" in f["message"]]
        assert error["level"] == "error"
        assert f"invited-test.yaml:{line}: rules[0].when.invited: " in error["message"]

    def test_a_policy_test_case_says_invited(self, tmp_path: Path) -> None:
        folder = policies_with_the_conference(tmp_path / "policies")
        (folder / "tests").mkdir()
        cases = folder / "tests" / "invited-test.yaml"
        cases.write_text("""agreement: invited-test
now: 2026-06-01
cases:
  - name: an invited school reads the summary during the conference
    caller: {agency: school-south, sector: education, roles: [referrer]}
    purpose: case_conference
    record: {status: assigned, invited: true}
    expect: {decision: permit, view: referral.summary, rules: [invitee-summary]}
  - name: outside the conference it reads nothing
    caller: {agency: school-south, sector: education, roles: [referrer]}
    purpose: case_conference
    record: {status: assigned}
    expect: {decision: deny, reason: no rule grants}
  - name: nor when it says so
    caller: {agency: school-south, sector: education, roles: [referrer]}
    purpose: case_conference
    record: {status: assigned, invited: false}
    expect: {decision: deny, reason: no rule grants}
""")
        result = runner.invoke(cli, ["policy", "test", "--dir", str(folder), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["passed"] == 3 and report["failed"] == []
        assert report["coverage"]["invited-test"] == {"invitee-summary": 1}
        cases.write_text(cases.read_text().replace("invited: true", 'invited: "yes"'))
        broken = runner.invoke(cli, ["policy", "test", "--dir", str(folder), "--json"])
        assert broken.exit_code == 1
        (failure,) = json.loads(broken.stdout)["failed"]
        assert "invited is true or false" in failure["message"]

    def test_the_oracle_agrees(self, tmp_path: Path) -> None:
        folder = policies_with_the_conference(tmp_path / "policies")
        oracle = Oracle.load(folder, date(2026, 6, 1))
        school = OracleCaller(SCHOOL, "school-south", "education", frozenset({"referrer"}))
        rec = Rec("ref_1", "demo-city", "school-north", "assigned", "given", "high")
        summary = oracle.referral_fields(next(a for a in oracle.agreements if a.id == "invited-test"),
                                         "referral.summary")
        assert oracle.referral_bound(school, replace(rec, invited=True), CONFERENCE) == summary
        assert oracle.referral_bound(school, rec, CONFERENCE) == frozenset()
        assert oracle.referral_bound(school, replace(rec, status="submitted", invited=True), CONFERENCE) == frozenset()
