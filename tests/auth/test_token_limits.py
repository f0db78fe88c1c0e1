"""POST /v1/token's rate limits: per client id and per client address, 429 problems with Retry-After."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.observability import JsonFormatter

CLIENT_BURST, ADDRESS_BURST = 3, 6
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "request_id"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small buckets that refill slowly (one attempt a minute), so a test never sees a refill."""
    return settings.model_copy(update={
        "token_client_per_minute": 1.0, "token_client_burst": CLIENT_BURST,
        "token_address_per_minute": 1.0, "token_address_burst": ADDRESS_BURST,
    })


@pytest.fixture
def from_address(app_client: TestClient) -> Iterator[Any]:
    """TestClients on the same app whose requests come from another client address."""
    opened: list[TestClient] = []

    def _client(host: str) -> TestClient:
        other = TestClient(app_client.app, client=(host, 40000), raise_server_exceptions=False)
        opened.append(other)
        return other  # no `with`: the app's lifespan already runs under app_client

    yield _client
    for other in opened:
        other.close()


def _form(client_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


def _fail(client: TestClient, client_id: str, times: int) -> list[int]:
    return [client.post("/v1/token", data=_form(client_id, "wrong-secret")).status_code for _ in range(times)]


class TestTooManyRequests:
    def test_over_the_client_limit_is_a_429_problem_with_retry_after(self, app_client: TestClient,
                                                                     demo: dict[str, Any]) -> None:
        assert _fail(app_client, "school-north-referrer", CLIENT_BURST) == [401] * CLIENT_BURST
        response = app_client.post("/v1/token", data=_form("school-north-referrer", "wrong-secret"))
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body.keys() >= PROBLEM_FIELDS
        assert body["status"] == 429
        assert body["type"].endswith("/too-many-requests")
        assert body["instance"] == "/v1/token"
        retry_after = response.headers["retry-after"]
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
        assert "wrong-secret" not in response.text

    def test_the_right_secret_is_refused_too_while_the_client_is_over_its_limit(
        self, app_client: TestClient, demo: dict[str, Any]
    ) -> None:
        # Refused before any work: a 429 cannot tell a right secret from a wrong one.
        creds = demo["school-south-referrer"]
        _fail(app_client, creds["client_id"], CLIENT_BURST)
        right = app_client.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"]))
        assert right.status_code == 429

    def test_unknown_known_and_disabled_clients_are_limited_alike(
        self, app_client: TestClient, demo: dict[str, Any], auth: Any, from_address: Any
    ) -> None:
        assert app_client.post("/v1/admin/clients/youth-ngo-reader/disable",
                               headers=auth("municipality-operator")).status_code == 200
        answers = []
        for index, client_id in enumerate(["no-such-client", "town-school-referrer", "youth-ngo-reader"]):
            caller = from_address(f"10.0.1.{index}")  # one address each: only the client limit applies
            assert _fail(caller, client_id, CLIENT_BURST) == [401] * CLIENT_BURST
            answers.append(caller.post("/v1/token", data=_form(client_id, "wrong-secret")))
        assert [a.status_code for a in answers] == [429, 429, 429]
        bodies = [{k: v for k, v in a.json().items() if k != "request_id"} for a in answers]
        assert bodies[0] == bodies[1] == bodies[2]

    def test_malformed_requests_are_not_charged(self, app_client: TestClient) -> None:
        for _ in range(ADDRESS_BURST + 2):
            assert app_client.post("/v1/token", data={"client_id": "a", "client_secret": "b"}).status_code == 400
        assert _fail(app_client, "no-such-client", 1) == [401]


class TestIndependentLimits:
    def test_a_client_over_its_limit_is_refused_from_every_address(
        self, app_client: TestClient, demo: dict[str, Any], from_address: Any
    ) -> None:
        _fail(app_client, "health-centre-caseworker", CLIENT_BURST)
        assert _fail(from_address("10.0.2.1"), "health-centre-caseworker", 1) == [429]
        # ... while the first address may still try other clients (its own bucket is not empty).
        assert _fail(app_client, "community-police-caseworker", 1) == [401]
        good = demo["community-police-caseworker"]
        assert app_client.post("/v1/token", data=_form(good["client_id"], good["client_secret"])).status_code == 200

    def test_an_address_over_its_limit_is_refused_for_every_client(
        self, app_client: TestClient, demo: dict[str, Any], from_address: Any
    ) -> None:
        noisy = from_address("10.0.3.1")
        for index in range(ADDRESS_BURST // 2):  # two failures per client: no client limit reached
            assert _fail(noisy, f"made-up-{index}", 2) == [401, 401]
        assert _fail(noisy, "made-up-fresh", 1) == [429]
        creds = demo["independent-auditor"]
        assert noisy.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"])).status_code == 429
        # Another address is not affected, for the same client ids.
        quiet = from_address("10.0.3.2")
        assert _fail(quiet, "made-up-fresh", 1) == [401]
        assert quiet.post("/v1/token", data=_form(creds["client_id"], creds["client_secret"])).status_code == 200


class TestSuccessesDoNotCount:
    def test_many_tokens_for_a_client_leave_its_allowance_whole(
        self, app_client: TestClient, demo: dict[str, Any]
    ) -> None:
        creds = demo["municipality-coordinator"]
        form = _form(creds["client_id"], creds["client_secret"])
        for _ in range(ADDRESS_BURST * 3):
            assert app_client.post("/v1/token", data=form).status_code == 200
        assert _fail(app_client, creds["client_id"], CLIENT_BURST) == [401] * CLIENT_BURST
        assert _fail(app_client, creds["client_id"], 1) == [429]


class TestRefusalLog:
    def test_a_refusal_streak_is_logged_once_without_the_secret_or_the_client_id(
        self, app_client: TestClient, demo: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        secret_like = "s3cr3t-pasted-into-the-id-field"  # noqa: S105 - a fake, to prove it is never logged
        casebridge = logging.getLogger("casebridge")
        casebridge.addHandler(caplog.handler)
        try:
            with caplog.at_level(logging.INFO, logger="casebridge"):
                _fail(app_client, secret_like, CLIENT_BURST)
                assert _fail(app_client, secret_like, 3) == [429, 429, 429]
        finally:
            casebridge.removeHandler(caplog.handler)
        lines = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("casebridge")]
        refusals = [line for line in lines if "rate limit" in line]
        assert len(refusals) == 1
        assert '"limits": ["client"]' in refusals[0] and '"client_address": "testclient"' in refusals[0]
        assert [line for line in lines if '"status": 429' in line]  # the access log has each one
        assert not [line for line in lines if secret_like in line or "wrong-secret" in line]


class TestBucketsInMemory:
    """The buckets themselves, with a clock the test moves (nothing of ours replaced)."""

    def test_a_flood_of_made_up_ids_cannot_grow_memory_past_the_cap(self, settings: Settings) -> None:
        from app.auth.ratelimit import TokenEndpointLimits

        now = [0.0]
        limits = TokenEndpointLimits(settings.model_copy(update={"token_limit_max_keys": 100,
                                                                "token_address_per_minute": 0}),
                                     clock=lambda: now[0])
        for index in range(1_000):
            limits.charge(f"made-up-{index}", "10.9.9.9")
        assert len(limits.clients) <= 100

    def test_a_bucket_refills_at_its_rate(self, settings: Settings) -> None:
        from app.auth.ratelimit import TokenEndpointLimits
        from app.errors import TooManyRequests

        now = [0.0]
        limits = TokenEndpointLimits(settings, clock=lambda: now[0])  # 1 a minute, burst 3
        for _ in range(CLIENT_BURST):
            limits.charge("c", "a")
        with pytest.raises(TooManyRequests) as refused:
            limits.charge("c", "a")
        assert refused.value.headers["Retry-After"] == "60"
        now[0] += 30.0
        with pytest.raises(TooManyRequests) as refused:
            limits.charge("c", "a")
        assert refused.value.headers["Retry-After"] == "30"
        now[0] += 30.0
        limits.charge("c", "a")  # one more attempt a minute later, and only one
        with pytest.raises(TooManyRequests):
            limits.charge("c", "a")
