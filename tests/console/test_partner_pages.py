"""The partner reader's pages: the summaries the agency may hold, what it must delete, and the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from support.referrals import NAME, NARRATIVE, REFERRER, referral_body

from app.audit.models import AuditEntry
from app.console.pages.partner import neutralise
from app.state import AppState

PURPOSE = "service_provision"
FORMULA = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
def shared(post_referral: Callable[..., Any], move: Callable[..., Any]) -> dict[str, str]:
    """Two referrals a partner may see (consent given, accepted), one it may not (still submitted)."""
    ids = {"shared": post_referral()["id"]}
    move(ids["shared"], "triaged", "accepted")
    ids["formula"] = post_referral(subject=referral_body()["subject"] | {"district": FORMULA})["id"]
    move(ids["formula"], "triaged", "accepted")
    ids["submitted"] = post_referral()["id"]
    return ids


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _entries(state: AppState) -> int:
    with state.read_sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_the_partner_sees_the_granted_summaries_and_nothing_else(
    signed_in: Callable[..., Any], shared: dict[str, str], state: AppState
) -> None:
    reader = signed_in("nour-reader", purpose=PURPOSE)
    before = _entries(state)
    page = reader.get("/console/summaries")
    assert page.status_code == 200, page.text[:2000]
    assert shared["shared"] in page.text and shared["formula"] in page.text
    assert shared["submitted"] not in page.text
    assert "al-mina" in page.text  # the summary's district
    for leaked in (NAME, "Yasmin", NARRATIVE, "narrative-marker", "LB-778899", "555-0101"):
        assert leaked not in page.text, leaked
    assert "To delete" in page.text and "Nothing to delete." in page.text
    assert _entries(state) > before  # every summary handed out is logged


def test_the_csv_has_the_same_rows_with_formulas_neutralised(
    signed_in: Callable[..., Any], shared: dict[str, str], state: AppState
) -> None:
    reader = signed_in("nour-reader", purpose=PURPOSE)
    page = reader.get("/console/summaries")
    before = _entries(state)
    export = reader.get("/console/summaries.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert export.headers["content-disposition"].startswith("attachment")
    rows = _rows(export.text)
    kept = {r["id"]: r for r in rows if r["action"] == "keep"}
    assert set(kept) == {shared["shared"], shared["formula"]}
    assert all(rid in page.text for rid in kept)
    assert kept[shared["formula"]]["subject.district"] == "'" + FORMULA
    assert kept[shared["shared"]]["subject.district"] == "al-mina"
    assert kept[shared["shared"]]["view"] == "referral.summary"
    assert not any(cell.startswith("=") for row in rows for cell in row.values())
    assert NARRATIVE not in export.text and "Yasmin" not in export.text
    assert _entries(state) > before  # the export went through the API, and the log recorded it


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(text: str) -> None:
    assert neutralise(text) == "'" + text
    assert neutralise("al-mina") == "al-mina"


def test_a_withdrawal_appears_under_to_delete(
    signed_in: Callable[..., Any], shared: dict[str, str], app_client: TestClient, auth: Callable[..., Any]
) -> None:
    reader = signed_in("nour-reader", purpose=PURPOSE)
    assert shared["shared"] in reader.get("/console/summaries").text  # the agency now holds it
    withdrawn = app_client.post(f"/v1/referrals/{shared['shared']}/consent", headers=auth(REFERRER),
                                json={"status": "withdrawn", "legal_basis": "public_task", "reason": "family asked"})
    assert withdrawn.status_code == 200, withdrawn.text
    page = reader.get("/console/summaries")
    assert page.status_code == 200
    section = page.text[page.text.index('id="withdrawn-list"'):]
    assert shared["shared"] in section[:section.index("</ul>")]
    table = page.text[page.text.index('id="summaries"'):]
    assert shared["shared"] not in table and shared["formula"] in table
    rows = _rows(reader.get("/console/summaries.csv").text)
    assert {r["id"] for r in rows if r["action"] == "delete"} == {shared["shared"]}


def test_the_wrong_purpose_is_the_apis_refusal_not_a_crash(
    signed_in: Callable[..., Any], shared: dict[str, str]
) -> None:
    reader = signed_in("nour-reader", purpose="safeguarding_assessment")
    page = reader.get("/console/summaries")
    assert 400 <= page.status_code < 500
    assert shared["shared"] not in page.text


def test_no_purpose_goes_to_the_purpose_page(signed_in: Callable[..., Any], console_people: Any) -> None:
    reader = signed_in("nour-reader")
    page = reader.get("/console/summaries", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/console/purpose")


def test_other_roles_are_refused(signed_in: Callable[..., Any], shared: dict[str, str]) -> None:
    auditor = signed_in("maya-auditor", purpose="subject_access")
    for path in ("/console/summaries", "/console/summaries.csv"):
        page = auditor.get(path)
        assert page.status_code == 403
        assert shared["shared"] not in page.text
