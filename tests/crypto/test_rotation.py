"""Every key kind rotates with all data readable, all tokens valid, every checkpoint verifying."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jose import jwt
from pydantic import SecretStr
from support.referrals import COORDINATOR, PURPOSE, REFERRER
from support.retention import another_person, entries, rows, verify_log
from typer.testing import CliRunner

from app.audit.checkpoints import sign_if_grown
from app.bootstrap import build_state
from app.cli import cli
from app.config import Settings
from app.crypto.keyring import KeyKind, Keyring
from app.crypto.rotation import RotationError, rotate
from app.db import transaction
from app.state import AppState
from app.subjects.models import Subject, SubjectIdentifier

Auth = Callable[..., dict[str, str]]
runner = CliRunner()


@pytest.fixture
def people(app_client: TestClient, post_referral: Callable[..., Any]) -> list[dict[str, Any]]:
    return [post_referral(subject=another_person(i)) for i in range(5)]


def _all_readable(app_client: TestClient, auth: Auth, people: list[dict[str, Any]]) -> None:
    for person in people:
        response = app_client.get(
            f"/v1/referrals/{person['id']}", headers=auth(COORDINATOR, **PURPOSE)
        )
        assert response.status_code == 200, response.text
        assert response.json()["subject"]["family_name"] == person["subject"]["family_name"]


def _key_events(state: AppState) -> list[dict[str, Any]]:
    return [e.details for e in entries(state, event_type="key_event") if e.details is not None]


class TestKek:
    def test_every_data_key_is_rewrapped_in_batches_and_stays_readable(
        self,
        app_client: TestClient,
        state: AppState,
        settings: Settings,
        auth: Auth,
        people: list[dict[str, Any]],
    ) -> None:
        old = state.keyring.active(KeyKind.kek).id
        report = rotate(state, KeyKind.kek, batch=2)
        assert (report.moved, report.failed, report.remaining) == (5, [], 0)
        assert report.previous_key_id == old
        assert {s.kek_id for s in rows(state, Subject)} == {report.key_id}
        _all_readable(app_client, auth, people)

        path = settings.resolved_keyring_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        saved = Keyring.load(path)
        assert [k.id for k in saved.of_kind(KeyKind.kek)] == [old, report.key_id]
        assert saved.active(KeyKind.kek).id == report.key_id
        assert [(d["action"], d["kind"]) for d in _key_events(state)] == [
            ("rotate", "kek"),
            ("rewrap", "kek"),
        ]
        verify_log(state)

    def test_an_interrupted_rewrap_leaves_everything_readable_and_resume_finishes(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        people: list[dict[str, Any]],
    ) -> None:
        def crash(moved: int) -> None:
            raise RuntimeError("killed")

        with pytest.raises(RuntimeError):
            rotate(state, KeyKind.kek, batch=2, after_batch=crash)
        assert len({s.kek_id for s in rows(state, Subject)}) == 2
        _all_readable(app_client, auth, people)
        report = rotate(state, KeyKind.kek, resume=True, batch=2)
        assert report.moved == 3 and report.remaining == 0
        _all_readable(app_client, auth, people)

    def test_a_process_holding_the_old_keyring_reads_rewrapped_keys(
        self,
        app_client: TestClient,
        state: AppState,
        settings: Settings,
        auth: Auth,
        people: list[dict[str, Any]],
    ) -> None:
        """The CLI rotates in its own process; the running service re-reads the file on a miss."""
        other = build_state(settings)  # another process: its own keyring from the same file
        try:
            report = rotate(other, KeyKind.kek)
        finally:
            other.engine.dispose()
        assert state.keyring.active(KeyKind.kek).id != report.key_id
        _all_readable(app_client, auth, people)
        assert state.keyring.active(KeyKind.kek).id == report.key_id


class TestBlindIndex:
    def test_identifiers_are_reindexed_and_still_link_referrals(
        self,
        app_client: TestClient,
        state: AppState,
        post_referral: Callable[..., Any],
        people: list[dict[str, Any]],
    ) -> None:
        before = entries(state, subject_id=people[0]["subject"]["id"])
        report = rotate(state, KeyKind.blind_index, batch=2)
        assert (report.moved, report.remaining) == (5, 0)
        assert {i.key_id for i in rows(state, SubjectIdentifier)} == {report.key_id}
        again = post_referral(subject=another_person(0))
        assert again["subject"]["id"] == people[0]["subject"]["id"]
        # The log keeps the subject index it was written with; queries try every key.
        after = entries(state, subject_id=people[0]["subject"]["id"])
        assert [e.seq for e in before] == [e.seq for e in after][: len(before)]
        assert len(after) > len(before)

    def test_linking_works_while_the_reindex_is_half_done(
        self,
        app_client: TestClient,
        state: AppState,
        post_referral: Callable[..., Any],
        people: list[dict[str, Any]],
    ) -> None:
        def crash(moved: int) -> None:
            raise RuntimeError("killed")

        with pytest.raises(RuntimeError):
            rotate(state, KeyKind.blind_index, batch=2, after_batch=crash)
        assert len({i.key_id for i in rows(state, SubjectIdentifier)}) == 2
        for n, person in enumerate(people):
            assert (
                post_referral(subject=another_person(n))["subject"]["id"] == person["subject"]["id"]
            )
        assert rotate(state, KeyKind.blind_index, resume=True).remaining == 0


class TestAudit:
    def test_new_entries_use_the_new_key_and_old_ones_still_open(
        self,
        app_client: TestClient,
        state: AppState,
        people: list[dict[str, Any]],
        post_referral: Callable[..., Any],
    ) -> None:
        old = state.keyring.active(KeyKind.audit).id
        report = rotate(state, KeyKind.audit)
        post_referral(subject=another_person(9))
        log = entries(state)
        assert {e.key_id for e in log} == {old, report.key_id}
        assert log[-1].key_id == report.key_id
        assert all(e.details is not None for e in log)
        verify_log(state)


class TestTokens:
    def test_old_tokens_stay_valid_and_both_keys_are_published(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        token_for: Callable[..., str],
    ) -> None:
        before = token_for(REFERRER)
        old = state.keyring.active(KeyKind.token_signing).id
        report = rotate(state, KeyKind.token_signing)
        kids = [k["kid"] for k in app_client.get("/.well-known/jwks.json").json()["keys"]]
        assert sorted(kids) == sorted([old, report.key_id])
        assert (
            app_client.get("/v1/me", headers={"Authorization": f"Bearer {before}"}).status_code
            == 200
        )
        after = token_for(REFERRER)
        assert jwt.get_unverified_header(after)["kid"] == report.key_id
        assert (
            app_client.get("/v1/me", headers={"Authorization": f"Bearer {after}"}).status_code
            == 200
        )

    def test_a_token_signed_by_a_key_rotated_in_another_process_verifies(
        self,
        app_client: TestClient,
        state: AppState,
        settings: Settings,
        demo: Any,
    ) -> None:
        other = build_state(settings)
        try:
            rotate(other, KeyKind.token_signing)
            token, _ = other.tokens.issue(
                client_id=REFERRER,
                agency_id="school-north",
                sector="education",
                roles=["referrer"],
                act=None,
            )
        finally:
            other.engine.dispose()
        response = app_client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text


class TestCheckpoints:
    def test_the_next_checkpoint_is_signed_by_both_keys_and_all_verify(
        self,
        app_client: TestClient,
        state: AppState,
        people: list[dict[str, Any]],
        post_referral: Callable[..., Any],
    ) -> None:
        with transaction(state.sessions) as session:
            first = sign_if_grown(session.connection(), state.audit.signer)
        rotate(state, KeyKind.checkpoint_signing)
        post_referral(subject=another_person(8))
        with transaction(state.sessions) as session:
            second = sign_if_grown(session.connection(), state.audit.signer)
        assert second.tree_size > first.tree_size
        signature_lines = [line for line in second.note.splitlines() if line.startswith("\u2014 ")]
        assert len(signature_lines) == 2
        assert len(state.audit.signer.verifier_keys()) == 2
        verify_log(state)


class TestCommand:
    @pytest.fixture
    def env(self, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
        monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
        monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", settings.resolved_database_url)
        monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(settings.resolved_keyring_path))
        return settings

    @pytest.mark.parametrize("kind", [k.value for k in KeyKind])
    def test_keys_rotate_each_kind(
        self,
        app_client: TestClient,
        state: AppState,
        env: Settings,
        kind: str,
        people: list[dict[str, Any]],
        auth: Auth,
    ) -> None:
        result = runner.invoke(cli, ["keys", "rotate", kind, "--json"])
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["kind"] == kind and report["remaining"] == 0
        listed = json.loads(runner.invoke(cli, ["keys", "list", "--json"]).stdout)
        mine = [k for k in listed if k["kind"] == kind]
        assert len(mine) == 2 and [k["id"] for k in mine if k["active"]] == [report["key_id"]]
        assert all("material" not in k for k in listed)
        _all_readable(app_client, auth, people)

    def test_an_inline_keyring_cannot_be_rotated_here(self, settings: Settings) -> None:
        inline = settings.model_copy(
            update={"keyring_json": SecretStr(Keyring.generate().to_json())}
        )
        other = build_state(inline)
        try:
            with pytest.raises(RotationError, match="secret store"):
                rotate(other, KeyKind.audit)
        finally:
            other.engine.dispose()


def test_one_rotation_at_a_time(app_client: TestClient, state: AppState) -> None:
    from app.crypto.rotation import LEASE_NAME
    from app.retention.lease import Lease

    other = Lease(state.sessions, LEASE_NAME)
    assert other.acquire()
    with pytest.raises(RotationError, match="another key rotation"):
        rotate(state, KeyKind.audit)
    other.release(completed=False)
    assert rotate(state, KeyKind.audit).moved == 0
