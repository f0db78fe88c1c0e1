"""casebridge audit verify | checkpoint | verifier-key | export, on a healthy log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_support import cli, fill, sign

from app.audit.note import verify_checkpoint
from app.state import AppState


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, service: AppState, database_url: str) -> Path:
    """The CLI pointed at the same database and keyring as ``service``."""
    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", database_url)
    monkeypatch.setenv("CASEBRIDGE_AUTO_MIGRATE", "false")
    monkeypatch.delenv("CASEBRIDGE_KEYRING_PATH", raising=False)
    return service.settings.data_dir


class TestVerifyLive:
    def test_a_healthy_log_verifies(self, env: Path, service: AppState) -> None:
        fill(service, 9)
        sign(service)
        fill(service, 2)
        code, stdout, stderr = cli("audit", "verify")
        assert code == 0, stderr
        assert "ok: 11 entries verified" in stdout and "entries/s" in stdout
        assert "largest signed tree size 9 (2 newer entries chained but not yet signed)" in stdout
        assert "signed by: casebridge.example/disclosure-log+" in stdout

    def test_json_report(self, env: Path, service: AppState) -> None:
        fill(service, 3)
        sign(service)
        code, stdout, _ = cli("audit", "verify", "--json")
        report = json.loads(stdout)
        assert code == 0
        assert (report["ok"], report["entries"], report["signed_size"]) == (True, 3, 3)
        assert report["entries_per_second"] > 0

    def test_an_empty_log_verifies(self, env: Path) -> None:
        code, stdout, _ = cli("audit", "verify")
        assert code == 0 and "ok: 0 entries" in stdout

    def test_pinned_keys_and_saved_checkpoints(
        self, env: Path, service: AppState, tmp_path: Path
    ) -> None:
        fill(service, 4)
        saved = tmp_path / "checkpoint.txt"
        saved.write_text(sign(service))
        keys = tmp_path / "keys.txt"
        assert cli("audit", "verifier-key")[0] == 0
        keys.write_text(cli("audit", "verifier-key")[1])
        fill(service, 2)
        code, stdout, stderr = cli(
            "audit", "verify", "--checkpoint", str(saved), "--key", str(keys)
        )
        assert code == 0, stderr
        assert "checkpoints: 2 matched" in stdout


class TestCheckpointAndKeys:
    def test_checkpoint_prints_a_signed_note(self, env: Path, service: AppState) -> None:
        fill(service, 2)
        code, note, _ = cli("audit", "checkpoint")
        code_keys, keys, _ = cli("audit", "verifier-key")
        assert code == code_keys == 0
        assert verify_checkpoint(note, keys.splitlines()).tree_size == 2


class TestExportAndOfflineVerify:
    def test_round_trip(self, env: Path, service: AppState, tmp_path: Path) -> None:
        fill(service, 7)
        export = tmp_path / "log.jsonl"
        code, _, stderr = cli("audit", "export", "--output", str(export))
        assert code == 0 and "exported 7 entries" in stderr
        (tmp_path / "cp.txt").write_text(cli("audit", "checkpoint")[1])  # covers the export entry
        (tmp_path / "keys.txt").write_text(cli("audit", "verifier-key")[1])
        code, _, stderr = cli(
            "audit",
            "verify",
            "--export",
            str(export),
            "--checkpoint",
            str(tmp_path / "cp.txt"),
            "--key",
            str(tmp_path / "keys.txt"),
        )
        assert code == 1 and "seq 7" in stderr and "truncated" in stderr
        code, _, _ = cli("audit", "export", "--output", str(export))
        code, stdout, stderr = cli(
            "audit",
            "verify",
            "--export",
            str(export),
            "--checkpoint",
            str(tmp_path / "cp.txt"),
            "--key",
            str(tmp_path / "keys.txt"),
        )
        assert code == 0, stderr
        assert "ok: 8 entries verified" in stdout

    def test_offline_needs_no_database_or_keyring(
        self, env: Path, service: AppState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fill(service, 3)
        export = tmp_path / "log.jsonl"
        cli("audit", "export", "--output", str(export))
        (tmp_path / "cp.txt").write_text(cli("audit", "checkpoint")[1])
        (tmp_path / "keys.txt").write_text(cli("audit", "verifier-key")[1])
        cli("audit", "export", "--output", str(export))
        monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", "postgresql://nowhere.invalid/none")
        monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(tmp_path / "empty"))
        code, stdout, stderr = cli(
            "audit",
            "verify",
            "--export",
            str(export),
            "--checkpoint",
            str(tmp_path / "cp.txt"),
            "--key",
            str(tmp_path / "keys.txt"),
        )
        assert code == 0, stderr
        assert not (tmp_path / "empty").exists()

    def test_fhir_export_and_decrypt(self, env: Path, service: AppState, tmp_path: Path) -> None:
        fill(service, 2)
        out = tmp_path / "log.fhir.json"
        assert cli("audit", "export", "--output", str(out), "--format", "fhir", "--decrypt")[0] == 0
        bundle = json.loads(out.read_text())
        assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["AuditEvent"] * 2

    def test_the_export_is_itself_logged(
        self, env: Path, service: AppState, tmp_path: Path
    ) -> None:
        cli("audit", "export", "--output", str(tmp_path / "x.jsonl"), "--decrypt")
        out = tmp_path / "y.jsonl"
        cli("audit", "export", "--output", str(out), "--decrypt")
        (line,) = out.read_text().splitlines()
        record = json.loads(line)
        assert record["event_type"] == "audit_query"
        assert record["details_decrypted"]["query"] == "export"
        assert record["details_decrypted"]["decrypt"] is True

    def test_offline_usage_errors(self, env: Path, tmp_path: Path) -> None:
        export = tmp_path / "log.jsonl"
        export.write_text("")
        code, _, stderr = cli("audit", "verify", "--export", str(export))
        assert code == 2 and "--checkpoint" in stderr
        code, _, _ = cli("audit", "verify", "--export", str(tmp_path / "missing.jsonl"))
        assert code == 2
