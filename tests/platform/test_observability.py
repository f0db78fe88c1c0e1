"""JSON log lines, W3C trace context, and who may read /metrics."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app import __version__
from app.config import Environment, Settings
from app.main import create_app
from app.observability import JsonFormatter

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CASE_TEXT = "case text that must not reach a log"
Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """What the service logs while the test runs, formatted as it is on stderr (JSON lines)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("casebridge")
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


class TestLogLines:
    def test_every_line_has_time_service_version_and_the_request_id(
        self, app_client: TestClient, log_lines: Lines, monkeypatch: pytest.MonkeyPatch,
        auth: Any,
    ) -> None:
        from app.agencies import repository

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError(CASE_TEXT)

        monkeypatch.setattr(repository, "list_agencies", broken)  # a fault to make an unhandled error
        headers = auth("municipality-operator")
        ok = app_client.get("/healthz", headers={"X-Request-ID": "req-ok", "traceparent": INCOMING})
        failed = app_client.get("/v1/admin/agencies", headers={**headers, "X-Request-ID": "req-500"})
        assert ok.status_code == 200 and failed.status_code == 500
        assert failed.json()["request_id"] == failed.headers["x-request-id"] == "req-500"
        app_client.__exit__(None, None, None)  # not part of a request: the shutdown line

        entries = log_lines()
        assert entries
        for entry in entries:
            assert TIMESTAMP.match(entry["time"]), entry["time"]
            assert entry["service"] == "casebridge" and entry["version"] == __version__
        by_request = {e.get("request_id") for e in entries}
        assert {"req-ok", "req-500"} <= by_request
        unhandled = next(e for e in entries if e["message"] == "unhandled error")
        assert unhandled["request_id"] == "req-500"
        assert unhandled["level"] == "error" and unhandled["error_type"] == "RuntimeError"
        assert len(unhandled["trace_id"]) == 32
        access = next(e for e in entries if e["message"] == "request" and e["request_id"] == "req-ok")
        assert access["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert CASE_TEXT not in json.dumps(entries)
        stopped = next(e for e in entries if e["message"] == "worker stopped")
        assert "request_id" not in stopped and stopped["pid"] > 0


class TestTraceContext:
    def test_a_valid_traceparent_keeps_its_trace_with_a_new_span(self, app_client: TestClient) -> None:
        response = app_client.get("/healthz", headers={"traceparent": INCOMING})
        match = TRACEPARENT.match(response.headers["traceparent"])
        assert match is not None
        assert match[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert match[2] != "00f067aa0ba902b7"
        assert match[3] == "01"

    @pytest.mark.parametrize("header", [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # version 00 has 4 fields
        "not a traceparent",
    ])
    def test_an_invalid_traceparent_starts_a_new_trace(self, app_client: TestClient, header: str) -> None:
        response = app_client.get("/healthz", headers={"traceparent": header})
        assert response.status_code == 200
        match = TRACEPARENT.match(response.headers["traceparent"])
        assert match is not None
        assert match[1] not in header.lower() and match[1] != "0" * 32

    def test_without_one_each_request_starts_its_own_trace(self, app_client: TestClient) -> None:
        first = app_client.get("/healthz").headers["traceparent"]
        second = app_client.get("/healthz").headers["traceparent"]
        assert TRACEPARENT.match(first) and TRACEPARENT.match(second)
        assert first.split("-")[1] != second.split("-")[1]

    def test_a_later_version_is_read_for_its_known_fields(self, app_client: TestClient) -> None:
        header = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"
        response = app_client.get("/healthz", headers={"traceparent": header})
        assert response.headers["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"


def _prod(settings: Settings, token: str | None) -> Settings:
    """The test's settings as prod (its database, a new keyring), with or without a metrics token."""
    from app.crypto.keyring import Keyring

    settings.resolved_keyring_path.parent.mkdir(parents=True, exist_ok=True)
    Keyring.generate().save(settings.resolved_keyring_path)
    return settings.model_copy(update={
        "env": Environment.prod, "metrics_token": SecretStr(token) if token else None,
    })


class TestMetricsAccess:
    def test_dev_serves_metrics_openly(self, app_client: TestClient) -> None:
        response = app_client.get("/metrics")
        assert response.status_code == 200
        assert "casebridge_build_info" in response.text

    def test_prod_without_a_token_has_no_metrics(self, settings: Settings) -> None:
        with TestClient(create_app(_prod(settings, None)), raise_server_exceptions=False) as client:
            response = client.get("/metrics")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_prod_with_a_token_asks_for_it(self, settings: Settings) -> None:
        secret = "a-long-random-metrics-token"  # noqa: S105 - a test value
        with TestClient(create_app(_prod(settings, secret)), raise_server_exceptions=False) as client:
            missing = client.get("/metrics")
            wrong = client.get("/metrics", headers={"Authorization": "Bearer not-it"})
            right = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
        assert missing.status_code == 401 and wrong.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert right.status_code == 200
        assert "casebridge_http_requests_total" in right.text

    def test_prod_refuses_a_short_metrics_token(self, tmp_path: Path) -> None:
        from app.config import ConfigError, load_settings

        with pytest.raises(ConfigError, match="CASEBRIDGE_METRICS_TOKEN"):
            load_settings(env="prod", database_url=f"sqlite:///{tmp_path}/x.db", keyring_path=tmp_path / "k",
                          metrics_token="changeme")  # noqa: S106 - the placeholder refused
