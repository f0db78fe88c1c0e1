"""The OpenAPI document is complete and true: every operation documented, every error a Problem.

The live behaviour behind these statements (statuses, headers, bodies) is checked by schemathesis in
tests/contract; here the document itself is held to the standard, plus the docs pages it feeds.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body

from app.main import create_app

SPEC = create_app().openapi()
SCHEMAS = SPEC["components"]["schemas"]
OPERATIONS = [(path, method, op) for path, item in SPEC["paths"].items() for method, op in item.items()]
IDS = [op["operationId"] for _, _, op in OPERATIONS]
ROLES = {"referrer", "caseworker", "coordinator", "partner_reader", "statistics_reader", "auditor", "admin",
         "signatory"}
PURPOSE_OPERATIONS = {"get_referral", "list_referrals", "list_events", "list_notes", "sync_summaries", "get_statistics",
                      "get_subject_disclosures", "list_referral_legal_holds"}
CDN = re.compile(r"cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.|fonts\.googleapis\.com|fonts\.gstatic\.com")
URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    wrapped = {**schema, "components": SPEC["components"]}
    jsonschema.Draft202012Validator(wrapped, format_checker=jsonschema.FormatChecker()).validate(instance)


def _auto_summary(op: dict[str, Any]) -> str:
    return op["operationId"].replace("_", " ").title()


def _media(op: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for code, response in op["responses"].items():
        for media_type, media in response.get("content", {}).items():
            yield code, media_type, media


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=IDS)
def test_every_operation_is_written_up(path: str, method: str, op: dict[str, Any]) -> None:
    assert op.get("summary") and op["summary"] != _auto_summary(op), "a written summary"
    assert len(op.get("description", "")) > 40, "a description"
    assert "**Roles:**" in op["description"], "the roles, in words"
    roles = op["x-required-roles"]
    assert set(roles) <= ROLES
    assert bool(roles) == ("security" in op), "roles exactly when a token is needed"
    assert op["tags"] and op["tags"][0] in {t["name"] for t in SPEC["tags"]}


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=IDS)
def test_every_operation_has_examples_that_fit_its_schemas(path: str, method: str, op: dict[str, Any]) -> None:
    if "requestBody" in op:
        for media in op["requestBody"]["content"].values():
            assert "example" in media, "a request example"
            _validate(media["example"], media["schema"])
    success = min(op["responses"], key=int)
    examples = [m for code, _, m in _media(op) if code == success]
    if success != "304":
        assert examples and all("example" in m for m in examples), "a response example"
    for _, _, media in _media(op):
        if "example" in media and "schema" in media:
            _validate(media["example"], media["schema"])


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=IDS)
def test_every_error_is_a_problem_and_every_response_has_a_request_id(
    path: str, method: str, op: dict[str, Any]
) -> None:
    codes = {int(c) for c in op["responses"]}
    for code, response in op["responses"].items():
        assert "X-Request-ID" in response["headers"]
        if int(code) >= 400:
            assert list(response["content"]) == ["application/problem+json"], code
            assert response["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert {400, 422} <= codes
    if "security" in op:
        assert {401, 503} <= codes
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
        if set(op["x-required-roles"]) != ROLES:
            assert 403 in codes
    if "{" in path:
        assert 404 in codes
    if "requestBody" in op:
        assert 413 in codes


def test_no_fastapi_validation_error_anywhere() -> None:
    text = json.dumps(SPEC)
    assert "HTTPValidationError" not in text
    assert "#/components/schemas/ValidationError" not in text


def test_problem_schema_has_the_six_members_and_the_extensions_sent() -> None:
    problem = SCHEMAS["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance", "request_id"}
    assert {"errors", "purposes", "rule_ids", "allowed", "hold_ids", "checks"} <= set(problem["properties"])


def test_security_is_oauth2_client_credentials_against_the_token_endpoint() -> None:
    scheme = SPEC["components"]["securitySchemes"]["OAuth2"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"] == {"clientCredentials": {"tokenUrl": "/v1/token", "scopes": {}}}
    assert "/v1/token" in SPEC["paths"]


@pytest.mark.parametrize("operation_id", sorted(PURPOSE_OPERATIONS))
def test_x_purpose_is_required_where_the_service_requires_it(operation_id: str) -> None:
    op = next(op for _, _, op in OPERATIONS if op["operationId"] == operation_id)
    purpose = next(p for p in op["parameters"] if p["name"] == "X-Purpose")
    assert purpose["required"] is True


def test_tags_are_described_and_used() -> None:
    used = {tag for _, _, op in OPERATIONS for tag in op["tags"]}
    described = {t["name"]: t["description"] for t in SPEC["tags"]}
    assert used <= set(described)
    assert all(described.values())


def test_create_links_to_read() -> None:
    links = SPEC["paths"]["/v1/referrals"]["post"]["responses"]["201"]["links"]
    assert links["get_referral"]["parameters"] == {"referral_id": "$response.body#/id"}
    responses = [r for _, _, op in OPERATIONS for r in op["responses"].values()]
    for link in (link for r in responses for link in r.get("links", {}).values()):
        assert link["operationId"] in IDS


def test_an_error_really_is_the_documented_problem(app_client: TestClient) -> None:
    response = app_client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == response.json()["request_id"]
    _validate(response.json(), {"$ref": "#/components/schemas/Problem"})
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_405_names_every_method_of_the_path(app_client: TestClient) -> None:
    response = app_client.request("DELETE", "/v1/referrals")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_outside(app_client: TestClient, page: str) -> None:
    response = app_client.get(page)
    assert response.status_code == 200
    urls = [a or b for a, b in URL.findall(response.text)]
    assert urls, "the page names its assets"
    assert all(u.startswith("/") for u in urls), urls
    assert "http://" not in response.text and "https://" not in response.text
    for url in urls:
        asset = app_client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
        # The bundles name many specs by URL (JSON Schema dialects, RFCs); what matters is that they load
        # nothing: no CDN, no web font, no stylesheet import from elsewhere.
        assert not CDN.search(asset.text), url
        assert not re.search(r"url\(\s*['\"]?https?:", asset.text), url


def test_swagger_ui_has_no_online_validator_and_keeps_authorization(app_client: TestClient) -> None:
    page = app_client.get("/docs").text
    assert '"validatorUrl": null' in page
    assert '"persistAuthorization": true' in page
    assert app_client.get("/docs/oauth2-redirect").status_code == 200


def test_authorize_in_swagger_ui_gets_a_token(
    app_client: TestClient, demo: dict[str, dict[str, Any]], auth: Callable[..., dict[str, str]]
) -> None:
    """What Swagger UI's client-credentials flow sends: Basic credentials and a form grant (or both in the form)."""
    client = demo["school-north-referrer"]
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    via_header = app_client.post("/v1/token", data={"grant_type": "client_credentials", "scope": ""},
                                 headers={"Authorization": f"Basic {basic}"})
    form = {"grant_type": "client_credentials", **{k: client[k] for k in ("client_id", "client_secret")}}
    via_body = app_client.post("/v1/token", data=form)
    for response in (via_header, via_body):
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        me = app_client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["client_id"] == "school-north-referrer"
    wrong_secret = base64.b64encode(b"school-north-referrer:no").decode()
    wrong = app_client.post("/v1/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": f"Basic {wrong_secret}"})
    assert wrong.status_code in (400, 401)
    assert wrong.headers["content-type"] == "application/problem+json"


