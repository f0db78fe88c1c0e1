"""The read path: read-only units of work, group-committed log entries, writers in turn."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from support.referrals import COORDINATOR, PURPOSE, REFERRER

from app.audit import live
from app.audit.models import AuditEntry
from app.state import AppState

Auth = Callable[..., dict[str, str]]


def disclosures_to(state: AppState, agency: str) -> int:
    with state.engine.connect() as conn:
        return int(conn.execute(
            select(func.count()).select_from(AuditEntry)
            .where(AuditEntry.event_type == "disclosure", AuditEntry.recipient_agency == agency)
        ).scalar_one())


def test_concurrent_reads_each_leave_their_entry_and_the_log_verifies(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
) -> None:
    rid = post_referral()["id"]
    headers = auth(COORDINATOR, **PURPOSE)
    before = disclosures_to(state, "city-municipality")

    def read(_: int) -> int:
        response = app_client.get(f"/v1/referrals/{rid}", headers=headers)
        assert response.headers.get("x-granted-view"), response.text
        return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(read, range(48)))
    assert statuses == [200] * 48
    assert disclosures_to(state, "city-municipality") - before == 48
    assert live.verify_database(state.sessions, state.audit.signer).ok


def test_a_read_only_unit_of_work_cannot_write(state: AppState) -> None:
    with state.read_sessions() as session, pytest.raises(DBAPIError):
        session.execute(text("UPDATE agencies SET name = 'changed'"))
    with state.engine.connect() as conn:
        assert "changed" not in [row[0] for row in conn.execute(text("SELECT name FROM agencies"))]


def test_a_failed_read_leaves_no_transaction_behind(
    app_client: TestClient, auth: Auth, state: AppState
) -> None:
    """A 404 in the middle of a read session: the next writer still gets the database."""
    response = app_client.get("/v1/referrals/ref_doesnotexist", headers=auth(REFERRER, **PURPOSE))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    with state.sessions() as session:  # a writer: on SQLite, BEGIN IMMEDIATE would wait on a leak
        session.execute(text("UPDATE agencies SET name = name"))
        session.commit()


def test_a_second_writer_waits_for_the_first_to_commit(state: AppState, database_url: str) -> None:
    """A second writer starts only once the first one's connection is back in the pool."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the writer queue is SQLite's (PostgreSQL has row locks)")
    order: list[str] = []
    first_in = threading.Event()
    second_started = threading.Event()

    def first() -> None:
        with state.sessions() as session:
            session.execute(text("UPDATE agencies SET name = name"))
            order.append("first wrote")
            first_in.set()
            second_started.wait(timeout=5)
            order.append("first commits")
            session.commit()

    def second() -> None:
        first_in.wait(timeout=5)
        second_started.set()
        with state.sessions() as session:
            session.execute(text("UPDATE agencies SET name = name"))
            order.append("second wrote")
            session.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert order == ["first wrote", "first commits", "second wrote"]


def test_a_committed_writer_that_keeps_its_connection_does_not_hold_up_the_next(
    state: AppState, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the writer queue is SQLite's (PostgreSQL has row locks)")
    from app.db import WriterQueue

    monkeypatch.setattr(WriterQueue, "TIMEOUT_SECONDS", 2.0)  # a held turn would fail, not hang
    held = state.engine.connect()
    try:
        held.execute(text("UPDATE agencies SET name = name"))
        held.commit()  # the transaction is over; the connection is still checked out
        with state.sessions() as session:
            session.execute(text("UPDATE agencies SET name = name"))
            session.commit()
    finally:
        held.close()
