"""AuditLog.append: sequence, chain, encryption, blind indexes, fail-closed, concurrency."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from audit_support import OTHER_SUBJECT, SUBJECT, event, fill, row, sign
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from app.audit import live, merkle, queries, store
from app.audit.leaf import ROW_COLUMNS, leaf_bytes, to_us
from app.audit.models import AuditEntry
from app.audit.queries import EntryFilter
from app.audit.service import AuditUnavailable
from app.crypto.aead import DecryptionError
from app.crypto.keyring import KeyKind
from app.db import transaction
from app.state import AppState


def entries(state: AppState) -> list[AuditEntry]:
    with state.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def find(state: AppState, **filters: object) -> list[queries.EntryView]:
    with state.sessions() as session:
        return queries.search(
            session.connection(), state.audit.sealer, EntryFilter(**filters), after=None, limit=1000
        )  # type: ignore[arg-type]


class TestSequence:
    def test_seq_starts_at_zero_and_has_no_gaps(self, service: AppState) -> None:
        assert fill(service, 5) == [0, 1, 2, 3, 4]
        with transaction(service.sessions) as session:
            assert service.audit.append_many(session, [event(), event()]) == [5, 6]
            assert service.audit.append_many(session, []) == []
        assert [e.seq for e in entries(service)] == list(range(7))

    def test_each_entry_chains_to_the_previous_leaf(self, service: AppState) -> None:
        fill(service, 4)
        stored = entries(service)
        assert stored[0].prev_hash == bytes(32)
        for before, after in zip(stored, stored[1:], strict=False):
            assert after.prev_hash == before.leaf_hash

    def test_leaf_hash_is_over_the_stored_columns(self, service: AppState) -> None:
        fill(service, 3)
        for entry in entries(service):
            columns = tuple(getattr(entry, name) for name in ROW_COLUMNS)
            assert entry.leaf_hash == merkle.leaf_hash(leaf_bytes(columns))

    def test_head_and_nodes_describe_the_tree(self, service: AppState) -> None:
        fill(service, 11)
        reference = merkle.TreeBuilder()
        reference.extend([e.leaf_hash for e in entries(service)])
        with service.sessions() as session:
            conn = session.connection()
            head = store.read_head(conn)
            assert head.size == 11
            assert merkle.root_hash(11, store.DbNodeStore(conn)) == reference.root()
            assert head.peaks == tuple(h for _, h in reference.peaks())

    def test_a_rolled_back_append_leaves_no_trace_and_no_gap(self, service: AppState) -> None:
        fill(service, 2)
        with pytest.raises(RuntimeError), transaction(service.sessions) as session:
            service.audit.append(session, event())
            raise RuntimeError("the change failed")
        assert fill(service, 1) == [2]
        assert live.verify_database(service.sessions, service.audit.signer).ok

    def test_time_never_runs_backwards(self, service: AppState) -> None:
        later = datetime(2030, 1, 1, tzinfo=UTC)
        with transaction(service.sessions) as session:
            service.audit.append(session, event(), now=later)
            service.audit.append(session, event(), now=later - timedelta(days=1))
        assert [e.time_us for e in entries(service)] == [to_us(later)] * 2


class TestConfidentiality:
    def test_details_are_sealed_and_open_for_auditors(self, service: AppState) -> None:
        fill(service, 1)
        stored = entries(service)[0]
        assert b"weekly case review" not in stored.details
        assert b"ref_0000" not in stored.details
        (found,) = find(service)
        assert found.details is not None
        assert found.details["justification"] == "weekly case review"
        assert found.key_id == service.keyring.active(KeyKind.audit).id

    def test_the_subject_id_is_never_stored(self, service: AppState, database_url: str) -> None:
        fill(service, 2)
        for entry in entries(service):
            values = [getattr(entry, c.key) for c in AuditEntry.__table__.columns]
            assert all(SUBJECT not in str(v) for v in values)
            assert entry.subject_index == service.blind_index.digest("audit-subject", SUBJECT)
        if database_url.startswith("sqlite"):
            service.engine.dispose()
            path = Path(database_url.removeprefix("sqlite:///"))
            wal = Path(f"{path}-wal")
            blob = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
            assert SUBJECT.encode() not in blob

    def test_ciphertext_moved_to_another_row_does_not_open(self, service: AppState) -> None:
        fill(service, 2)
        first, second = entries(service)
        columns = [getattr(second, name) for name in ROW_COLUMNS[2:12]]
        from app.audit.leaf import clear_text, details_aad

        aad = details_aad(second.seq, second.time_us, clear_text(columns))
        with pytest.raises(DecryptionError):
            service.audit.sealer.open(first.key_id, first.details, aad)

    def test_audit_key_rotation_keeps_old_entries_readable(self, service: AppState) -> None:
        fill(service, 1)
        old = service.keyring.active(KeyKind.audit).id
        new = service.keyring.rotate(KeyKind.audit).id
        fill(service, 1)
        found = find(service)
        assert [e.key_id for e in found] == [old, new]
        assert all(e.details is not None for e in found)

    def test_blind_index_rotation_keeps_subject_queries_whole(self, service: AppState) -> None:
        fill(service, 2)
        fill(service, 1, subject_id=OTHER_SUBJECT)
        service.keyring.rotate(KeyKind.blind_index)
        fill(service, 1)
        found = find(service, subject_id=SUBJECT)
        assert [e.seq for e in found] == [0, 1, 3]
        assert len({e.subject_index_key_id for e in found}) == 2
        assert [e.seq for e in find(service, subject_id=OTHER_SUBJECT)] == [2]


class TestFailClosed:
    def test_injected_fault_raises_audit_unavailable_and_writes_nothing(
        self, service: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fill(service, 1)

        def broken(*_: object) -> list[int]:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))

        monkeypatch.setattr(service.audit, "_write", broken)
        with pytest.raises(AuditUnavailable) as caught, transaction(service.sessions) as session:
            service.audit.append(session, event())
        assert caught.value.status == 503
        assert "nothing was disclosed" in caught.value.detail
        assert isinstance(caught.value.__cause__, OperationalError)
        monkeypatch.undo()
        assert len(entries(service)) == 1

    def test_a_database_that_refuses_the_insert_fails_closed(
        self, service: AppState, database_url: str
    ) -> None:
        refuse = {
            "sqlite": [
                "CREATE TRIGGER t_refuse BEFORE INSERT ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            ],
            "postgresql": [
                "CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
                "CREATE TRIGGER t_refuse BEFORE INSERT ON audit_entries "
                "FOR EACH ROW EXECUTE FUNCTION t_refuse()",
            ],
        }
        with service.engine.begin() as conn:
            for statement in refuse[conn.dialect.name]:
                conn.execute(text(statement))
        try:
            with pytest.raises(AuditUnavailable), transaction(service.sessions) as session:
                service.audit.append(session, event())
        finally:
            with service.engine.begin() as conn:
                conn.execute(
                    text(
                        "DROP TRIGGER t_refuse"
                        + (" ON audit_entries" if conn.dialect.name == "postgresql" else "")
                    )
                )
        assert entries(service) == []

    @pytest.mark.parametrize(
        "bad",
        [
            {"event_type": "gossip"},
            {"decision": "maybe"},
            {"actor_agency": "evil\nagency"},
            {"purpose": "x" * 65},
            {"subject_id": ""},
            {"details": {"when": object()}},
            {"details": ["not", "a", "mapping"]},
        ],
    )
    def test_events_the_log_cannot_hold_fail_closed(self, service: AppState, bad: dict) -> None:
        with pytest.raises(AuditUnavailable) as caught, transaction(service.sessions) as session:
            service.audit.append(session, event(**bad))
        assert caught.value.__cause__ is not None
        assert entries(service) == []

    def test_a_missing_audit_key_fails_closed(
        self, service: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.crypto.keyring import KeyringError

        def no_key(kind: KeyKind) -> object:
            raise KeyringError(f"no active {kind.value} key in the keyring")

        monkeypatch.setattr(service.keyring, "active", no_key)
        with pytest.raises(AuditUnavailable), transaction(service.sessions) as session:
            service.audit.append(session, event())

    def test_details_are_canonical_json(self, service: AppState) -> None:
        when = datetime(2026, 1, 1, tzinfo=UTC)
        with transaction(service.sessions) as session:
            service.audit.append(session, event(details={"b": 1, "a": {"y", "x"}, "at": when}))
        (found,) = find(service)
        assert found.details == {"a": ["x", "y"], "at": "2026-01-01T00:00:00+00:00", "b": 1}
        assert json.dumps(found.details)


class TestGroupCommit:
    def test_record_outside_a_transaction_is_durable_on_return(self, service: AppState) -> None:
        with service.sessions() as session:
            seq = service.audit.record(session, event())
            assert not session.in_transaction()
        with service.sessions() as other:
            assert other.get(AuditEntry, seq) is not None

    def test_record_inside_a_transaction_is_append(self, service: AppState) -> None:
        with pytest.raises(RuntimeError), transaction(service.sessions) as session:
            session.connection()
            service.audit.record(session, event())
            raise RuntimeError("rolled back")
        assert entries(service) == []

    def test_concurrent_records_share_commits_without_gaps(self, service: AppState) -> None:
        seqs: list[int] = []
        lock = threading.Lock()

        def writer() -> None:
            for _ in range(25):
                with service.sessions() as session:
                    seq = service.audit.record(session, event())
                with lock:
                    seqs.append(seq)

        threads = [threading.Thread(target=writer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(seqs) == list(range(200))
        sign(service)
        assert live.verify_database(service.sessions, service.audit.signer).ok

    def test_a_failed_batch_fails_every_caller(
        self, service: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*_: object) -> list[int]:
            raise OperationalError("INSERT", {}, Exception("database is locked"))

        monkeypatch.setattr(service.audit, "_write", broken)
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                with service.sessions() as session:
                    service.audit.record(session, event())
            except AuditUnavailable as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(errors) == 6
        monkeypatch.undo()
        assert entries(service) == []


class TestAsyncGroupCommit:
    """The committer thread that handlers on the event loop await (app.audit.group_commit)."""

    def test_concurrent_awaits_are_durable_on_return_in_order_without_gaps(self, service: AppState) -> None:
        async def reader(n: int) -> list[int]:
            seqs = []
            for _ in range(n):
                with service.read_sessions() as session:
                    session.connection()  # a read in progress: its snapshot must end first
                    got = await service.audit.record_many_async(session, [event(), event()])
                    assert not session.in_transaction()
                with service.sessions() as other:  # durable: another unit of work sees it
                    assert [other.get(AuditEntry, seq) is not None for seq in got] == [True, True]
                seqs += got
                assert got[1] == got[0] + 1  # one caller's entries stay together
            return seqs

        async def main() -> list[list[int]]:
            return await asyncio.gather(*(reader(10) for _ in range(8)))

        results = asyncio.run(main())
        assert sorted(seq for seqs in results for seq in seqs) == list(range(160))
        sign(service)
        assert live.verify_database(service.sessions, service.audit.signer).ok

    def test_a_failed_batch_fails_every_awaiting_caller_and_writes_nothing(
        self, service: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*_: object) -> list[int]:
            raise OperationalError("INSERT", {}, Exception("database is locked"))

        monkeypatch.setattr(service.audit, "_write", broken)

        async def reader() -> BaseException | None:
            with service.read_sessions() as session:
                try:
                    await service.audit.record_many_async(session, [event()])
                except AuditUnavailable as exc:
                    return exc
            return None

        async def main() -> list[BaseException | None]:
            return await asyncio.gather(*(reader() for _ in range(6)))

        outcomes = asyncio.run(main())
        assert all(isinstance(o, AuditUnavailable) for o in outcomes)
        monkeypatch.undo()
        assert entries(service) == []

    def test_the_committer_gives_its_connection_back_when_the_log_is_idle(self, service: AppState) -> None:
        """Its one DBAPI connection is kept while entries keep coming, and back in the pool after."""
        checked_out = service.engine.pool.checkedout()  # type: ignore[attr-defined]

        async def main() -> list[list[int]]:
            with service.read_sessions() as session:
                return await asyncio.gather(*(service.audit.record_many_async(session, [event()]) for _ in range(20)))

        assert sorted(seq for seqs in asyncio.run(main()) for seq in seqs) == list(range(20))
        deadline = time.monotonic() + 5
        while service.engine.pool.checkedout() > checked_out and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        assert service.engine.pool.checkedout() == checked_out  # type: ignore[attr-defined]

    def test_a_connection_that_breaks_fails_its_batch_and_the_next_batch_opens_another(
        self, service: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.db import DedicatedConnection

        commit = DedicatedConnection.__dict__["_commit"]  # the staticmethod itself

        def break_then_fail(driver: Any) -> None:
            driver.close()  # the server went away mid-transaction
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

        monkeypatch.setattr(DedicatedConnection, "_commit", staticmethod(break_then_fail))
        with service.sessions() as session, pytest.raises(AuditUnavailable):
            service.audit.record(session, event())
        monkeypatch.setattr(DedicatedConnection, "_commit", commit)
        assert entries(service) == []
        with service.sessions() as session:
            assert service.audit.record(session, event()) == 0  # nothing of the failed batch was kept
        sign(service)
        assert live.verify_database(service.sessions, service.audit.signer).ok

    def test_sync_and_async_callers_share_one_committer(self, service: AppState) -> None:
        """Worker threads (sync) and the event loop (async) append through the same thread, in one order."""
        seqs: list[int] = []

        def writer() -> None:
            for _ in range(10):
                with service.sessions() as session:
                    seqs.append(service.audit.record(session, event()))

        async def reader() -> None:
            for _ in range(10):
                with service.read_sessions() as session:
                    seqs.extend(await service.audit.record_many_async(session, [event()]))

        async def main() -> None:
            await asyncio.gather(reader(), reader(), asyncio.to_thread(writer), asyncio.to_thread(writer))

        asyncio.run(main())
        assert sorted(seqs) == list(range(40))
        assert len(service.audit._committers) == 1  # noqa: SLF001 - one committer per engine and process
        sign(service)
        assert live.verify_database(service.sessions, service.audit.signer).ok

    def test_only_read_only_sessions_are_accepted(self, service: AppState) -> None:
        with service.sessions() as session, pytest.raises(TypeError):
            asyncio.run(service.audit.record_many_async(session, [event()]))
        assert entries(service) == []


class TestConcurrency:
    def test_threads_appending_at_once_leave_no_gaps_or_forks(self, service: AppState) -> None:
        results: list[list[int]] = []

        def writer() -> None:
            results.append(fill(service, 20))

        threads = [threading.Thread(target=writer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(s for r in results for s in r) == list(range(160))
        sign(service)
        report = live.verify_database(service.sessions, service.audit.signer)
        assert report.ok, report.problem
        assert report.entries == 160

    def test_processes_appending_at_once_on_postgresql(
        self, service: AppState, settings: object, database_url: str
    ) -> None:
        if not database_url.startswith("postgresql"):
            pytest.skip("several processes share one log on PostgreSQL")
        import multiprocessing

        from audit_support import append_in_process

        args = (
            database_url,
            str(service.settings.data_dir),
            str(service.settings.resolved_keyring_path),
            40,
        )
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            results = pool.map(append_in_process, [args] * 4)
        fill(service, 5)
        assert sorted(s for r in results for s in r) == list(range(160))
        sign(service)
        report = live.verify_database(service.sessions, service.audit.signer)
        assert report.ok, report.problem
        assert report.entries == 165


class TestAppendOnly:
    def test_the_code_has_no_update_or_delete_of_entries(self) -> None:
        package = Path(__file__).resolve().parents[2] / "app" / "audit"
        source = "".join(p.read_text() for p in package.glob("*.py"))
        for table in ("entries", "nodes", "checkpoints"):
            assert f"update({table})" not in source and f"delete({table})" not in source
        assert "delete(" not in source

    def test_postgresql_refuses_update_and_delete(
        self, service: AppState, database_url: str
    ) -> None:
        if not database_url.startswith("postgresql"):
            pytest.skip("the append-only trigger is PostgreSQL's")
        from sqlalchemy.exc import ProgrammingError

        fill(service, 2)
        sign(service)
        for statement in (
            "UPDATE audit_entries SET purpose = 'changed' WHERE seq = 0",
            "DELETE FROM audit_entries WHERE seq = 1",
            "UPDATE audit_nodes SET hash = hash",
            "DELETE FROM audit_checkpoints",
        ):
            with pytest.raises(ProgrammingError, match="append-only"), service.engine.begin() as c:
                c.execute(text(statement))
        with service.engine.connect() as conn:
            assert row(conn, 0)["purpose"] == "safeguarding_assessment"