def test_documented_headers_are_the_ones_sent(
    app_client: TestClient, auth: Callable[..., dict[str, str]], post_referral: Callable[..., dict[str, Any]]
) -> None:
    """The headers the document names on a creation and a read are really there."""
    key = {"Idempotency-Key": "openapi-headers-1"}
    created = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER, **key))
    replayed = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER, **key))
    read = app_client.get(f"/v1/referrals/{created.json()['id']}", headers=auth(COORDINATOR, **PURPOSE))
    for response, operation_id in ((created, "create_referral"), (replayed, "create_referral"), (read, "get_referral")):
        op = next(op for _, _, op in OPERATIONS if op["operationId"] == operation_id)
        documented = {h.lower() for h in op["responses"][str(response.status_code)]["headers"]}
        sent = {h.lower() for h in response.headers}
        assert {"x-request-id", "etag", "x-granted-view"} <= sent & documented, (operation_id, sent)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert created.headers["Location"] == f"/v1/referrals/{created.json()['id']}"


@pytest.mark.parametrize(("client_id", "url"), [
    ("independent-auditor", "/v1/audit/entries?until=0.5"),
    ("independent-auditor", "/v1/audit/entries?since=2026-01-15"),
    (COORDINATOR, "/v1/referrals?updated_since=1700000000"),
    ("national-statistics", "/v1/statistics?dimensions=risk_level&since=0"),
])
def test_query_times_are_taken_only_as_the_document_writes_them(
    app_client: TestClient, auth: Callable[..., dict[str, str]], client_id: str, url: str
) -> None:
    """The document says date-time (or date); a Unix time or a bare date is a 422, not silently parsed."""
    response = app_client.get(url, headers=auth(client_id, **PURPOSE))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["location"] == "query"


def test_query_times_in_the_documented_form_are_accepted(
    app_client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    response = app_client.get("/v1/audit/entries?since=2026-01-15T09:30:00Z", headers=auth("independent-auditor"))
    assert response.status_code == 200, response.text
