"""Agreements that look at more of the case: `when` on intervention type, urgency and concerns.

The demo agreement is rewritten here so the community police's grant depends on all three, as a
city's might (the cities' fifth tip: the information needed differs by intervention type). Each
read is decided on the referral as stored; every list holds exactly what single reads grant,
so the SQL prefilter derived from the new conditions drops nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, REFERRER
from support.settings import suite_settings

from app.config import Settings

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
    return suite_settings(tmp_path, database_url).model_copy(update={"policies_dir": folder})


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
