"""POST /v1/token, the JWKS, and every way a forged or stale token is refused."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from jose import jwk, jwt

from app.crypto.keyring import KeyKind, Keyring
from app.state import AppState

Form = dict[str, str]


def _form(client_id: str, secret: str, **extra: str) -> Form:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, **extra}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _signing_pem(state: AppState) -> bytes:
    return state.keyring.active(KeyKind.token_signing).material


def _public_pem(state: AppState) -> bytes:
    private = serialization.load_pem_private_key(_signing_pem(state), password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _forge(state: AppState, **changes: Any) -> str:
    """A token signed with the real key, with claims changed: tests claim checks alone."""
    now = int(time.time())
    claims = {
        "iss": state.settings.issuer, "aud": state.settings.audience, "sub": "municipality-coordinator",
        "agency": "city-municipality", "sector": "local_government", "roles": ["coordinator"],
        "iat": now, "nbf": now, "exp": now + 300, "jti": "t1",
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    kid = state.keyring.active(KeyKind.token_signing).id
    return jwt.encode(claims, _signing_pem(state).decode(), algorithm="ES256", headers={"kid": kid})


class TestIssueToken:
    def test_issues_an_es256_token_with_the_agreed_claims(
        self, app_client: TestClient, demo: dict[str, Any], state: AppState
    ) -> None:
        creds = demo["school-north-referrer"]
        response = app_client.post(
            "/v1/token", data=_form(creds["client_id"], creds["client_secret"], act="teacher-042")
        )
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"  # noqa: S105 - OAuth token type name, not a secret
        assert body["expires_in"] == state.settings.token_ttl_seconds
        header = jwt.get_unverified_header(body["access_token"])
        assert header["alg"] == "ES256"
        assert header["kid"] == state.keyring.active(KeyKind.token_signing).id
        jwks = app_client.get("/.well-known/jwks.json").json()
        claims = jwt.decode(
            body["access_token"], jwks, algorithms=["ES256"],
            audience=state.settings.audience, issuer=state.settings.issuer,
        )
        assert claims["sub"] == "school-north-referrer"
        assert claims["agency"] == "school-north"
        assert claims["sector"] == "education"
        assert claims["roles"] == ["caseworker", "referrer"]
        assert claims["act"] == {"sub": "teacher-042"}
        assert claims["exp"] - claims["iat"] == state.settings.token_ttl_seconds
        assert claims["jti"]

    def test_the_token_authenticates_and_carries_the_acting_person(
        self, app_client: TestClient, token_for: Callable[..., str]
    ) -> None:
        token = token_for("social-services-caseworker", act="worker-7")
        me = app_client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json() == {
            "client_id": "social-services-caseworker", "agency": "city-social-services",
            "sector": "social_services", "roles": ["caseworker", "referrer"], "act": "worker-7",
        }

    def test_http_basic_client_authentication_is_accepted(
        self, app_client: TestClient, demo: dict[str, Any]
    ) -> None:
        creds = demo["independent-auditor"]
        basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
        response = app_client.post(
            "/v1/token", data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert response.status_code == 200

    def test_unknown_wrong_and_disabled_clients_get_the_same_answer(
        self, app_client: TestClient, demo: dict[str, Any], auth: Callable[..., dict[str, str]]
    ) -> None:
        good = demo["school-south-referrer"]
        disable = app_client.post(
            "/v1/admin/clients/school-south-referrer/disable", headers=auth("municipality-operator")
        )
        assert disable.status_code == 200
        answers = [
            app_client.post("/v1/token", data=_form("no-such-client", "whatever")),
            app_client.post("/v1/token", data=_form("school-north-referrer", "wrong-secret")),
            app_client.post("/v1/token", data=_form(good["client_id"], good["client_secret"])),
        ]
        for response in answers:
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
        bodies = [{k: v for k, v in r.json().items() if k != "request_id"} for r in answers]
        assert bodies[0] == bodies[1] == bodies[2]
        assert bodies[0]["error"] == "invalid_client"

    def test_unknown_clients_are_checked_against_a_hash_of_the_same_kind(
        self, app_client: TestClient, demo: dict[str, Any], state: AppState
    ) -> None:
        # Equal cost by construction: a miss is verified against a dummy hash of the very scheme
        # and key a stored client's hash has (one HMAC either way); the timing is in bench/.
        from app.agencies.models import ApiClient

        with state.read_sessions() as session:
            stored = session.get(ApiClient, "school-north-referrer")
            assert stored is not None
            real = stored.secret_hash
        assert real.split("$")[:2] == state.dummy_secret_hash.split("$")[:2]
        assert real.startswith("hmac-sha256$")
        assert not state.secret_hasher.verify("no-such-client", "x", state.dummy_secret_hash)

    @pytest.mark.parametrize(
        ("form", "error"),
        [
            ({"client_id": "a", "client_secret": "b"}, "invalid_request"),
            ({"grant_type": "password", "client_id": "a", "client_secret": "b"}, "unsupported_grant_type"),
            ({"grant_type": "client_credentials", "client_id": "a"}, "invalid_request"),
            ({"grant_type": "client_credentials"}, "invalid_request"),
        ],
    )
    def test_malformed_requests_are_400_problems(
        self, app_client: TestClient, form: Form, error: str
    ) -> None:
        response = app_client.post("/v1/token", data=form)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == error


class TestJwks:
    def test_publishes_public_keys_only(self, app_client: TestClient, state: AppState) -> None:
        keys = app_client.get("/.well-known/jwks.json").json()["keys"]
        assert len(keys) == 1
        (key,) = keys
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
        assert key["kid"] == state.keyring.active(KeyKind.token_signing).id
        assert "d" not in key


class TestTokenVerification:
    """Each forged, altered or stale token is a 401 problem."""

    def _call(self, app_client: TestClient, token: str) -> int:
        response = app_client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 401:
            assert response.headers["content-type"] == "application/problem+json"
        return response.status_code

    def test_a_forged_token_with_correct_claims_is_accepted(
        self, app_client: TestClient, state: AppState, demo: dict[str, Any]
    ) -> None:
        # The control: the forging helper makes valid tokens, so each rejection below is
        # caused by the one change it makes.
        assert self._call(app_client, _forge(state)) == 200

    def test_alg_none(self, app_client: TestClient, state: AppState, demo: dict[str, Any]) -> None:
        token = _forge(state)
        claims = token.split(".")[1]
        for alg in ("none", "None", "NONE"):
            header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "x"}).encode())
            assert self._call(app_client, f"{header}.{claims}.") == 401

    def test_hs256_signed_with_the_public_key(
        self, app_client: TestClient, state: AppState, demo: dict[str, Any]
    ) -> None:
        import hashlib
        import hmac

        kid = state.keyring.active(KeyKind.token_signing).id
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        claims = _forge(state).split(".")[1]
        signing_input = f"{header}.{claims}".encode()
        for secret in (_public_pem(state), json.dumps(jwk.construct(_public_pem(state), "ES256").to_dict()).encode()):
            signature = _b64(hmac.new(secret, signing_input, hashlib.sha256).digest())
            assert self._call(app_client, f"{header}.{claims}.{signature}") == 401

    def test_tampered_payload(self, app_client: TestClient, state: AppState, demo: dict[str, Any]) -> None:
        header, _, signature = _forge(state).split(".")
        evil = _claims(_forge(state))
        evil["roles"] = ["coordinator", "admin", "auditor"]
        payload = _b64(json.dumps(evil).encode())
        assert self._call(app_client, f"{header}.{payload}.{signature}") == 401

    def test_token_from_another_key(self, app_client: TestClient, state: AppState, demo: dict[str, Any]) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        kid = state.keyring.active(KeyKind.token_signing).id
        claims = _claims(_forge(state))
        token = jwt.encode(claims, other.decode(), algorithm="ES256", headers={"kid": kid})
        assert self._call(app_client, token) == 401

    def test_unknown_kid(self, app_client: TestClient, state: AppState, demo: dict[str, Any]) -> None:
        claims = _claims(_forge(state))
        token = jwt.encode(claims, _signing_pem(state).decode(), algorithm="ES256", headers={"kid": "tok-unknown"})
        assert self._call(app_client, token) == 401
        token = jwt.encode(claims, _signing_pem(state).decode(), algorithm="ES256")
        assert self._call(app_client, token) == 401

    @pytest.mark.parametrize(
        "changes",
        # Functions of the current time, called when the test runs (not at collection: a long run must not
        # see "not yet valid" become valid).
        [
            lambda now: {"exp": now - 10},
            lambda now: {"nbf": now + 600},
            lambda now: {"iss": "someone-else"},
            lambda now: {"aud": "another-api"},
            lambda now: {"exp": None},
            lambda now: {"aud": None},
            lambda now: {"roles": "coordinator"},
        ],
        ids=["expired", "not-yet-valid", "wrong-iss", "wrong-aud", "no-exp", "no-aud", "roles-not-list"],
    )
    def test_bad_claims(
        self,
        app_client: TestClient,
        state: AppState,
        demo: dict[str, Any],
        changes: Callable[[int], dict[str, Any]],
    ) -> None:
        assert self._call(app_client, _forge(state, **changes(int(time.time())))) == 401

    @pytest.mark.parametrize(
        "authorization", ["", "Bearer", "Bearer ", "Bearer not.a.jwt", "Basic Zm9vOmJhcg==", "Bearer a.b"]
    )
    def test_garbage_authorization(self, app_client: TestClient, authorization: str) -> None:
        response = app_client.get("/v1/me", headers={"Authorization": authorization})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"

    def test_a_disabled_clients_tokens_stop_working(
        self, app_client: TestClient, auth: Callable[..., dict[str, str]]
    ) -> None:
        headers = auth("youth-ngo-reader")
        assert app_client.get("/v1/me", headers=headers).status_code == 200
        app_client.post("/v1/admin/clients/youth-ngo-reader/disable", headers=auth("municipality-operator"))
        assert app_client.get("/v1/me", headers=headers).status_code == 401


class TestVerifiedTokensRemembered:
    """A verified token is checked once and remembered (the ES256 check is most of a read's CPU), but
    never past its expiry, and never past a change of the keys: each case is refused as before."""

    def _call(self, app_client: TestClient, token: str) -> int:
        return app_client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code

    def test_a_remembered_token_is_refused_once_it_expires(
        self, app_client: TestClient, state: AppState, demo: dict[str, Any]
    ) -> None:
        expires = int(time.time()) + 2
        token = _forge(state, exp=expires)
        assert [self._call(app_client, token) for _ in range(3)] == [200, 200, 200]
        time.sleep(max(0.0, expires - time.time()) + 0.1)
        assert [self._call(app_client, token) for _ in range(2)] == [401, 401]

    def test_a_token_of_a_key_withdrawn_from_the_keyring_file_is_refused(
        self, app_client: TestClient, state: AppState, demo: dict[str, Any]
    ) -> None:
        before = _forge(state)
        assert [self._call(app_client, before) for _ in range(2)] == [200, 200]
        withdrawn = state.keyring.active(KeyKind.token_signing).id
        state.keyring.rotate(KeyKind.token_signing)
        assert self._call(app_client, before) == 200  # rotated, not withdrawn: old tokens still verify
        # The operator removes the old key from the file (a key thought compromised); the process reloads it.
        assert state.keyring_file is not None
        Keyring(e for e in state.keyring.entries if e.id != withdrawn).save(state.keyring_file.path)
        assert state.keyring_file.reload_if_changed()  # what the keyring watcher does on its next look
        after = _forge(state)
        assert self._call(app_client, before) == 401
        assert self._call(app_client, after) == 200

    def test_a_remembered_token_of_a_disabled_client_is_refused(
        self, app_client: TestClient, auth: Callable[..., dict[str, str]]
    ) -> None:
        headers = auth("youth-ngo-reader")
        assert [app_client.get("/v1/me", headers=headers).status_code for _ in range(2)] == [200, 200]
        app_client.post("/v1/admin/clients/youth-ngo-reader/disable", headers=auth("municipality-operator"))
        assert [app_client.get("/v1/me", headers=headers).status_code for _ in range(2)] == [401, 401]
