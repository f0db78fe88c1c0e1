"""The read path: read-only units of work, group-committed log entries, writers in turn."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
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


class TestTheLoopsOwnRead:
    """GET /v1/referrals/{id} reads on the event loop's own connection (app.db.LoopReads), the client
    check folded into the read's first statement: the same answers as the Session's read."""

    def test_it_loads_what_the_sessions_read_loads(
        self, state: AppState, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        from app.referrals import snapshot

        rid = post_referral()["id"]
        move(rid, "triaged", "accepted", ("assigned", {"agencies": ["youth-ngo-bridges"]}))
        with state.read_sessions() as session:
            expected = snapshot.load(session, rid)
        with state.loop_reads.snapshot() as connection:
            read = snapshot.load_lean(connection, state.engine.dialect, REFERRER, rid)
        assert read.client_enabled and read.refusal is None
        assert read.referral == expected  # datetimes in UTC, JSON lists, booleans, sealed bytes alike
        assert [step.to_status for step in read.referral.history] == ["submitted", "triaged", "accepted", "assigned"]
        assert read.referral.assigned_agencies == ["youth-ngo-bridges"]
        assert read.referral.created_at.tzinfo is not None

    def test_a_disabled_client_reads_nothing_whatever_the_record(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        headers = auth(COORDINATOR, **PURPOSE)
        assert app_client.get(f"/v1/referrals/{rid}", headers=headers).status_code == 200
        before = disclosures_to(state, "city-municipality")
        app_client.post("/v1/admin/clients/municipality-coordinator/disable", headers=auth("municipality-operator"))
        for path in (f"/v1/referrals/{rid}", "/v1/referrals/ref_doesnotexist"):
            response = app_client.get(path, headers=headers)
            assert response.status_code == 401, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert "Yasmin" not in response.text
        assert disclosures_to(state, "city-municipality") == before

    def test_an_unknown_client_is_refused_before_a_missing_record_is_named(self, state: AppState) -> None:
        from app.referrals import snapshot

        with state.loop_reads.snapshot() as connection:
            read = snapshot.load_lean(connection, state.engine.dialect, "no-such-client", "ref_doesnotexist")
        assert not read.client_enabled and read.referral is None and read.refusal is None

    def test_its_connection_cannot_write(self, state: AppState) -> None:
        with pytest.raises(Exception, match="(?i)read.?only|readonly|attempt to write"), \
                state.loop_reads.snapshot() as connection:
            connection.cursor().execute("UPDATE agencies SET name = 'changed'")
        with state.engine.connect() as conn:
            assert "changed" not in [row[0] for row in conn.execute(text("SELECT name FROM agencies"))]
        with state.loop_reads.snapshot() as connection:  # a failed snapshot leaves a usable connection
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            assert cursor.fetchone()[0] == 1

    def test_a_read_does_not_hold_up_a_writer(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
    ) -> None:
        """Between reads the loop's connection holds no snapshot, so writers and checkpoints go on."""
        rid = post_referral()["id"]
        assert app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE)).status_code == 200
        with state.sessions() as session:  # BEGIN IMMEDIATE on SQLite; a leaked read would not stop it,
            session.execute(text("UPDATE agencies SET name = name"))  # but a leaked write lock would
            session.commit()
        if state.engine.dialect.name == "sqlite":
            import sqlite3

            # A truncating checkpoint reports busy while any reader holds a snapshot.
            with closing(sqlite3.connect(str(state.engine.url.database), isolation_level=None)) as conn:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0


def test_case_data_is_sent_as_json_would_send_it(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
) -> None:
    """Responses carrying case data are encoded with orjson: byte for byte what JSONResponse sends."""
    import json

    rid = post_referral(subject={"given_name": "ياسمين", "family_name": "Haddad-Testperson",
                                 "date_of_birth": "2009-03-14", "identifiers": []})["id"]
    response = app_client.get(f"/v1/referrals/{rid}", headers=auth(COORDINATOR, **PURPOSE))
    assert response.status_code == 200
    assert "ياسمين" in response.text
    assert response.content == json.dumps(response.json(), ensure_ascii=False, separators=(",", ":")).encode()
