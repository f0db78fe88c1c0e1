"""The outside testers' reproductions (issue 12): bad input is a 4xx problem on both databases, never a 5xx.

Before: `?subject_id=` and `X-Purpose: a<TAB>b` answered 503 "the disclosure log cannot be
written"; NUL in a path, a body field or a form field answered 500 on PostgreSQL (SQLite stored
it).  Each case here runs on SQLite and PostgreSQL (the `database_url` fixture) and checks the
refusal is an RFC 9457 problem naming where the character is, and that nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body
from support.row_counts import counts

from app.state import AppState

Auth = Callable[..., dict[str, str]]
ADMIN = "municipality-operator"
AUDITOR = "independent-auditor"
MARKER = "zq-marker"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "request_id"}


def refused(response: Response, status: int, location: str, path: str | None = None) -> dict[str, Any]:
    """A problem at `location` (and `path`), which neither echoes the value nor is a 5xx."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert set(problem) >= PROBLEM_FIELDS
    assert problem["status"] == status
    assert problem["errors"], problem
    assert any(e["location"] == location and (path is None or e["path"] == path) for e in problem["errors"]), problem
    assert MARKER not in response.text
    return problem


@pytest.fixture
def referral(post_referral: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return post_referral()


class TestTheLogIsNeverAskedToHoldBadInput:
    """503 "the disclosure log cannot be written" was the log refusing what the caller sent."""

    @pytest.mark.parametrize("query", ["subject_id=", "subject_id=has%20space", "actor_agency=", "purpose="])
    def test_an_empty_or_malformed_audit_filter_is_422(
        self, app_client: TestClient, auth: Auth, query: str,
    ) -> None:
        headers = auth(AUDITOR)
        with _unchanged(app_client):
            response = app_client.get(f"/v1/audit/entries?{query}", headers=headers)
        refused(response, 422, "query", "$." + query.split("=")[0])

    def test_a_well_formed_subject_filter_still_answers(self, app_client: TestClient, auth: Auth) -> None:
        response = app_client.get("/v1/audit/entries?subject_id=sub_unknown0001", headers=auth(AUDITOR))
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []

    @pytest.mark.parametrize("purpose", ["a\tb", "safeguarding_assessment\t", "a\x00b", "a\x7fb", "a\x1bb"])
    @pytest.mark.parametrize("route", ["referral", "list", "notes", "holds", "summaries", "statistics"])
    def test_a_purpose_with_a_control_character_is_400_on_any_case_read(
        self, app_client: TestClient, auth: Auth, referral: dict[str, Any], purpose: str, route: str,
    ) -> None:
        client, url = {
            "referral": (REFERRER, f"/v1/referrals/{referral['id']}"),
            "list": (REFERRER, "/v1/referrals"),
            "notes": (REFERRER, f"/v1/referrals/{referral['id']}/notes"),
            "holds": (COORDINATOR, f"/v1/referrals/{referral['id']}/legal-hold"),
            "summaries": ("youth-ngo-reader", "/v1/summaries"),
            "statistics": ("national-statistics", "/v1/statistics?dimensions=risk_level"),
        }[route]
        headers = auth(client, **{"X-Purpose": purpose})
        with _unchanged(app_client):
            response = app_client.get(url, headers=headers)
        refused(response, 400, "header", "$.x-purpose")

    def test_a_purpose_that_is_not_printable_ascii_is_422_before_any_entry(
        self, app_client: TestClient, auth: Auth, referral: dict[str, Any],
    ) -> None:
        headers = {**auth(REFERRER), "X-Purpose": "caf\u00e9".encode()}
        with _unchanged(app_client):
            response = app_client.get(f"/v1/referrals/{referral['id']}", headers=headers)  # type: ignore[arg-type]
        refused(response, 422, "header", "$.X-Purpose")

    def test_an_unknown_but_printable_purpose_is_still_a_logged_refusal(
        self, app_client: TestClient, auth: Auth, referral: dict[str, Any], state: AppState,
    ) -> None:
        before = counts(state)["audit_entries"]
        response = app_client.get(f"/v1/referrals/{referral['id']}", headers=auth(REFERRER, **{"X-Purpose": "a b"}))
        assert response.status_code == 400
        assert response.json()["type"].endswith("/purpose-unknown")
        assert counts(state)["audit_entries"] == before + 1  # the denial

    def test_a_purpose_within_the_limits_is_read_as_before(
        self, app_client: TestClient, auth: Auth, referral: dict[str, Any],
    ) -> None:
        response = app_client.get(f"/v1/referrals/{referral['id']}", headers=auth(REFERRER, **PURPOSE))
        assert response.status_code == 200, response.text


class TestNulNeverReachesTheDatabase:
    """PostgreSQL refuses NUL in text: each of these was a 500 there, and stored on SQLite."""

    @pytest.mark.parametrize("char", ["%00", "%01", "%1F", "%7F", "%09"])
    def test_in_a_path_parameter(self, app_client: TestClient, auth: Auth, char: str) -> None:
        headers = auth(REFERRER, **PURPOSE)
        with _unchanged(app_client):
            response = app_client.get(f"/v1/referrals/{char}", headers=headers)
        refused(response, 422, "path", "$.referral_id")

    def test_in_a_path_parameter_of_a_write(self, app_client: TestClient, auth: Auth, referral: dict[str, Any]) -> None:
        headers = auth(COORDINATOR)
        with _unchanged(app_client):
            response = app_client.post(f"/v1/referrals/{referral['id']}%00/transitions", json={"to": "triaged"},
                                       headers=headers)
        refused(response, 422, "path", "$.referral_id")

    def test_in_the_subjects_district(self, app_client: TestClient, auth: Auth) -> None:
        body = referral_body()
        body["subject"]["district"] = MARKER + "\x00"
        headers = auth(REFERRER)
        with _unchanged(app_client):
            response = app_client.post("/v1/referrals", json=body, headers=headers)
        refused(response, 422, "body", "$.subject.district")

    def test_in_a_notes_author(self, app_client: TestClient, auth: Auth, referral: dict[str, Any]) -> None:
        body = {"classification": "shared", "text": "Met the family.", "author_person": MARKER + "\x00"}
        headers = auth(REFERRER)
        with _unchanged(app_client):
            response = app_client.post(f"/v1/referrals/{referral['id']}/notes", json=body, headers=headers)
        refused(response, 422, "body", "$.author_person")

    @pytest.mark.parametrize("field", ["reason", "agency_id"])
    def test_in_an_agency_hold(self, app_client: TestClient, auth: Auth, field: str) -> None:
        body = {"agency_id": "school-north", "reason": "Proceedings 2026/17", field: MARKER + "\x00"}
        headers = auth(ADMIN)
        with _unchanged(app_client):
            response = app_client.post("/v1/admin/legal-holds", json=body, headers=headers)
        refused(response, 422, "body", f"$.{field}")

    def test_in_a_case_hold_reason(self, app_client: TestClient, auth: Auth, referral: dict[str, Any]) -> None:
        headers = auth(COORDINATOR)
        with _unchanged(app_client):
            response = app_client.post(f"/v1/referrals/{referral['id']}/legal-hold",
                                       json={"reason": MARKER + "\x00"}, headers=headers)
        refused(response, 422, "body", "$.reason")

    def test_in_a_mappings_agency(self, app_client: TestClient, auth: Auth) -> None:
        body = {"mapping": "edge-test", "agency": MARKER + "\x00", "codes": {}}
        headers = auth(ADMIN)
        with _unchanged(app_client):
            response = app_client.post("/v1/admin/mappings", json=body, headers=headers)
        refused(response, 422, "body", "$.agency")

    @pytest.mark.parametrize("field", ["client_id", "client_secret", "grant_type"])
    def test_in_a_token_requests_form_field(
        self, app_client: TestClient, demo: dict[str, dict[str, Any]], field: str,
    ) -> None:
        form = {"grant_type": "client_credentials", "client_id": REFERRER,
                "client_secret": demo[REFERRER]["client_secret"]}
        form[field] = MARKER + "\x00"
        with _unchanged(app_client):
            response = app_client.post("/v1/token", data=form)
        refused(response, 422, "body", f"$.{field}")

    def test_in_a_multipart_token_request(self, app_client: TestClient, demo: dict[str, dict[str, Any]]) -> None:
        form = {"grant_type": "client_credentials", "client_id": MARKER + "\x00",
                "client_secret": demo[REFERRER]["client_secret"]}
        with _unchanged(app_client):
            response = app_client.post("/v1/token", files={k: (None, v) for k, v in form.items()})
        refused(response, 422, "body", "$.client_id")

    @pytest.mark.parametrize("header", ["Idempotency-Key", "If-Match", "X-Justification", "Authorization"])
    def test_in_a_header_we_read(self, app_client: TestClient, auth: Auth, referral: dict[str, Any],
                                 header: str) -> None:
        headers = auth(COORDINATOR, **PURPOSE)
        headers[header] = headers.get(header, MARKER) + "\x00"
        with _unchanged(app_client):
            response = app_client.post(f"/v1/referrals/{referral['id']}/transitions", json={"to": "triaged"},
                                       headers=headers)
        refused(response, 400, "header", f"$.{header.lower()}")

    @pytest.mark.parametrize("query", ["view=a%00", "view=%0A", "a%00=1", "view=a%7F", "view=a%09b"])
    def test_in_a_query_parameter(self, app_client: TestClient, auth: Auth, referral: dict[str, Any],
                                  query: str) -> None:
        headers = auth(REFERRER, **PURPOSE)
        with _unchanged(app_client):
            response = app_client.get(f"/v1/referrals/{referral['id']}?{query}", headers=headers)
        refused(response, 422, "query", "$" if query.startswith("a%00") else "$.view")


class TestJsonEscapesAreReadExactly:
    """Only a real `\\u00XX` escape is a control character; free text keeps its tabs and newlines."""

    def test_an_escaped_backslash_before_u0000_is_text(self, app_client: TestClient, auth: Auth) -> None:
        raw = referral_body()
        raw["narrative"] = "Path C:\\u0000 and \\\\u001f are text, not controls."
        response = app_client.post("/v1/referrals", json=raw, headers=auth(REFERRER))
        assert response.status_code == 201, response.text
        assert response.json()["narrative"] == raw["narrative"]

    def test_tab_newline_and_carriage_return_stay_in_free_text(self, app_client: TestClient, auth: Auth) -> None:
        raw = referral_body(narrative="Line one\r\n\tindented line two")
        response = app_client.post("/v1/referrals", json=raw, headers=auth(REFERRER))
        assert response.status_code == 201, response.text
        assert response.json()["narrative"] == raw["narrative"]

    @pytest.mark.parametrize(
        "escape", ["\\u0000", "\\u001F", "\\u001b", "\\\\\\u0000", "\\u000B", "\\b", "\\f", "\\\\\\f"],
    )
    def test_a_control_escape_after_any_even_run_of_backslashes_is_refused(
        self, app_client: TestClient, auth: Auth, escape: str,
    ) -> None:
        body = _json(referral_body(narrative="NARRATIVE")).replace("NARRATIVE", MARKER + escape)
        headers = {**auth(REFERRER), "Content-Type": "application/json"}
        with _unchanged(app_client):
            response = app_client.post("/v1/referrals", content=body.encode(), headers=headers)
        refused(response, 422, "body", "$.narrative")

    def test_a_control_character_in_a_key_is_refused_without_naming_it(
        self, app_client: TestClient, auth: Auth,
    ) -> None:
        body = _json(referral_body()).replace('"narrative"', '"narr\\u0000ative"', 1)
        headers = {**auth(REFERRER), "Content-Type": "application/json"}
        with _unchanged(app_client):
            response = app_client.post("/v1/referrals", content=body.encode(), headers=headers)
        problem = refused(response, 422, "body", "$")
        assert "narr" not in str(problem["errors"])

    def test_a_utf16_body_is_checked_too(self, app_client: TestClient, auth: Auth) -> None:
        body = _json(referral_body(narrative="NARRATIVE")).replace("NARRATIVE", MARKER + "\\u0000")
        headers = {**auth(REFERRER), "Content-Type": "application/json"}
        with _unchanged(app_client):
            response = app_client.post("/v1/referrals", content=body.encode("utf-16"), headers=headers)
        refused(response, 422, "body", "$.narrative")

    def test_a_chunked_body_without_a_length_is_checked_too(self, app_client: TestClient, auth: Auth) -> None:
        body = _json(referral_body(narrative="NARRATIVE")).replace("NARRATIVE", MARKER + "\\u0000").encode()
        headers = {**auth(REFERRER), "Content-Type": "application/json"}
        with _unchanged(app_client):
            response = app_client.post("/v1/referrals", content=iter([body[:50], body[50:]]), headers=headers)
        refused(response, 422, "body", "$.narrative")

    def test_a_duplicate_key_cannot_hide_an_earlier_value(self, app_client: TestClient, auth: Auth) -> None:
        body = _json(referral_body()).replace('"narrative"', '"narrative": "x\\u0000", "narrative"', 1)
        headers = {**auth(REFERRER), "Content-Type": "application/json"}
        with _unchanged(app_client):
            response = app_client.post("/v1/referrals", content=body.encode(), headers=headers)
        refused(response, 422, "body", "$.narrative")


class TestTheLogFailingIsStillFailClosed:
    def test_an_entry_the_log_refuses_is_a_500_not_the_log_is_down(self, state: AppState) -> None:
        """A defect (input that slipped past the edge) is told apart from an outage, and still fails closed."""
        from app.audit.events import AuditEvent
        from app.audit.service import AuditUnavailable, EventRejected
        from app.db import transaction

        bad = AuditEvent(event_type="access", actor_agency=None, recipient_agency=None, purpose="a\tb",
                         decision=None, agreement_id=None, rule_id=None, subject_id=None)
        before = counts(state)["audit_entries"]
        with pytest.raises(EventRejected) as caught, transaction(state.sessions) as session:
            state.audit.append(session, bad)
        assert isinstance(caught.value, AuditUnavailable)  # every fail-closed path still catches it
        assert caught.value.status == 500
        assert "Retry-After" not in caught.value.headers
        assert counts(state)["audit_entries"] == before


def _json(document: Any) -> str:
    import json

    return json.dumps(document)


class _unchanged:  # noqa: N801 - reads like a phrase
    """`with _unchanged(app_client):` — no row anywhere changes inside the block."""

    def __init__(self, app_client: TestClient) -> None:
        self.state: AppState = app_client.app.state.cb  # type: ignore[attr-defined]

    def __enter__(self) -> None:
        self.before = counts(self.state)

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert counts(self.state) == self.before
