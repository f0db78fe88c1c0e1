"""What outside testers found the API coerced or let through: now a 422 problem, and the schema forbids it too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from support.referrals import REFERRER, referral_body
from support.schemas import schema_errors

from app.state import AppState

Auth = Callable[..., dict[str, str]]


def stored(state: AppState) -> tuple[int, int]:
    with state.engine.connect() as conn:
        return (conn.execute(text("SELECT COUNT(*) FROM referrals")).scalar_one(),
                conn.execute(text("SELECT COUNT(*) FROM subjects")).scalar_one())


def subject(**changes: Any) -> dict[str, Any]:
    return {**referral_body()["subject"], **changes}


REPRODUCTIONS = [
    pytest.param({"do_not_contact": "yes"}, "$.do_not_contact", id="boolean-as-yes"),
    pytest.param({"do_not_contact": 1}, "$.do_not_contact", id="boolean-as-1"),
    pytest.param({"subject": subject(date_of_birth="2009-03-14T00:00:00")}, "$.subject.date_of_birth",
                 id="datetime-as-birth-date"),
    pytest.param({"subject": subject(date_of_birth="2009-02-29")}, "$.subject.date_of_birth", id="no-such-day"),
    pytest.param({"subject": subject(date_of_birth=20090314)}, "$.subject.date_of_birth", id="number-as-date"),
    pytest.param({"consent": {"status": "given", "recorded_at": "2026-11-30T10:00:00"}}, "$.consent.recorded_at",
                 id="timestamp-without-zone"),
    pytest.param({"consent": {"status": "given", "recorded_at": 1764496800}}, "$.consent.recorded_at",
                 id="timestamp-as-number"),
    pytest.param({"concerns": ["hate_speech", "hate_speech"]}, "$.concerns", id="duplicate-concerns"),
    pytest.param({"requested_services": ["mentoring", "mentoring"]}, "$.requested_services",
                 id="duplicate-services"),
    pytest.param({"subject": subject(language="zzzz-not-a-tag")}, "$.subject.language", id="not-a-language-tag"),
    pytest.param({"subject": subject(email="not-an-email")}, "$.subject.email", id="not-an-email"),
    pytest.param({"narrative": "\t"}, "$.narrative", id="narrative-of-a-tab"),
    pytest.param({"subject": subject(identifiers=[{"system": "national_id", "value": "   "}])},
                 "$.subject.identifiers[0].value", id="blank-identifier"),
    pytest.param({"subject": subject(given_name="\u3000")}, "$.subject.given_name", id="blank-name"),
    pytest.param({"consent": {"status": "refused"}}, "$.consent.legal_basis", id="no-legal-basis-without-consent"),
    pytest.param({"concerns": ["not_a_concern"]}, "$.concerns[0]", id="unknown-code"),
]


@pytest.mark.parametrize(("changes", "path"), REPRODUCTIONS)
def test_what_the_schema_forbids_the_api_refuses(
    app_client: TestClient, auth: Auth, state: AppState, changes: dict[str, Any], path: str
) -> None:
    body = referral_body(**changes)
    assert schema_errors(app_client, body, auth(REFERRER)["Authorization"]), "the published schema must refuse it"
    before = stored(state)
    response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= problem.keys()
    assert path in [e["path"] for e in problem["errors"]], problem["errors"]
    assert stored(state) == before


def test_a_birth_date_in_the_future_is_server_side(app_client: TestClient, auth: Auth, state: AppState) -> None:
    """A date after today within this year passes the schema's year bound; the server refuses it, as marked."""
    schema = app_client.get("/v1/schemas/referral/v1").json()
    birth = schema["anyOf"][0]["properties"]["subject"]["properties"]["date_of_birth"]
    assert birth["x-server-side"] == ["date_of_birth_not_in_future"]
    before = stored(state)
    response = app_client.post("/v1/referrals", json=referral_body(subject=subject(date_of_birth="2999-01-01")),
                               headers=auth(REFERRER))
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "$.subject.date_of_birth"
    assert stored(state) == before


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"subject": subject(email="  yasmin@example.org  ".strip(), language="ar-LB")}, id="email"),
        pytest.param({"consent": {"status": "refused", "legal_basis": "vital_interests",
                                  "recorded_at": "2026-11-30T10:00:00.123456789+02:00"}}, id="zone-and-fraction"),
        pytest.param({"do_not_contact": True, "narrative": "  two words  "}, id="padded-narrative"),
    ],
)
def test_what_the_schema_allows_the_api_takes(
    app_client: TestClient, auth: Auth, changes: dict[str, Any]
) -> None:
    body = referral_body(**changes)
    assert schema_errors(app_client, body, auth(REFERRER)["Authorization"]) == []
    response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
    assert response.status_code == 201, response.text


def test_padding_is_trimmed_but_counted(app_client: TestClient, auth: Auth) -> None:
    """Lengths are checked on the text as sent (as the schema does); it is stored trimmed."""
    padded = referral_body(subject=subject(given_name="  Yasmin  "))
    created = app_client.post("/v1/referrals", json=padded, headers=auth(REFERRER))
    assert created.status_code == 201
    assert created.json()["subject"]["given_name"] == "Yasmin"
    too_long = referral_body(subject=subject(given_name="Y" + " " * 200))
    assert schema_errors(app_client, too_long, auth(REFERRER)["Authorization"])
    assert app_client.post("/v1/referrals", json=too_long, headers=auth(REFERRER)).status_code == 422
