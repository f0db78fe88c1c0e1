"""Client secrets as keyed hashes: HMAC under the keyring's pepper, legacy scrypt hashes rehashed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.agencies.models import ApiClient
from app.config import Settings
from app.crypto.keyring import KeyKind, Keyring
from app.crypto.secrets import SecretHasher, legacy_scrypt_hash, new_client_secret
from app.db import transaction
from app.state import AppState


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Room for the failures these tests make on purpose (the limits are tested elsewhere)."""
    return settings.model_copy(update={"token_client_burst": 100, "token_address_burst": 100})


def _form(client_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


def _stored(state: AppState, client_id: str) -> str:
    with state.read_sessions() as session:
        client = session.get(ApiClient, client_id)
        assert client is not None
        return client.secret_hash


def _store(state: AppState, client_id: str, secret_hash: str) -> None:
    with transaction(state.sessions) as session:
        client = session.get(ApiClient, client_id)
        assert client is not None
        client.secret_hash = secret_hash


class TestLegacyScryptHashes:
    """A database from before the change holds scrypt hashes: they keep working, then move over."""

    def test_a_legacy_hash_is_accepted_then_rehashed_to_hmac(
        self, app_client: TestClient, demo: dict[str, Any], state: AppState
    ) -> None:
        creds = demo["school-north-referrer"]
        _store(state, creds["client_id"], legacy_scrypt_hash(creds["client_secret"], 10))
        assert app_client.post("/v1/token", data=_form(creds["client_id"], "wrong")).status_code == 401
        assert _stored(state, creds["client_id"]).startswith("scrypt$")  # a failure changes nothing

        assert app_client.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"])).status_code == 200
        rehashed = _stored(state, creds["client_id"])
        active = state.keyring.active(KeyKind.blind_index).id
        assert rehashed.startswith(f"hmac-sha256${active}$")
        assert creds["client_secret"] not in rehashed
        assert app_client.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"])).status_code == 200
        assert app_client.post("/v1/token", data=_form(creds["client_id"], "wrong")).status_code == 401
        assert _stored(state, creds["client_id"]) == rehashed

    def test_a_disabled_client_with_a_legacy_hash_is_refused_and_not_rehashed(
        self, app_client: TestClient, demo: dict[str, Any], state: AppState, auth: Any
    ) -> None:
        creds = demo["youth-ngo-reader"]
        legacy = legacy_scrypt_hash(creds["client_secret"], 10)
        _store(state, creds["client_id"], legacy)
        assert app_client.post("/v1/admin/clients/youth-ngo-reader/disable",
                               headers=auth("municipality-operator")).status_code == 200
        answer = app_client.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"]))
        unknown = app_client.post("/v1/token", data=_form("no-such-client", creds["client_secret"]))
        assert answer.status_code == unknown.status_code == 401
        assert {k: v for k, v in answer.json().items() if k != "request_id"} == {
            k: v for k, v in unknown.json().items() if k != "request_id"}
        assert _stored(state, creds["client_id"]) == legacy

    def test_a_hash_that_is_no_hash_of_ours_never_verifies(self, app_client: TestClient, demo: dict[str, Any],
                                                           state: AppState) -> None:
        creds = demo["town-coordinator"]
        for junk in ("", "scrypt$99$8$1$AAAA$AAAA", "scrypt$10$9999$1$AAAA$AAAA", "md5$x", "hmac-sha256$bix-nope$AAAA",
                     "hmac-sha256$$", creds["client_secret"]):
            _store(state, creds["client_id"], junk)
            response = app_client.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"]))
            assert response.status_code == 401, junk


class TestPepper:
    def test_an_hmac_hash_verifies_only_under_the_right_pepper_and_client(self, state: AppState) -> None:
        hasher = state.secret_hasher
        secret = new_client_secret()
        stored = hasher.hash("client-a", secret)
        assert hasher.verify("client-a", secret, stored)
        assert not hasher.verify("client-a", secret + "x", stored)
        assert not hasher.verify("client-b", secret, stored)  # a hash copied onto another client's row
        assert not SecretHasher(Keyring.generate()).verify("client-a", secret, stored)  # another keyring
        # Another keyring holding a blind-index key of the same id but other material: still no.
        forged = Keyring(
            [e for e in Keyring.generate().entries if e.kind is not KeyKind.blind_index]
            + [_same_id_other_material(state)]
        )
        assert not SecretHasher(forged).verify("client-a", secret, stored)

    def test_the_pepper_survives_a_rotation_and_the_next_success_moves_the_hash(
        self, app_client: TestClient, demo: dict[str, Any], state: AppState
    ) -> None:
        creds = demo["national-statistics"]
        before = _stored(state, creds["client_id"])
        old_key = state.keyring.active(KeyKind.blind_index).id
        assert before.startswith(f"hmac-sha256${old_key}$")
        new_key = state.keyring.rotate(KeyKind.blind_index).id
        assert app_client.post("/v1/token", data=_form(creds["client_id"], "wrong")).status_code == 401
        assert _stored(state, creds["client_id"]) == before
        assert app_client.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"])).status_code == 200
        assert _stored(state, creds["client_id"]).startswith(f"hmac-sha256${new_key}$")
        assert app_client.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"])).status_code == 200

    def test_new_and_reset_secrets_are_hmac_hashes_under_the_active_key(
        self, app_client: TestClient, demo: dict[str, Any], state: AppState, auth: Any
    ) -> None:
        created = app_client.post(
            "/v1/admin/clients", headers=auth("municipality-operator"),
            json={"id": "fresh-client", "agency_id": "school-north", "name": "Fresh", "roles": ["referrer"]},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["client_secret"]
        stored = _stored(state, "fresh-client")
        assert stored.startswith(f"hmac-sha256${state.keyring.active(KeyKind.blind_index).id}$")
        assert secret not in stored
        assert len(secret) >= 43  # 32 random bytes, base64url
        assert app_client.post("/v1/token", data=_form("fresh-client", secret)).status_code == 200


def _same_id_other_material(state: AppState) -> Any:
    from dataclasses import replace

    real = state.keyring.active(KeyKind.blind_index)
    return replace(real, material=b"\x01" * 32)
