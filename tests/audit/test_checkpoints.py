"""Signed checkpoints: C2SP format, key rotation overlap, the background signer."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from audit_support import fill, sign

from app.audit import store
from app.audit.checkpoints import ROTATION_OVERLAP, Checkpointer, CheckpointSigner, sign_if_grown
from app.audit.merkle import EMPTY_ROOT, TreeBuilder
from app.audit.models import AuditCheckpoint
from app.audit.note import parse_checkpoint, parse_verifier_key, verify_checkpoint
from app.crypto.keyring import KeyKind, Keyring, new_key
from app.db import transaction
from app.state import AppState

ORIGIN = "casebridge.example/disclosure-log"


def root_of(state: AppState) -> bytes:
    with state.sessions() as session:
        hashes = [
            bytes(h)
            for (h,) in session.execute(
                store.entries.select()
                .with_only_columns(store.entries.c.leaf_hash)
                .order_by(store.entries.c.seq)
            )
        ]
    builder = TreeBuilder()
    builder.extend(hashes)
    return builder.root()


class TestSigning:
    def test_an_empty_log_has_a_signed_empty_checkpoint(self, service: AppState) -> None:
        checkpoint = verify_checkpoint(
            sign(service), service.audit.signer.verifier_keys(), origin=ORIGIN
        )
        assert (checkpoint.tree_size, checkpoint.root_hash) == (0, EMPTY_ROOT)

    def test_checkpoint_commits_to_the_tree(self, service: AppState) -> None:
        fill(service, 6)
        note = sign(service)
        checkpoint = verify_checkpoint(note, service.audit.signer.verifier_keys(), origin=ORIGIN)
        assert checkpoint.tree_size == 6
        assert checkpoint.root_hash == root_of(service)
        assert note.splitlines()[:3] == [ORIGIN, "6", base64.b64encode(root_of(service)).decode()]
        assert checkpoint.extensions[0].startswith("time 20")

    def test_a_new_checkpoint_only_when_the_log_grew(self, service: AppState) -> None:
        fill(service, 2)
        first = sign(service)
        assert sign(service) == first
        fill(service, 1)
        assert parse_checkpoint(sign(service)).tree_size == 3
        with service.sessions() as session:
            sizes = [c.tree_size for c in session.query(AuditCheckpoint).order_by("tree_size")]
        assert sizes == [2, 3]

    def test_verifier_keys_are_c2sp_keys_named_by_origin(self, service: AppState) -> None:
        (key,) = service.audit.signer.verifier_keys()
        name, _, public = parse_verifier_key(key)
        assert name == ORIGIN
        material = service.keyring.active(KeyKind.checkpoint_signing).material
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        assert public.public_bytes_raw() == (
            Ed25519PrivateKey.from_private_bytes(material).public_key().public_bytes_raw()
        )


class TestRotation:
    def test_the_next_checkpoint_is_signed_by_both_keys(self, service: AppState) -> None:
        fill(service, 1)
        (old_key,) = service.audit.signer.verifier_keys()
        service.keyring.rotate(KeyKind.checkpoint_signing)
        fill(service, 1)
        note = sign(service)
        new_key_text, listed_old = service.audit.signer.verifier_keys()
        assert listed_old == old_key
        assert verify_checkpoint(note, [old_key]).verified_by == (old_key,)
        assert verify_checkpoint(note, [new_key_text]).verified_by == (new_key_text,)
        assert len(parse_checkpoint(note).signatures) == 2

    def test_after_a_day_only_the_active_key_signs(self) -> None:
        now = datetime(2026, 11, 21, tzinfo=UTC)
        old = new_key(KeyKind.checkpoint_signing, now - timedelta(days=30))
        fresh = new_key(KeyKind.checkpoint_signing, now - ROTATION_OVERLAP - timedelta(seconds=1))
        from dataclasses import replace

        keyring = Keyring([replace(old, active=False), fresh])
        signer = CheckpointSigner(keyring, ORIGIN)
        assert signer.signing_keys(now) == [fresh]
        assert signer.signing_keys(now - timedelta(hours=1)) == [fresh, replace(old, active=False)]
        note = signer.sign(0, EMPTY_ROOT, now)
        assert len(parse_checkpoint(note).signatures) == 1


class TestBackgroundSigner:
    def test_signs_within_the_interval_while_entries_arrive(self, service: AppState) -> None:
        checkpointer = Checkpointer(service.sessions, service.audit.signer, 0.05)
        checkpointer.start()
        try:
            fill(service, 3)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with service.sessions() as session:
                    if session.get(AuditCheckpoint, 3) is not None:
                        break
                time.sleep(0.02)
            else:
                pytest.fail("no checkpoint of the grown log was signed")
        finally:
            checkpointer.stop()

    def test_interval_zero_means_on_demand_only(self, service: AppState) -> None:
        checkpointer = Checkpointer(service.sessions, service.audit.signer, 0)
        checkpointer.start()
        assert checkpointer._thread is None
        fill(service, 1)
        assert parse_checkpoint(checkpointer.sign_now().note).tree_size == 1
        checkpointer.stop()

    def test_a_failing_tick_is_logged_and_the_next_one_retries(
        self, service: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[int] = []
        real = Checkpointer.sign_now

        def flaky(self: Checkpointer) -> object:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database restarting")
            return real(self)

        monkeypatch.setattr(Checkpointer, "sign_now", flaky)
        checkpointer = Checkpointer(service.sessions, service.audit.signer, 0.02)
        checkpointer.start()
        time.sleep(0.2)
        checkpointer.stop()
        assert len(calls) >= 2

    def test_concurrent_signers_store_one_checkpoint_per_size(self, service: AppState) -> None:
        fill(service, 2)
        with transaction(service.sessions) as a_session:
            a = sign_if_grown(a_session.connection(), service.audit.signer)
        with transaction(service.sessions) as b_session:
            b = sign_if_grown(b_session.connection(), service.audit.signer)
        assert a == b
