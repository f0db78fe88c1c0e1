"""Sealing and envelopes: bound to their row, opaque on failure, re-wrappable."""

from __future__ import annotations

import pytest

from app.crypto.aead import DecryptionError, open_sealed, seal
from app.crypto.envelope import BlindIndex, Envelope, normalise_identifier
from app.crypto.keyring import KeyKind, Keyring


def test_sealed_data_opens_only_with_its_associated_data() -> None:
    key = b"k" * 32
    sealed = seal(key, b"secret", b"row-1")
    assert open_sealed(key, sealed, b"row-1") == b"secret"
    for bad in (
        lambda: open_sealed(key, sealed, b"row-2"),
        lambda: open_sealed(b"x" * 32, sealed, b"row-1"),
        lambda: open_sealed(key, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"row-1"),
        lambda: open_sealed(key, b"\x02" + sealed[1:], b"row-1"),
        lambda: open_sealed(key, b"", b"row-1"),
    ):
        with pytest.raises(DecryptionError) as caught:
            bad()
        assert str(caught.value) == "ciphertext cannot be opened"


def test_data_keys_are_bound_to_their_subject_and_survive_kek_rotation() -> None:
    keyring = Keyring.generate()
    envelope = Envelope(keyring)
    key, wrapped = envelope.new_data_key("sub_a")
    sealed = key.seal(b"Yasmin", "subject.identity")
    assert envelope.unwrap("sub_a", wrapped).open(sealed, "subject.identity") == b"Yasmin"
    with pytest.raises(DecryptionError):
        envelope.unwrap("sub_b", wrapped)
    keyring.rotate(KeyKind.kek)
    assert envelope.unwrap("sub_a", wrapped).open(sealed, "subject.identity") == b"Yasmin"
    rewrapped = envelope.wrap("sub_a", envelope.unwrap("sub_a", wrapped).key)
    assert rewrapped.kek_id == keyring.active(KeyKind.kek).id != wrapped.kek_id
    assert "key=" not in repr(key)


def test_blind_index_is_keyed_and_normalised() -> None:
    one, two = BlindIndex(Keyring.generate()), BlindIndex(Keyring.generate())
    a = one.digest("d", normalise_identifier("LB-77 88.99"))
    assert a == one.digest("d", normalise_identifier("lb778899"))
    assert a != two.digest("d", normalise_identifier("lb778899"))
    assert a != one.digest("other-domain", normalise_identifier("lb778899"))
