"""Problem responses, request ids, body limits, access logs, health and metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import migrate
from app.state import AppState

Auth = Callable[..., dict[str, str]]


class TestProblems:
    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [("get", "/v1/nothing-here", 404), ("delete", "/healthz", 405), ("get", "/v1/me", 401)],
    )
    def test_framework_errors_are_problem_json(
        self, app_client: TestClient, method: str, path: str, status: int
    ) -> None:
        response = app_client.request(method, path)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == status
        assert {"type", "title", "detail", "instance"} <= body.keys()

    def test_invalid_json_body_is_a_4xx_problem(self, app_client: TestClient, auth: Auth) -> None:
        headers = {**auth("municipality-operator"), "Content-Type": "application/json"}
        for raw in (b"{", b"\xff\xfe\x00", b"[" * 5000 + b"]" * 5000):
            response = app_client.post("/v1/admin/agencies", content=raw, headers=headers)
            assert 400 <= response.status_code < 500, response.status_code
            assert response.headers["content-type"] == "application/problem+json"


class TestBodyLimit:
    def test_declared_oversize_body_is_413(self, app_client: TestClient, auth: Auth) -> None:
        body = b'{"id": "' + b"a" * (1_048_576 + 10) + b'"}'
        response = app_client.post(
            "/v1/admin/agencies", content=body,
            headers={**auth("municipality-operator"), "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"

    def test_streamed_oversize_body_is_413(self, app_client: TestClient, auth: Auth) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"id": "'
            for _ in range(20):
                yield b"a" * 65_536
            yield b'"}'

        response = app_client.post(
            "/v1/admin/agencies", content=chunks(),
            headers={**auth("municipality-operator"), "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json()["status"] == 413


class TestRequestIds:
    def test_given_id_is_echoed_and_missing_id_is_generated(self, app_client: TestClient) -> None:
        assert app_client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
        generated = app_client.get("/healthz").headers["x-request-id"]
        assert len(generated) == 32
        unsafe = app_client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        assert unsafe.headers["x-request-id"] != "bad id\twith spaces"

    def test_problem_bodies_carry_the_request_id(self, app_client: TestClient) -> None:
        response = app_client.get("/v1/me", headers={"X-Request-ID": "req-42"})
        assert response.json()["request_id"] == "req-42"


class TestAccessLog:
    def test_one_json_line_per_request_without_tokens_or_bodies(
        self, app_client: TestClient, auth: Auth, demo: dict[str, dict[str, str]],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        from app.observability import JsonFormatter

        headers = auth("municipality-operator")
        secret = demo["municipality-operator"]["client_secret"]
        with caplog.at_level(logging.INFO, logger="casebridge.access"):
            logging.getLogger("casebridge").addHandler(caplog.handler)
            try:
                app_client.get("/v1/admin/clients/ignored", headers={**headers, "X-Request-ID": "r-1"})
                app_client.post(
                    "/v1/admin/agencies", headers={**headers, "X-Request-ID": "r-2"},
                    json={"id": "secret-agency", "name": "Top secret name", "sector": "health"},
                )
                app_client.post("/v1/token", data={
                    "grant_type": "client_credentials", "client_id": "municipality-operator",
                    "client_secret": secret,
                })
            finally:
                logging.getLogger("casebridge").removeHandler(caplog.handler)
        lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "casebridge.access"]
        entries = [json.loads(line) for line in lines]
        by_id = {e["request_id"]: e for e in entries}
        assert by_id["r-2"]["method"] == "POST"
        assert by_id["r-2"]["path"] == "/v1/admin/agencies"
        assert by_id["r-2"]["status"] == 201
        assert by_id["r-2"]["client_id"] == "municipality-operator"
        assert isinstance(by_id["r-2"]["duration_ms"], float)
        assert by_id["r-1"]["path"] == "<unmatched>"
        everything = "\n".join(lines)
        token = headers["Authorization"].removeprefix("Bearer ")
        for leaked in (token, secret, "Top secret name", "access_token"):
            assert leaked not in everything


class TestHealth:
    def test_healthz(self, app_client: TestClient) -> None:
        assert app_client.get("/healthz").json() == {"status": "ok"}

    def test_readyz_when_ready(self, app_client: TestClient) -> None:
        response = app_client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "keyring": "ok"}

    def test_readyz_is_503_when_migrations_are_behind(
        self, app_client: TestClient, state: AppState
    ) -> None:
        with state.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))  # an older revision
        response = app_client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["checks"]["migrations"] == "behind"
        with state.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"),
                         {"v": next(iter(migrate.head_revisions()))})

    def test_readyz_is_503_when_the_database_is_unreachable(
        self, app_client: TestClient, state: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from sqlalchemy.exc import OperationalError

        def refuse(*args: object, **kwargs: object) -> None:
            raise OperationalError("connect", {}, Exception("refused"))

        monkeypatch.setattr(state.engine, "connect", refuse)
        response = app_client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "unreachable"

    def test_metrics_count_requests_by_route_template(self, app_client: TestClient) -> None:
        # The counters are the process's (other tests in this worker count too): compare before and after.
        def healthz_ok(body: str) -> float:
            for ln in body.splitlines():
                if (ln.startswith("casebridge_http_requests_total{") and 'route="/healthz"' in ln
                        and 'status="200"' in ln and 'method="GET"' in ln):
                    return float(ln.rsplit(" ", 1)[1])
            return 0.0

        before = healthz_ok(app_client.get("/metrics").text)
        app_client.get("/healthz")
        app_client.get("/healthz")
        body = app_client.get("/metrics").text
        assert healthz_ok(body) == before + 2
        assert "casebridge_http_request_duration_seconds_bucket" in body


class TestTransientDatabaseFaults:
    def test_a_locked_database_or_exhausted_pool_is_503_not_500(
        self, app_client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        from app.agencies import repository

        headers = auth("municipality-operator")
        for fault in (OperationalError("SELECT", {}, Exception("database is locked")),
                      PoolTimeout("QueuePool limit reached")):
            def busy(*args: object, fault: Exception = fault, **kwargs: object) -> None:
                raise fault

            monkeypatch.setattr(repository, "list_agencies", busy)
            response = app_client.get("/v1/admin/agencies", headers=headers)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert "locked" not in response.text and "QueuePool" not in response.text


def test_a_started_worker_keeps_its_startup_objects_out_of_the_collector(app_client: TestClient) -> None:
    """What the worker built at start lives as long as it does: frozen (gc.freeze), full collections
    under load no longer walk it (they were the disclosure's p99, bench/README.md)."""
    import gc

    assert gc.get_freeze_count() > 10_000  # the app, its policies, SQLAlchemy's mappers ...
    assert app_client.get("/healthz").status_code == 200


def test_a_stopped_worker_lets_the_collector_have_them_back(settings: Any) -> None:
    import gc

    from app.main import create_app

    with TestClient(create_app(settings)):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0  # a process starting apps in turn (these tests) frees each one
