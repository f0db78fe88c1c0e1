"""The keyring file: created private, complete, rotation-ready, and never shown."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from app.crypto.keyring import KeyKind, Keyring, KeyringError, open_keyring


def test_first_run_creates_a_private_complete_keyring(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keyring.json"
    keyring, notices = open_keyring(path=path, inline_json=None, create_if_missing=True, strict=False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyring.missing_kinds() == []
    assert {e.kind for e in keyring.entries} == set(KeyKind)
    assert any("created keyring" in n for n in notices)
    again, _ = open_keyring(path=path, inline_json=None, create_if_missing=True, strict=False)
    assert [e.id for e in again.entries] == [e.id for e in keyring.entries]


def test_rotation_keeps_old_keys_for_reading(tmp_path: Path) -> None:
    keyring = Keyring.generate()
    old = keyring.active(KeyKind.audit)
    new = keyring.rotate(KeyKind.audit)
    assert keyring.active(KeyKind.audit) == new
    assert keyring.get(old.id).material == old.material
    assert not keyring.get(old.id).active
    keyring.save(tmp_path / "k.json")
    loaded = Keyring.load(tmp_path / "k.json")
    assert loaded.active(KeyKind.audit).id == new.id
    assert len(loaded.of_kind(KeyKind.audit)) == 2


def test_material_never_shows_in_repr() -> None:
    keyring = Keyring.generate()
    for entry in keyring.entries:
        assert entry.material.hex() not in repr(entry)
        assert "material" not in entry.public_info()
    assert repr(keyring) == "Keyring(5 keys)"


def test_malformed_keyring_error_does_not_echo_contents(tmp_path: Path) -> None:
    doc = json.loads(Keyring.generate().to_json())
    doc["keys"][0]["kind"] = "mystery"
    secret_bits = doc["keys"][1]["material"]
    with pytest.raises(KeyringError) as caught:
        Keyring.from_json(json.dumps(doc))
    assert secret_bits not in str(caught.value)
    with pytest.raises(KeyringError):
        Keyring.from_json("{not json")


def test_strict_mode_refuses_an_incomplete_keyring(tmp_path: Path) -> None:
    keyring = Keyring([e for e in Keyring.generate().entries if e.kind is not KeyKind.audit])
    path = tmp_path / "k.json"
    keyring.save(path)
    with pytest.raises(KeyringError, match="audit"):
        open_keyring(path=path, inline_json=None, create_if_missing=False, strict=True)
    repaired, notices = open_keyring(path=path, inline_json=None, create_if_missing=True, strict=False)
    assert repaired.missing_kinds() == []
    assert Keyring.load(path).missing_kinds() == []


def test_two_active_keys_of_a_kind_is_refused() -> None:
    entries = list(Keyring.generate().entries) + list(Keyring.generate().entries)
    with pytest.raises(KeyringError, match="more than one active"):
        Keyring(entries)
