"""The guardrails are the agreement's: declared in `emergency:`, checked at load, obeyed by the API."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.emergency import AUDITOR, EMERGENCY, HEALTH, Auth, ask, review, slug
from support.referrals import COORDINATOR

from app.config import Settings
from app.policy import parse_agreement
from app.policy.model import EmergencyGuardrails, ReasonRule
from app.state import AppState

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "policies" / "demo-city.yaml").read_text()
SECTION = re.compile(r"^emergency:\n(?:[ #].*\n?)*", re.MULTILINE)
CUSTOM = """emergency:
  roles: [caseworker, coordinator]
  relations: [coordinator]
  view: referral.case
  duration: PT1H
  reason: {min_length: 10, min_words: 2}
  excluded_statuses: []
  max_per_agency_per_day: 1
  refuse_flagged: false
"""
SHORT = "Fire at home; child inside."


def with_section(section: str) -> str:
    assert SECTION.search(DEMO), "demo-city.yaml has an emergency section"
    return SECTION.sub(section, DEMO)


def errors(text: str) -> list[tuple[int | None, str]]:
    parsed = parse_agreement(text.encode(), "demo-city.yaml")
    assert parsed.agreement is None, "expected the agreement to be refused"
    return [(e.line, str(e)) for e in parsed.errors]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


class TestLoading:
    def test_the_demo_declares_its_guardrails(self) -> None:
        parsed = parse_agreement(DEMO.encode(), "demo-city.yaml")
        assert parsed.errors == [] and parsed.agreement is not None
        rules = parsed.agreement.emergency_guardrails
        assert rules.excluded_statuses == {"closed", "withdrawn", "declined", "transferred"}
        assert rules.max_per_agency_per_day == 3 and rules.refuse_flagged is True
        assert rules.reason == ReasonRule(40, 6, 0.25)
        permit = parsed.agreement.emergency
        assert permit is not None and permit.audience.relations == {"owner", "referrer", "assigned", "coordinator"}

    def test_defaults_when_the_section_says_only_its_view(self) -> None:
        parsed = parse_agreement(with_section("emergency:\n  view: referral.case\n").encode(), "demo-city.yaml")
        assert parsed.errors == [] and parsed.agreement is not None
        assert parsed.agreement.emergency_guardrails == EmergencyGuardrails(
            excluded_statuses=frozenset({"closed", "withdrawn"}), max_per_agency_per_day=3,
            reason=ReasonRule(min_length=40, min_words=6, max_char_share=0.25), refuse_flagged=True,
        )
        audience = parsed.agreement.emergency.audience if parsed.agreement.emergency else None
        assert audience is not None and audience.roles is None and audience.sectors is None
        assert audience.relations == {"owner", "referrer", "assigned", "coordinator"}

    @pytest.mark.parametrize(
        ("line", "needle", "reason"),
        [
            ("  excluded_statuses: [closed, finished]\n", "finished",
             "unknown referral status 'finished'"),
            ("  relations: [owner, partner]\n", "relations: [owner, partner]", "'coordinator'"),
            ("  max_per_agency_per_day: 0\n", "max_per_agency_per_day", "greater than or equal to 1"),
            ("  reason: {min_words: 3, max_char_share: 1.5}\n", "max_char_share: 1.5", "less than or equal to 1"),
            ("  reason: {min_lenght: 3}\n", "min_lenght", "unknown field 'min_lenght'"),
            ("  sectors: [schools]\n", "sectors: [schools]", "education"),
            ("  refuse_flagged: sometimes\n", "refuse_flagged", "boolean"),
            ("  roles: []\n", "roles: []", "at least 1"),
        ],
    )
    def test_a_bad_section_is_refused_with_file_line_and_reason(self, line: str, needle: str, reason: str) -> None:
        text = with_section("emergency:\n  view: referral.case\n" + line)
        [(at, message)] = errors(text)
        assert at == line_of(text, needle), message
        assert message.startswith(f"demo-city.yaml:{at}: emergency.") and reason in message, message

    def test_the_schema_documents_the_section(self) -> None:
        schema = (REPO / "policies" / "agreement.schema.json").read_text()
        for key in ("excluded_statuses", "max_per_agency_per_day", "refuse_flagged", "max_char_share", "min_words"):
            assert key in schema, key


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The demo agreements, with demo-city's emergency section replaced by CUSTOM."""
    folder = tmp_path / "policies"
    shutil.copytree(REPO / "policies", folder)
    (folder / "demo-city.yaml").write_text(with_section(CUSTOM))
    return Settings(
        env="dev",  # type: ignore[arg-type]
        data_dir=tmp_path / "data", database_url=database_url, keyring_path=tmp_path / "data" / "keyring.json",
        auto_migrate=False, seed_demo=False, policies_dir=folder,
    )


class TestDeclaredSection:
    def test_only_the_relations_named_may_ask(
        self, app_client: TestClient, auth: Auth, assigned_case: Callable[..., str]
    ) -> None:
        rid = assigned_case()
        refused = ask(app_client, auth, rid, HEALTH, SHORT)
        assert refused.status_code == 403 and "not in [coordinator]" in refused.json()["detail"]
        granted = ask(app_client, auth, rid, COORDINATOR, SHORT)  # a reason the section finds enough
        assert granted.status_code == 201, granted.text
        expires = datetime.fromisoformat(granted.json()["expires_at"])
        assert expires - datetime.fromisoformat(granted.json()["granted_at"]) == timedelta(hours=1)
        # The coordinator relation alone opens the purpose `emergency` to the grant's holder.
        read = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **EMERGENCY))
        assert read.status_code == 200 and read.headers["x-emergency-grant"] == granted.json()["id"]

    def test_no_excluded_status_and_a_cap_of_one(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any],
    ) -> None:
        closed, other = post_referral()["id"], post_referral()["id"]
        move(closed, "triaged", "declined")
        assert ask(app_client, auth, closed, COORDINATOR, SHORT).status_code == 201
        capped = ask(app_client, auth, other, COORDINATOR, SHORT)
        assert capped.status_code == 429 and capped.json()["max_per_agency_per_day"] == 1

    def test_a_flag_that_does_not_refuse_and_revoked_grants_that_count(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
    ) -> None:
        first, second = post_referral()["id"], post_referral()["id"]
        grant = ask(app_client, auth, first, COORDINATOR, SHORT).json()
        assert review(app_client, auth, grant["id"], "unjustified").json()["flag_id"]
        # Revoked, yet counted: the cap of one is still reached ...
        assert slug(ask(app_client, auth, second, COORDINATOR, SHORT)) == "emergency-limit-reached"
        # ... and a day later the flagged agency may ask again (refuse_flagged: false).
        later = state.clock() + timedelta(hours=24, seconds=1)
        state.clock = lambda: later
        assert ask(app_client, auth, second, COORDINATOR, SHORT).status_code == 201
        flags = app_client.get("/v1/audit/flagged-agencies", params={"active": "true"}, headers=auth(AUDITOR))
        assert [f["agency_id"] for f in flags.json()["items"]] == ["city-municipality"]
