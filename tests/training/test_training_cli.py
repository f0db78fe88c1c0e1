"""casebridge training import / list, through the real command line against the running app's database."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.audit_log import entries
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.state import AppState

runner = CliRunner()
HEADER = "person_id,course_id,completed_on,expires_on,recorded_by\n"
WITH_AGENCY = "person_id,course_id,completed_on,expires_on,recorded_by,agency_id\n"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings, demo: dict[str, dict[str, Any]]) -> None:
    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(settings.resolved_keyring_path))
    monkeypatch.setenv("CASEBRIDGE_AUTO_MIGRATE", "false")
    monkeypatch.setenv("CASEBRIDGE_SEED_DEMO", "false")


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def listed(person: str) -> list[dict[str, Any]]:
    code, stdout, stderr = run("training", "list", "--person", person, "--json")
    assert code == 0, stderr
    rows: list[dict[str, Any]] = json.loads(stdout)
    return rows


def test_a_good_file_is_imported_logged_and_opens_the_contact_view(
    env: None, tmp_path: Path, state: AppState, app_client: TestClient, token_for: Callable[..., str],
    post_referral: Callable[..., Any], move: Callable[..., Any],
) -> None:
    rid = post_referral()["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-social-services"]}))
    headers = {"Authorization": f"Bearer {token_for('social-services-caseworker', act='imported-worker')}",
               "X-Purpose": "intervention_planning"}
    before = app_client.get(f"/v1/referrals/{rid}", headers=headers)
    assert before.headers["x-granted-view"] == "referral.case"
    day = state.clock().date()
    file = tmp_path / "completions.csv"
    file.write_text(WITH_AGENCY + f"imported-worker,data-protection-basics,{day - timedelta(days=3)},"
                    f"{day + timedelta(days=700)},municipality-coordinator,city-social-services\n"
                    f"imported-worker,safeguarding-ethics,{day - timedelta(days=3)},,,city-social-services\n")
    code, stdout, stderr = run("training", "import", str(file), "--json")
    assert code == 0, stderr
    assert json.loads(stdout) == {"imported": 2, "errors": []}
    rows = listed("imported-worker")
    assert {(r["course_id"], r["source"], r["recorded_by"], r["counts"]) for r in rows} == {
        ("data-protection-basics", "import", "municipality-coordinator", True),
        ("safeguarding-ethics", "import", "import", True)}
    assert len(entries(state, event_type="training_recorded")) == 2
    after = app_client.get(f"/v1/referrals/{rid}", headers=headers)
    assert after.headers["x-granted-view"] == "referral.contact"


def test_any_bad_row_imports_nothing_and_every_bad_line_is_reported(
    env: None, tmp_path: Path, state: AppState
) -> None:
    day = state.clock().date()
    file = tmp_path / "completions.csv"
    file.write_text(HEADER + f"good-person,data-protection-basics,{day},,\n"
                    "bad person,data-protection-basics,2026-01-01,,\n"
                    f"other,Data Protection,{day},,\n"
                    "other,data-protection-basics,yesterday,,\n"
                    f"other,data-protection-basics,{day},{day - timedelta(days=1)},\n"
                    "other,data-protection-basics,2999-01-01,,\n")
    code, stdout, stderr = run("training", "import", str(file))
    assert code == 1 and stdout == ""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert [line.split(":")[0:2] for line in lines] == [
        ["error", f" completions.csv line {n}"] for n in range(3, 8)], stderr
    for needle in ("line 3: person_id 'bad person'", "line 4: course_id 'Data Protection'",
                   "line 5: completed_on 'yesterday' is not a date", "line 6: expires_on", "line 7: completed_on"):
        assert needle in stderr, (needle, stderr)
    assert listed("good-person") == []
    assert entries(state, event_type="training_recorded") == []
    code, stdout, _ = run("training", "import", str(file), "--json")
    assert code == 1 and json.loads(stdout)["imported"] == 0 and len(json.loads(stdout)["errors"]) == 5


def test_a_record_counts_for_the_persons_agency_which_a_stranger_must_name(
    env: None, tmp_path: Path, state: AppState
) -> None:
    day = state.clock().date()
    file = tmp_path / "completions.csv"
    file.write_text(WITH_AGENCY + f"unknown-worker,data-protection-basics,{day},,,\n"  # a stranger, no agency
                    f"social-services-caseworker,data-protection-basics,{day},,,school-north\n"  # not its agency
                    f"[/x],data-protection-basics,{day},,,\n")  # markup in a value is printed, not parsed
    code, stdout, stderr = run("training", "import", str(file))
    assert code == 1 and stdout == ""
    assert "line 4: person_id '[/x]' is not a person or client id" in stderr, stderr
    assert "line 2" not in stderr and "line 3" not in stderr  # the rows are checked first, then their agencies
    file.write_text(WITH_AGENCY + f"unknown-worker,data-protection-basics,{day},,,\n"
                    f"social-services-caseworker,data-protection-basics,{day},,,school-north\n")
    code, stdout, stderr = run("training", "import", str(file))
    assert code == 1 and stdout == ""
    assert "line 2: Person 'unknown-worker' is unknown here: name their agency in agency_id." in stderr, stderr
    assert ("line 3: Person 'social-services-caseworker' is of agency 'city-social-services', not 'school-north'."
            in stderr)
    assert entries(state, event_type="training_recorded") == []
    file.write_text(WITH_AGENCY + f"unknown-worker,data-protection-basics,{day},,,school-north\n"
                    f"social-services-caseworker,data-protection-basics,{day},,,\n")
    code, stdout, stderr = run("training", "import", str(file), "--json")
    assert code == 0 and json.loads(stdout) == {"imported": 2, "errors": []}, stderr
    assert [(r["agency_id"], r["counts"]) for r in listed("unknown-worker")] == [("school-north", True)]
    counted = {(r["agency_id"], r["counts"]) for r in listed("social-services-caseworker")}
    assert ("city-social-services", True) in counted


def test_wrong_columns_and_a_missing_file_are_refused(env: None, tmp_path: Path) -> None:
    file = tmp_path / "wrong.csv"
    file.write_text("person,course\nx,y\n")
    code, _, stderr = run("training", "import", str(file))
    assert code == 1 and "line 1: the columns must be person_id,course_id,completed_on,expires_on" in stderr
    code, _, stderr = run("training", "import", str(tmp_path / "absent.csv"))
    assert code == 1 and "cannot be read" in stderr


def test_policy_explain_takes_the_callers_courses() -> None:
    policies = str(Path(__file__).resolve().parents[2] / "policies")
    asked = ["policy", "explain", "--dir", policies, "--agency", "city-social-services", "--sector", "social_services",
             "--roles", "caseworker", "--relations", "assigned", "--purpose", "intervention_planning",
             "--record", "consent=given", "--record", "status=assigned", "--view", "referral.contact",
             "--on", "2026-06-01"]
    code, stdout, _ = run(*asked)
    assert code == 3
    refused = json.loads(stdout)
    assert refused["decision"]["reason_code"] == "training_required"
    assert "data-protection-basics" in refused["decision"]["reason"]
    code, stdout, _ = run(*asked, "--training", "data-protection-basics")
    assert code == 0 and json.loads(stdout)["decision"]["view"] == "referral.contact"
