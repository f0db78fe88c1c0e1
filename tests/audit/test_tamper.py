"""Tampering with the stored log or its export is caught by `casebridge audit verify`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from audit_support import (
    attacker,
    cli,
    fill,
    flip_byte,
    rebuild_after,
    row,
    set_columns,
    sign,
    verifier_keys,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, text

from app.audit import export
from app.audit.leaf import ROW_COLUMNS, leaf_bytes
from app.audit.note import parse_checkpoint, sign_checkpoint
from app.state import AppState

ENTRIES = 16
SIGNED = 12  # checkpoints at 4 and 12; entries 12..15 are chained but not yet signed


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, service: AppState, database_url: str) -> Path:
    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", database_url)
    monkeypatch.setenv("CASEBRIDGE_AUTO_MIGRATE", "false")
    monkeypatch.delenv("CASEBRIDGE_KEYRING_PATH", raising=False)
    return service.settings.data_dir


@pytest.fixture
def files(env: Path, service: AppState, tmp_path: Path) -> dict[str, Path]:
    """A log of 16 entries, checkpoints at 4 and 12 (saved), keys, and a clean export."""
    paths = {
        "checkpoint": tmp_path / "checkpoint-12.txt",
        "key": tmp_path / "keys.txt",
        "export": tmp_path / "log.jsonl",
        "checkpoint-4": tmp_path / "checkpoint-4.txt",
    }
    fill(service, 4)
    paths["checkpoint-4"].write_text(sign(service))
    fill(service, SIGNED - 4)
    paths["checkpoint"].write_text(sign(service))
    paths["key"].write_text(verifier_keys(service))
    fill(service, ENTRIES - SIGNED)
    write_export(service, paths["export"])
    assert verify_live()[0] == 0
    assert verify_offline(paths)[0] == 0
    return paths


def write_export(state: AppState, path: Path) -> None:
    with path.open("wb") as fh:
        for line in export.jsonl_lines(export.iter_rows(state.sessions, 10_000)):
            fh.write(line)


def verify_live(*extra: str) -> tuple[int, str]:
    code, _, stderr = cli("audit", "verify", *extra)
    return code, stderr


def verify_offline(paths: dict[str, Path], *checkpoints: Path) -> tuple[int, str]:
    given = [a for c in checkpoints or [paths["checkpoint"]] for a in ("--checkpoint", str(c))]
    code, _, stderr = cli(
        "audit", "verify", "--export", str(paths["export"]), *given, "--key", str(paths["key"])
    )
    return code, stderr


def tamper(database_url: str, change: Callable[[Connection], None]) -> None:
    with attacker(database_url) as conn:
        change(conn)


def edit_export(path: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in change(records)))


def failed_at(result: tuple[int, str], seq: int, *words: str) -> None:
    code, stderr = result
    assert code == 1, stderr
    assert f"verification FAILED at seq {seq}:" in stderr, stderr
    for word in words:
        assert word in stderr, stderr


class TestOneChangedByte:
    def test_in_the_stored_details(self, files: dict, database_url: str) -> None:
        tamper(
            database_url,
            lambda c: set_columns(c, 5, {"details": flip_byte(row(c, 5)["details"], 20)}),
        )
        failed_at(verify_live(), 5, "do not match its leaf hash")

    def test_in_a_stored_clear_column(self, files: dict, database_url: str) -> None:
        tamper(database_url, lambda c: set_columns(c, 7, {"recipient_agency": "city-municipalitz"}))
        failed_at(verify_live(), 7, "altered")

    def test_in_the_stored_time(self, files: dict, database_url: str) -> None:
        tamper(database_url, lambda c: set_columns(c, 3, {"time_us": row(c, 3)["time_us"] + 1}))
        failed_at(verify_live(), 3)

    def test_in_the_export(self, files: dict) -> None:
        def change(records: list[dict]) -> list[dict]:
            details = base64.b64decode(records[5]["details"])
            records[5]["details"] = base64.b64encode(flip_byte(details, 3)).decode()
            return records

        edit_export(files["export"], change)
        failed_at(verify_offline(files), 5, "exported leaf bytes do not match")

    def test_in_the_export_with_a_recomputed_leaf(self, files: dict) -> None:
        def change(records: list[dict]) -> list[dict]:
            records[5]["purpose"] = "statistics"
            columns = [records[5][c] for c in ROW_COLUMNS]
            for name in ("details", "prev_hash"):
                columns[ROW_COLUMNS.index(name)] = base64.b64decode(records[5][name])
            records[5]["leaf"] = base64.b64encode(leaf_bytes(columns)).decode()
            return records

        edit_export(files["export"], change)
        failed_at(verify_offline(files), 5, "do not match its leaf hash")


class TestDeletedEntry:
    def test_stored(self, files: dict, database_url: str) -> None:
        tamper(database_url, lambda c: c.execute(text("DELETE FROM audit_entries WHERE seq = 4")))
        failed_at(verify_live(), 4, "missing")

    def test_exported(self, files: dict) -> None:
        edit_export(files["export"], lambda r: r[:4] + r[5:])
        failed_at(verify_offline(files), 4, "missing")


class TestSwappedEntries:
    def test_stored(self, files: dict, database_url: str) -> None:
        def swap(conn: Connection) -> None:
            three, four = row(conn, 3), row(conn, 4)
            set_columns(conn, 3, {k: v for k, v in four.items() if k != "seq"})
            set_columns(conn, 4, {k: v for k, v in three.items() if k != "seq"})

        tamper(database_url, swap)
        failed_at(verify_live(), 3)

    def test_exported(self, files: dict) -> None:
        edit_export(files["export"], lambda r: [*r[:3], r[4], r[3], *r[5:]])
        failed_at(verify_offline(files), 3, "out of order")


class TestTruncatedTail:
    def test_the_stored_checkpoint_catches_it(self, files: dict, database_url: str) -> None:
        tamper(database_url, lambda c: c.execute(text("DELETE FROM audit_entries WHERE seq >= 8")))
        failed_at(verify_live(), 8, "truncated")

    def test_a_saved_checkpoint_catches_a_thorough_attacker(
        self, files: dict, database_url: str, service: AppState
    ) -> None:
        def cover_up(conn: Connection) -> None:
            conn.execute(text("DELETE FROM audit_entries WHERE seq >= 8"))
            conn.execute(text("DELETE FROM audit_checkpoints WHERE tree_size > 8"))
            conn.execute(text("DELETE FROM audit_nodes"))
            conn.execute(text("UPDATE audit_head SET size = 8"))
            rebuild_after(conn, 8)

        tamper(database_url, cover_up)
        assert verify_live()[0] == 0  # nothing left in the database contradicts it ...
        failed_at(verify_live("--checkpoint", str(files["checkpoint"])), 8, "truncated")

    def test_exported(self, files: dict) -> None:
        edit_export(files["export"], lambda r: r[:10])
        failed_at(verify_offline(files), 10, "entries 10..11 were removed")


class TestResignedCheckpoint:
    def forged(self, note: str) -> str:
        parsed = parse_checkpoint(note)
        key = Ed25519PrivateKey.generate()
        return sign_checkpoint(
            parsed.origin,
            parsed.tree_size,
            parsed.root_hash,
            [(parsed.origin, key)],
            parsed.extensions,
        )

    def test_stored(self, files: dict, database_url: str) -> None:
        def resign(conn: Connection) -> None:
            note = conn.execute(text("SELECT note FROM audit_checkpoints WHERE tree_size = 12"))
            conn.execute(
                text("UPDATE audit_checkpoints SET note = :n WHERE tree_size = 12"),
                {"n": self.forged(note.scalar_one())},
            )

        tamper(database_url, resign)
        code, stderr = verify_live()
        assert code == 1 and "no signature by a known key" in stderr, stderr

    def test_offline(self, files: dict, tmp_path: Path) -> None:
        forged = tmp_path / "forged.txt"
        forged.write_text(self.forged(files["checkpoint"].read_text()))
        code, stderr = verify_offline(files, forged)
        assert code == 1 and "no signature by a known key" in stderr, stderr

    def test_an_altered_checkpoint_body(self, files: dict, tmp_path: Path) -> None:
        altered = tmp_path / "altered.txt"
        text_ = files["checkpoint"].read_text()
        altered.write_text(text_.replace("\n12\n", "\n11\n", 1))
        code, stderr = verify_offline(files, altered)
        assert code == 1 and "bad signature" in stderr, stderr


class TestReplacedEntryWithRecomputedHashes:
    def replace(self, conn: Connection) -> None:
        set_columns(conn, 5, {"recipient_agency": "city-community-police"})
        rebuild_after(conn, 5)

    def test_stored(self, files: dict, database_url: str) -> None:
        tamper(database_url, self.replace)
        failed_at(verify_live(), 4, "seq 4..11", "altered or replaced after it was signed")

    def test_exported(self, files: dict, database_url: str, service: AppState) -> None:
        tamper(database_url, self.replace)
        write_export(service, files["export"])
        failed_at(verify_offline(files), 0, "seq 0..11")
        failed_at(verify_offline(files, files["checkpoint-4"], files["checkpoint"]), 4, "seq 4..11")


class TestDerivedData:
    def test_altered_tree_node(self, files: dict, database_url: str) -> None:
        tamper(
            database_url,
            lambda c: c.execute(
                text("UPDATE audit_nodes SET hash = :h WHERE level = 2 AND node_index = 1"),
                {"h": bytes(32)},
            ),
        )
        failed_at(verify_live(), 4, "node (level 2, index 1) is altered", "seq 4..7")

    def test_missing_tree_node(self, files: dict, database_url: str) -> None:
        tamper(
            database_url,
            lambda c: c.execute(text("DELETE FROM audit_nodes WHERE level = 3 AND node_index = 1")),
        )
        failed_at(verify_live(), 8, "node (level 3, index 1) is missing")

    def test_an_entry_written_around_the_log(
        self, files: dict, database_url: str, service: AppState
    ) -> None:
        def sneak(conn: Connection) -> None:
            values = {**row(conn, 15), "seq": 99}
            names = ", ".join(values)
            conn.execute(
                text(
                    f"INSERT INTO audit_entries ({names}) VALUES "  # noqa: S608
                    f"({', '.join(':' + n for n in values)})"
                ),
                values,
            )

        tamper(database_url, sneak)
        failed_at(verify_live(), 99, "beyond the head row")

    def test_missing_head_row(self, files: dict, database_url: str) -> None:
        tamper(database_url, lambda c: c.execute(text("DELETE FROM audit_head")))
        code, stderr = verify_live()
        assert code == 1 and "head row is missing" in stderr, stderr

    def test_altered_head(self, files: dict, database_url: str) -> None:
        tamper(database_url, lambda c: c.execute(text("UPDATE audit_head SET size = 20")))
        failed_at(verify_live(), ENTRIES, "head row counts 20")

    def test_malformed_export_line(self, files: dict) -> None:
        edit_export(files["export"], lambda r: [*r[:2], {"seq": 2}, *r[3:]])
        failed_at(verify_offline(files), 2, "line 3 is not a valid export record")
