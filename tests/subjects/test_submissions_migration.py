"""Migration 0009 gives every existing referral its own sealed subject part, with the keyring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from support.referrals import referral_body

from app import migrate
from app.state import AppState

Auth = Callable[..., dict[str, str]]
HEALTH = "health-centre-caseworker"
POLICE = "community-police-caseworker"
PURPOSE = {"X-Purpose": "safeguarding_assessment"}
NATIONAL_ID = {"system": "national_id", "value": "LB-MIG-1"}


@pytest.fixture
def linked(app_client: TestClient, auth: Auth) -> tuple[dict[str, Any], dict[str, Any]]:
    subject = referral_body()["subject"] | {"identifiers": [NATIONAL_ID], "district": "old-town"}
    health = app_client.post("/v1/referrals", json=referral_body(subject=subject), headers=auth(HEALTH))
    police = app_client.post("/v1/referrals", json=referral_body(subject={"identifiers": [NATIONAL_ID]}),
                             headers=auth(POLICE))
    assert (health.status_code, police.status_code) == (201, 201), (health.text, police.text)
    return health.json(), police.json()


def read(app_client: TestClient, auth: Auth, client_id: str, referral_id: str) -> dict[str, Any]:
    response = app_client.get(f"/v1/referrals/{referral_id}", headers=auth(client_id, **PURPOSE))
    assert response.status_code == 200, response.text
    subject: dict[str, Any] = response.json()["subject"]
    return subject


def test_an_existing_referral_shows_what_it_showed_before(
    app_client: TestClient, auth: Auth, state: AppState, linked: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    health, police = linked
    try:
        migrate.downgrade(state.engine, "0008")
        with state.engine.connect() as conn:
            # Before 0009 the person had one age band and district, the latest a referral gave.
            assert conn.execute(text("SELECT district FROM subjects")).scalar_one() == "old-town"
        migrate.upgrade(state.engine, keyring=state.keyring)
    finally:
        migrate.upgrade(state.engine, keyring=state.keyring)

    mine = read(app_client, auth, HEALTH, health["id"])
    assert (mine["given_name"], mine["district"]) == ("Yasmin", "old-town")
    assert mine["age_band"] == health["subject"]["age_band"]
    # What each agency said alone was never kept: an older referral's part is the merged identity,
    # as it was shown until now. Referrals made from here on keep their own.
    theirs = read(app_client, auth, POLICE, police["id"])
    assert (theirs["given_name"], theirs["district"]) == ("Yasmin", "old-town")
    assert theirs["identifiers"] == [NATIONAL_ID]


def test_the_upgrade_refuses_without_the_keyring_when_there_is_something_to_seal(
    app_client: TestClient, auth: Auth, state: AppState, linked: tuple[dict[str, Any], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
) -> None:
    monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(tmp_path / "absent" / "keyring.json"))
    monkeypatch.delenv("CASEBRIDGE_KEYRING_JSON", raising=False)
    try:
        migrate.downgrade(state.engine, "0008")
        with pytest.raises(RuntimeError, match="needs the keyring"):
            migrate.upgrade(state.engine)
        assert migrate.current_revisions(state.engine) == {"0008"}
    finally:
        migrate.upgrade(state.engine, keyring=state.keyring)
    assert read(app_client, auth, HEALTH, linked[0]["id"])["given_name"] == "Yasmin"
