"""The auditor's pages: the disclosure log with its verification badge, subject access, emergency access, Art. 30."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from support.referrals import NARRATIVE, REFERRER

from app.state import AppState

AUDITOR = "maya-auditor"
SUMMARY = {"X-Purpose": "service_provision"}
REASON = "Threat to life reported by police; need contact context now."
MARKERS = (NARRATIVE, "narrative-marker", "Yasmin", "Haddad-Testperson", "LB-778899", "555-0101", "religion-marker")


def _no_case_values(html: str) -> None:
    for marker in MARKERS:
        assert marker not in html, marker


@pytest.fixture
def partner_read(post_referral: Callable[..., Any], move: Callable[..., Any], app_client: TestClient,
                 auth: Callable[..., Any]) -> dict[str, Any]:
    """A referral whose summary the Bridges partner synced (a disclosure about its person)."""
    created = post_referral()
    move(created["id"], "triaged", "accepted")
    synced = app_client.get("/v1/summaries", headers=auth("youth-ngo-reader", **SUMMARY))
    assert synced.status_code == 200 and created["id"] in synced.text
    return created


class TestTheLog:
    def test_filtered_by_deny_shows_only_denials_and_the_badge_verifies(
        self, signed_in: Callable[..., Any], partner_read: dict[str, Any], app_client: TestClient,
        auth: Callable[..., Any],
    ) -> None:
        refused = app_client.get(f"/v1/referrals/{partner_read['id']}",
                                 headers=auth("school-south-referrer", **{"X-Purpose": "safeguarding_assessment"}))
        assert refused.status_code in (403, 404)
        auditor = signed_in(AUDITOR)
        everything = auditor.get("/console/audit/log")
        assert everything.status_code == 200, everything.text[:3000]
        assert 'id="log-verified"' in everything.text and "FAILED" not in everything.text
        kinds = set(re.findall(r'class="entry decision-([a-z]+)"', everything.text))
        assert "permit" in kinds or "none" in kinds
        denials = auditor.get("/console/audit/log?decision=deny")
        assert denials.status_code == 200
        found = re.findall(r'class="entry decision-([a-z]+)"', denials.text)
        assert found and set(found) == {"deny"}
        assert 'id="log-verified"' in denials.text
        _no_case_values(everything.text)
        _no_case_values(denials.text)

    def test_filters_by_event_type_and_agency(
        self, signed_in: Callable[..., Any], partner_read: dict[str, Any]
    ) -> None:
        auditor = signed_in(AUDITOR)
        page = auditor.get("/console/audit/log?event_type=disclosure&recipient_agency=youth-ngo-bridges")
        assert page.status_code == 200
        assert page.text.count('class="entry ') >= 1
        assert "partner-summary" in page.text
        events = re.findall(r'<li class="entry[^"]*">\s*<p><strong>([^<]+)</strong>', page.text)
        assert events and set(events) == {"Disclosure"}
        _no_case_values(page.text)

    def test_a_bad_filter_is_the_form_again(self, signed_in: Callable[..., Any], console_people: Any) -> None:
        auditor = signed_in(AUDITOR)
        bad_day = auditor.get("/console/audit/log?since=yesterday")
        assert bad_day.status_code == 422
        assert 'id="f-since-error"' in bad_day.text
        bad_subject = auditor.get("/console/audit/log?subject_id=not%20an%20id")
        assert bad_subject.status_code == 422
        assert 'class="message error"' in bad_subject.text

    def test_an_altered_entry_fails_the_badge(
        self, signed_in: Callable[..., Any], partner_read: dict[str, Any], state: AppState
    ) -> None:
        auditor = signed_in(AUDITOR)
        assert 'id="log-verified"' in auditor.get("/console/audit/log").text
        with state.engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only"))
            conn.execute(text("UPDATE audit_entries SET recipient_agency = 'someone-else' WHERE seq = 0"))
            if postgres:
                conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only"))
        page = auditor.get("/console/audit/log")
        assert page.status_code == 200
        assert 'id="log-failed"' in page.text and 'id="log-verified"' not in page.text

    def test_a_partner_reader_is_refused(self, signed_in: Callable[..., Any], console_people: Any) -> None:
        reader = signed_in("nour-reader", purpose="service_provision")
        for path in ("/console/audit/log", "/console/audit/emergency", "/console/audit/processing",
                     "/console/audit/subject-access"):
            page = reader.get(path)
            assert page.status_code == 403, path
            assert "log-verified" not in page.text


class TestSubjectAccess:
    def test_the_report_lists_who_received_the_data(
        self, signed_in: Callable[..., Any], partner_read: dict[str, Any]
    ) -> None:
        subject_id = partner_read["subject"]["id"]
        auditor = signed_in(AUDITOR, purpose="subject_access")
        form = auditor.get("/console/audit/subject-access")
        assert form.status_code == 200 and 'name="subject_id"' in form.text
        report = auditor.post("/console/audit/subject-access", {"subject_id": subject_id})
        assert report.status_code == 200, report.text[:3000]
        recipients = report.text[report.text.index('id="recipients"'):]
        assert "Bridges Youth NGO" in recipients
        disclosures = report.text[report.text.index('id="disclosures"'):]
        assert "partner-summary" in disclosures and "service_provision" in disclosures and "demo-city" in disclosures
        _no_case_values(report.text)

    def test_another_purpose_or_a_bad_id_is_the_form_again(
        self, signed_in: Callable[..., Any], partner_read: dict[str, Any]
    ) -> None:
        auditor = signed_in(AUDITOR, purpose="statistics")
        form = auditor.get("/console/audit/subject-access")
        assert "/console/purpose?next=" in form.text
        wrong = auditor.post("/console/audit/subject-access", {"subject_id": partner_read["subject"]["id"]})
        assert wrong.status_code == 422 and 'id="recipients"' not in wrong.text
        auditor.choose_purpose("subject_access")
        auditor.get("/console/audit/subject-access")
        bad = auditor.post("/console/audit/subject-access", {"subject_id": "<script>"})
        assert bad.status_code == 422 and "<script>" not in bad.text

    def test_no_purpose_goes_to_the_purpose_page(self, signed_in: Callable[..., Any], console_people: Any) -> None:
        auditor = signed_in(AUDITOR)
        page = auditor.get("/console/audit/subject-access", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/console/purpose")


@pytest.fixture
def grant(post_referral: Callable[..., Any], move: Callable[..., Any], app_client: TestClient,
          auth: Callable[..., Any]) -> dict[str, Any]:
    """The health centre broke the glass on a case assigned to it whose consent was withdrawn."""
    rid = post_referral()["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-health-centre"]}))
    withdrawn = app_client.post(f"/v1/referrals/{rid}/consent", headers=auth(REFERRER),
                                json={"status": "withdrawn", "legal_basis": "public_task"})
    assert withdrawn.status_code == 200, withdrawn.text
    asked = app_client.post(f"/v1/referrals/{rid}/emergency-access", json={"reason": REASON},
                            headers=auth("health-centre-caseworker"))
    assert asked.status_code == 201, asked.text
    granted: dict[str, Any] = asked.json()
    return granted


class TestEmergency:
    def test_a_grant_is_reviewed_from_the_page_and_its_flag_cleared(
        self, signed_in: Callable[..., Any], grant: dict[str, Any], app_client: TestClient, auth: Callable[..., Any]
    ) -> None:
        auditor = signed_in(AUDITOR)
        page = auditor.get("/console/audit/emergency")
        assert page.status_code == 200
        assert grant["id"] in page.text and REASON in page.text and "City Health Centre" in page.text
        _no_case_values(page.text)
        missing = auditor.post(f"/console/audit/emergency/{grant['id']}/review", {"note": "looked"})
        assert missing.status_code == 422 and f'id="error-{grant["id"]}"' in missing.text
        listed = app_client.get("/v1/audit/emergency-access", params={"reviewed": "false"},
                                headers=auth("independent-auditor"))
        assert grant["id"] in {g["id"] for g in listed.json()["items"]}  # nothing changed
        done = auditor.post(f"/console/audit/emergency/{grant['id']}/review",
                            {"finding": "unjustified", "note": "No threat on record."})
        assert done.status_code == 200 and "/console/audit/emergency?saved=unjustified" in str(done.url)
        assert 'class="message ok"' in done.text
        assert f'id="grant-{grant["id"]}"' not in done.text  # reviewed: no longer to review
        flags = done.text[done.text.index('id="flags"'):]
        assert "City Health Centre" in flags
        again = auditor.post(f"/console/audit/emergency/{grant['id']}/review", {"finding": "justified"})
        assert again.status_code == 409  # the API's refusal, on the page
        every = auditor.get("/console/audit/emergency?show=all")
        assert grant["id"] in every.text and "unjustified" in every.text
        flag_id = re.search(r'/console/audit/flags/([^/]+)/clear', every.text)
        assert flag_id is not None
        cleared = auditor.post(f"/console/audit/flags/{flag_id.group(1)}/clear", {})
        assert cleared.status_code == 200 and 'id="flags"' not in cleared.text

    def test_a_form_without_its_token_is_refused(self, signed_in: Callable[..., Any], grant: dict[str, Any]) -> None:
        auditor = signed_in(AUDITOR)
        auditor.get("/console/audit/emergency")
        forged = auditor.post(f"/console/audit/emergency/{grant['id']}/review", {"finding": "justified"}, csrf="x")
        assert forged.status_code == 403


def test_the_record_of_processing(signed_in: Callable[..., Any], partner_read: dict[str, Any]) -> None:
    auditor = signed_in(AUDITOR)
    page = auditor.get("/console/audit/processing")
    assert page.status_code == 200
    assert "Demo City Prevention Network" in page.text and "partner-summary" in page.text
    assert "Bridges Youth NGO" in page.text
    _no_case_values(page.text)
