"""Published standards: versioned JSON Schemas and localised vocabularies."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_schemas_are_listed_with_the_evolution_rule(app_client: TestClient) -> None:
    body = app_client.get("/v1/schemas").json()
    assert {s["id"] for s in body["items"]} == {"referral/v1", "referral/v2", "note/v1"}
    assert "additive" in body["evolution"]


def test_referral_v1_json_schema_names_its_vocabularies(app_client: TestClient) -> None:
    response = app_client.get("/v1/schemas/referral/v1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    schema = response.json()
    assert schema["$id"].endswith("/schemas/referral/v1")
    standard = schema["anyOf"][0]  # standard codes; the other variant: an agency's own code_system
    assert set(standard["required"]) >= {"subject", "concerns", "risk_level", "consent"}
    assert standard["properties"]["concerns"]["x-vocabulary"] == "concern_category"
    assert "schema" in standard["properties"]
    assert standard["additionalProperties"] is False
    assert "code_system" not in standard["properties"]
    assert schema["anyOf"][1]["required"][-1] == "code_system"


def test_unknown_schema_is_404(app_client: TestClient) -> None:
    response = app_client.get("/v1/schemas/referral/v7")
    assert response.status_code == 404
    assert "referral/v1" in response.json()["detail"]


def test_vocabularies_in_the_language_asked_for(app_client: TestClient) -> None:
    english = app_client.get("/v1/vocabularies/concern_category").json()
    arabic = app_client.get("/v1/vocabularies/concern_category", headers={"Accept-Language": "ar-LB,ar;q=0.9"})
    assert arabic.headers["content-language"] == "ar"
    assert "Accept-Language" in arabic.headers["vary"]
    labels_en = {c["code"]: c["label"] for c in english["codes"]}
    labels_ar = {c["code"]: c["label"] for c in arabic.json()["codes"]}
    assert labels_en.keys() == labels_ar.keys() >= {"hate_incident", "hate_speech", "recruitment_contact"}
    assert labels_en["hate_incident"] != labels_ar["hate_incident"]
    assert any("\u0600" <= ch <= "\u06ff" for ch in labels_ar["hate_incident"])


def test_vocabulary_index_lists_every_required_code_list(app_client: TestClient) -> None:
    names = {v["name"] for v in app_client.get("/v1/vocabularies").json()["items"]}
    assert names >= {"concern_category", "vulnerability_factor", "protective_factor", "requested_service",
                     "intervention_type", "risk_level", "consent_status", "legal_basis", "closure_outcome"}


def test_unknown_vocabulary_is_404(app_client: TestClient) -> None:
    response = app_client.get("/v1/vocabularies/moods")
    assert response.status_code == 404
    assert "concern_category" in response.json()["known"]
