"""referral/v2 beside referral/v1: both accepted, each remembered and read back as what it is."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body
from support.schemas import accepted_referrals_match_the_schema, schema_errors

from app.config import REPO_ROOT, Settings
from app.main import create_app
from app.state import AppState

Auth = Callable[..., dict[str, str]]
TOOL = "VERA-2R-marker-tool"
OUTCOME = "Attended-six-sessions-marker"
SECTIONS: dict[str, Any] = {
    "risk_assessment": {"assessed_at": "2026-11-30T09:00:00+02:00", "tool": TOOL, "level": "medium",
                        "factors": ["social_isolation"], "next_review": "2027-02-28"},
    "interventions": [{"type": "individual_mentoring", "provider_agency": "youth-ngo-bridges",
                       "started": "2026-10-01", "outcome": OUTCOME}],
}


def v2_body(**changes: Any) -> dict[str, Any]:
    return referral_body(**{"schema": "referral/v2", **SECTIONS, **changes})


def test_v1_and_v2_are_both_accepted_and_remembered(app_client: TestClient, auth: Auth, state: AppState) -> None:
    v1 = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER))
    unnamed = app_client.post("/v1/referrals", json=referral_body(schema=None), headers=auth(REFERRER))
    v2 = app_client.post("/v1/referrals", json=v2_body(), headers=auth(REFERRER))
    assert (v1.status_code, unnamed.status_code, v2.status_code) == (201, 201, 201), v2.text
    assert v1.json()["schema"] == unnamed.json()["schema"] == "referral/v1"
    assert "risk_assessment" not in v1.json() and "interventions" not in v1.json()
    echoed = v2.json()
    assert echoed["schema"] == "referral/v2"
    assert echoed["risk_assessment"] == {**SECTIONS["risk_assessment"], "assessed_at": "2026-11-30T07:00:00Z"}
    assert echoed["interventions"] == SECTIONS["interventions"]
    with state.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, schema_id FROM referrals")).all())
    assert rows == {v1.json()["id"]: "referral/v1", unnamed.json()["id"]: "referral/v1", v2.json()["id"]: "referral/v2"}


def test_v2_sections_are_sealed_at_rest(app_client: TestClient, auth: Auth, state: AppState) -> None:
    created = app_client.post("/v1/referrals", json=v2_body(), headers=auth(REFERRER))
    assert created.status_code == 201
    with state.engine.connect() as conn:
        query = text("SELECT sections FROM referrals WHERE id = :i")
        sealed = conn.execute(query, {"i": created.json()["id"]}).one()[0]
    assert sealed and TOOL.encode() not in bytes(sealed) and OUTCOME.encode() not in bytes(sealed)


@pytest.mark.parametrize("section", ["risk_assessment", "interventions"])
def test_a_v1_body_with_a_v2_section_is_refused(
    app_client: TestClient, auth: Auth, state: AppState, section: str
) -> None:
    body = referral_body(**{section: SECTIONS[section]})
    assert schema_errors(app_client, body), "referral/v1 has no such field"
    response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert f"$.{section}" in [e["path"] for e in response.json()["errors"]]
    with state.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM referrals")).scalar_one() == 0


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"risk_assessment": {**SECTIONS["risk_assessment"], "level": "extreme"}}, "$.risk_assessment.level"),
        ({"interventions": [{"type": "exorcism"}]}, "$.interventions[0].type"),
        ({"risk_assessment": {"level": "low"}}, "$.risk_assessment.assessed_at"),
        ({"schema": "referral/v3"}, "$.schema"),
    ],
)
def test_v2_sections_are_checked_like_the_rest(
    app_client: TestClient, auth: Auth, changes: dict[str, Any], path: str
) -> None:
    response = app_client.post("/v1/referrals", json=v2_body(**changes), headers=auth(REFERRER))
    assert response.status_code == 422, response.text
    assert path in [e["path"] for e in response.json()["errors"]]


def test_an_agreement_that_does_not_name_the_v2_fields_does_not_disclose_them(
    app_client: TestClient, auth: Auth
) -> None:
    created = app_client.post("/v1/referrals", json=v2_body(), headers=auth(REFERRER)).json()
    read = app_client.get(f"/v1/referrals/{created['id']}", headers=auth(COORDINATOR, **PURPOSE))
    assert read.status_code == 200
    assert read.json()["schema"] == "referral/v2"
    assert "risk_assessment" not in read.json() and "interventions" not in read.json()
    assert TOOL not in read.text and OUTCOME not in read.text


@pytest.fixture
def v2_client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """demo-city's full view also names the referral/v2 sections."""
    folder = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "policies", folder, ignore=shutil.ignore_patterns("examples"))
    city = folder / "demo-city.yaml"
    named = "referring_person, created_at, code_system, original_codes, link_conflicts"
    assert named in city.read_text()
    city.write_text(city.read_text().replace(named, named + ", risk_assessment, interventions"))
    custom = settings.model_copy(update={"policies_dir": folder, "policy_reload_seconds": 0})
    with TestClient(create_app(custom), raise_server_exceptions=False) as client:
        client.event_hooks["response"].append(accepted_referrals_match_the_schema(client))
        yield client


def _token(client: TestClient, credentials: dict[str, Any], client_id: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id,
            "client_secret": credentials[client_id]["client_secret"]}
    return {"Authorization": "Bearer " + client.post("/v1/token", data=form).json()["access_token"]}


def test_an_agreement_that_names_them_discloses_them_and_v1_reads_as_before(v2_client: TestClient) -> None:
    from app.db import transaction
    from app.demo import seed_demo

    state = v2_client.app.state.cb  # type: ignore[attr-defined]
    with transaction(state.sessions) as session:
        credentials = {c["client_id"]: c for c in seed_demo(session, state)}
    referrer, coordinator = _token(v2_client, credentials, REFERRER), _token(v2_client, credentials, COORDINATOR)
    v2 = v2_client.post("/v1/referrals", json=v2_body(), headers=referrer).json()
    v1 = v2_client.post("/v1/referrals", json=referral_body(), headers=referrer).json()
    read_v2 = v2_client.get(f"/v1/referrals/{v2['id']}", headers={**coordinator, **PURPOSE}).json()
    assert read_v2["interventions"] == SECTIONS["interventions"]
    assert read_v2["risk_assessment"]["tool"] == TOOL
    read_v1 = v2_client.get(f"/v1/referrals/{v1['id']}", headers={**coordinator, **PURPOSE}).json()
    assert read_v1["schema"] == "referral/v1"
    assert "risk_assessment" not in read_v1 and "interventions" not in read_v1
    assert read_v1["narrative"] == v1["narrative"]
