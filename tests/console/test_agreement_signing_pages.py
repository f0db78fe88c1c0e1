"""Signing in the console: a proposed version's panel, its sign form (through the API as the person), the refusals."""

from __future__ import annotations

import html
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.agreements.service import reload_and_log
from app.config import REPO_ROOT, Settings
from app.state import AppState

PAGE = "/console/agreements/demo-town"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shipped agreements, from a copy the test may change."""
    folder = tmp_path / "policies-copy"
    shutil.copytree(REPO_ROOT / "policies", folder, ignore=shutil.ignore_patterns("examples"))
    return settings.model_copy(update={"policies_dir": folder, "policy_reload_seconds": 0})


@pytest.fixture
def proposed(state: AppState, console_people: dict[str, str]) -> str:
    """Version 2 of demo-town loaded after the demo signed version 1; its content hash."""
    path = state.settings.policies_dir / "demo-town.yaml"
    path.write_text(path.read_text().replace("version: 1", "version: 2", 1))
    reload_and_log(state, "test")
    assert state.policies.current.get("demo-town").version == 1  # type: ignore[union-attr]
    return state.policies.loaded.get("demo-town").content_hash  # type: ignore[union-attr]


def test_a_coordinator_signs_the_proposed_version_for_the_agency(
    signed_in: Callable[..., Any], state: AppState, proposed: str
) -> None:
    person = signed_in("town-coordinator-person")
    page = person.get(PAGE)
    assert page.status_code == 200, page.text[:2000]
    text = html.unescape(page.text)
    assert "Versions and signatures" in text and "proposed: awaiting signatures" in text
    assert 'id="policy-diff-2"' in page.text and f'name="content_hash" value="{proposed}"' in page.text
    signed = person.post(f"{PAGE}/versions/2/sign", {"content_hash": proposed}, follow_redirects=False)
    assert signed.status_code == 303, signed.text[:2000]
    after = person.get(signed.headers["location"])
    assert "You signed version 2." in html.unescape(after.text)
    assert 'name="content_hash"' not in after.text  # the agency has signed: no form again
    from support.audit_log import entries

    logged = entries(state, event_type="agreement_signed", agreement_id="demo-town")[-1]
    assert logged.details["person"] == "town-coordinator-person" and logged.details["via"] == "console"  # type: ignore[index]
    assert state.policies.current.get("demo-town").version == 1  # type: ignore[union-attr]  # three parties to go


def test_a_stale_hash_is_refused_on_the_page(signed_in: Callable[..., Any], proposed: str) -> None:
    person = signed_in("town-coordinator-person")
    person.get(PAGE)
    refused = person.post(f"{PAGE}/versions/2/sign", {"content_hash": "0" * 64})
    assert refused.status_code == 409 and "content hash" in html.unescape(refused.text)
    assert f'name="content_hash" value="{proposed}"' in refused.text  # still theirs to sign


def test_without_a_token_nothing_is_signed(signed_in: Callable[..., Any], proposed: str) -> None:
    person = signed_in("town-coordinator-person")
    person.get(PAGE)
    forged = person.post(f"{PAGE}/versions/2/sign", {"content_hash": proposed}, csrf="forged")
    assert forged.status_code == 403
    assert 'name="content_hash"' in person.get(PAGE).text


def test_the_list_names_what_awaits_signatures(signed_in: Callable[..., Any], proposed: str) -> None:
    page = signed_in("town-coordinator-person").get("/console/agreements")
    text = html.unescape(page.text)
    awaiting = text[text.index('id="awaiting"'):]
    assert "Awaiting signatures" in awaiting and all(f'<bdi class="id">{party}</bdi>' in awaiting for party in (
        "demo-town", "town-council", "town-school", "town-social-services", "town-youth-club"))
