"""Fail closed: no case data leaves, and nothing changes, unless its log entry is durable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body

from app.audit.service import AuditUnavailable
from app.state import AppState

Auth = Callable[..., dict[str, str]]


def counts(state: AppState) -> dict[str, int]:
    with state.engine.connect() as conn:
        # Checkpoints are signed by a background thread on their own; they disclose nothing.
        tables = [t for t in inspect(conn).get_table_names() if t not in ("alembic_version", "audit_checkpoints")]
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()  # noqa: S608 - table names from the test schema
                for t in tables}


@pytest.fixture
def broken_append(state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> list[int]:
        raise AuditUnavailable()

    monkeypatch.setattr(state.audit, "_append", refuse)  # every append passes here


@pytest.fixture
def database_refuses_log_writes(state: AppState) -> Iterator[None]:
    """The database itself rejects every new log row, as a full disk or a revoked grant would."""
    with state.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_log BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_log() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
                "LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_log BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse_log()"
            )
    yield
    with state.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse_log" + ("" if conn.dialect.name == "sqlite" else " ON audit_entries"))
        if conn.dialect.name != "sqlite":
            conn.exec_driver_sql("DROP FUNCTION refuse_log()")


def _reads(app_client: TestClient, auth: Auth, rid: str) -> list[Any]:
    return [
        app_client.get(f"/v1/referrals/{rid}", headers=auth(REFERRER, **PURPOSE)),
        app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)),
        app_client.get("/v1/referrals", headers=auth(COORDINATOR, **PURPOSE)),
        app_client.get(f"/v1/referrals/{rid}/notes", headers=auth(REFERRER, **PURPOSE)),
        app_client.get("/v1/events", headers=auth(REFERRER, **PURPOSE)),
    ]


def _writes(app_client: TestClient, auth: Auth, rid: str) -> list[Any]:
    return [
        app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER)),
        app_client.post(f"/v1/referrals/{rid}/notes", json={"classification": "shared", "text": "secret-note"},
                        headers=auth(REFERRER)),
        app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "triaged"}, headers=auth(COORDINATOR)),
        app_client.post(f"/v1/referrals/{rid}/consent", json={"status": "withdrawn", "legal_basis": "public_task"},
                        headers=auth(REFERRER)),
    ]


@pytest.mark.parametrize("fault", ["broken_append", "database_refuses_log_writes"])
def test_no_log_no_data_and_no_change(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
    request: pytest.FixtureRequest, fault: str,
) -> None:
    rid = post_referral()["id"]
    app_client.post(f"/v1/referrals/{rid}/notes", json={"classification": "shared", "text": "secret-note"},
                    headers=auth(REFERRER))
    for client_id in (REFERRER, COORDINATOR):
        auth(client_id)  # tokens first: issuing one is not what is under test
    before = counts(state)
    request.getfixturevalue(fault)
    for response in _reads(app_client, auth, rid) + _writes(app_client, auth, rid):
        assert response.status_code == 503, (response.request.url, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        for leaked in ("Yasmin", "Haddad", "secret-note", "narrative", "al-mina"):
            assert leaked not in response.text
    assert counts(state) == before


def test_a_commit_that_fails_sends_nothing(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from app.db import DedicatedConnection

    rid = post_referral()["id"]
    headers = auth(REFERRER, **PURPOSE)

    def fail(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    def fail_log_commit(driver: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    # A session's commit (a write and its entry) and the log committer's (a read's entry).
    monkeypatch.setattr(Session, "commit", fail)
    monkeypatch.setattr(DedicatedConnection, "_commit", staticmethod(fail_log_commit))
    for response in (
        app_client.get(f"/v1/referrals/{rid}", headers=headers),
        app_client.get(f"/v1/referrals/{rid}/notes", headers=headers),
        app_client.post(f"/v1/referrals/{rid}/transitions", json={"to": "withdrawn", "reason": "moved away"},
                        headers=headers),
    ):
        assert response.status_code == 503, (response.request.url, response.text)
        assert "Yasmin" not in response.text
