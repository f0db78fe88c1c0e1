"""C2SP signed-note / tlog-checkpoint signing, parsing and verification."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.note import (
    MAX_NOTE_SIZE,
    NoteError,
    key_hash,
    parse_checkpoint,
    parse_note,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
    verify_checkpoint,
    verify_note,
)

ORIGIN = "casebridge.example/disclosure-log"
ROOT = hashlib.sha256(b"some root").digest()
DASH = "\u2014"

# Fixed key: the 32 bytes 0x01, 0x02, ..., 0x20.
FIXED_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
OLD_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"old").digest())
NEW_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"new").digest())
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"other").digest())

OLD_NAME = "casebridge.example/log-key-2024"
NEW_NAME = "casebridge.example/log-key-2025"
OLD_VKEY = verifier_key(OLD_NAME, OLD_KEY.public_key())
NEW_VKEY = verifier_key(NEW_NAME, NEW_KEY.public_key())

# golang.org/x/mod/sumdb/note: the package's documented example (an independent implementation).
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n"
    + DASH
    + " PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq"
    + "fqdngotpRZb6KE6RyyBwJnAM=\n"
)


def signed(size: int = 42, signers: list[tuple[str, Ed25519PrivateKey]] | None = None) -> str:
    return sign_checkpoint(ORIGIN, size, ROOT, signers or [(OLD_NAME, OLD_KEY)])


# --------------------------------------------------------------------------- known answers


def test_go_sumdb_note_vector() -> None:
    seed = base64.b64decode(GO_SIGNER_KEY.split("+", 4)[4])
    assert seed[0] == 1
    key = Ed25519PrivateKey.from_private_bytes(seed[1:])
    assert verifier_key("PeterNeumann", key.public_key()) == GO_VERIFIER_KEY
    assert sign_note(GO_TEXT, [("PeterNeumann", key)]) == GO_NOTE
    note = verify_note(GO_NOTE, [GO_VERIFIER_KEY])
    assert note.text == GO_TEXT
    assert note.verified_by == (GO_VERIFIER_KEY,)
    name, key_id, _ = parse_verifier_key(GO_VERIFIER_KEY)
    assert (name, key_id.hex()) == ("PeterNeumann", "c74f20a3")
    with pytest.raises(NoteError):
        verify_note(GO_NOTE.replace("cryptography", "cryptographY"), [GO_VERIFIER_KEY])


def test_fixed_key_known_answer() -> None:
    public = FIXED_KEY.public_key().public_bytes_raw()
    by_hand = hashlib.sha256(ORIGIN.encode() + b"\n" + b"\x01" + public).digest()[:4]
    assert key_hash(ORIGIN, FIXED_KEY.public_key()) == by_hand
    vkey = verifier_key(ORIGIN, FIXED_KEY.public_key())
    match = re.fullmatch(r"([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+={0,2})", vkey)
    assert match is not None
    assert match.group(1) == ORIGIN
    assert match.group(2) == by_hand.hex()
    assert base64.b64decode(match.group(3)) == b"\x01" + public
    assert vkey == FIXED_VKEY

    text = sign_checkpoint(ORIGIN, 1234, ROOT, [(ORIGIN, FIXED_KEY)])
    assert text == FIXED_CHECKPOINT  # Ed25519 is deterministic
    body, sig_line = text.split("\n\n")
    assert body + "\n" == f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n"
    assert sig_line.startswith(f"{DASH} {ORIGIN} ")
    blob = base64.b64decode(sig_line.split(" ")[2])
    assert blob[:4] == by_hand and len(blob) == 68
    FIXED_KEY.public_key().verify(blob[4:], (body + "\n").encode())  # raises if wrong
    checkpoint = verify_checkpoint(text, [vkey], origin=ORIGIN)
    assert (checkpoint.tree_size, checkpoint.root_hash) == (1234, ROOT)


FIXED_VKEY = (
    "casebridge.example/disclosure-log+72ce3e5a+AXm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk"
)
FIXED_CHECKPOINT = (
    "casebridge.example/disclosure-log\n"
    "1234\n"
    "gYUzhjibHpMWpIpvJtex5i7OQKT/xxhLNm6N9ibtbPU=\n"
    "\n"
    "\u2014 casebridge.example/disclosure-log "
    "cs4+WsTu3DfXDpMdGjj6i+54SNa92jntYRmpsdrBIFhsrz91w1EKjUSgeYFJGqeZoYRcUhOFQa/VVnWmL0ftGaR7EQQ=\n"
)


# --------------------------------------------------------------------------- round trips


def test_roundtrip() -> None:
    text = signed(42)
    checkpoint = verify_checkpoint(text, [OLD_VKEY])
    assert checkpoint.origin == ORIGIN
    assert checkpoint.tree_size == 42
    assert checkpoint.root_hash == ROOT
    assert checkpoint.extensions == ()
    assert checkpoint.verified_by == (OLD_VKEY,)
    assert [s.name for s in checkpoint.signatures] == [OLD_NAME]
    assert text.startswith(checkpoint.body + "\n" + DASH + " ")
    assert verify_checkpoint(text.encode(), [OLD_VKEY]) == checkpoint
    assert parse_checkpoint(text).verified_by == ()


def test_roundtrip_with_extensions_and_empty_tree() -> None:
    empty_root = hashlib.sha256(b"").digest()
    text = sign_checkpoint(ORIGIN, 0, empty_root, [(OLD_NAME, OLD_KEY)], ["Timestamp: 1700000000"])
    checkpoint = verify_checkpoint(text, [OLD_VKEY])
    assert checkpoint.tree_size == 0
    assert checkpoint.root_hash == empty_root
    assert checkpoint.extensions == ("Timestamp: 1700000000",)
    assert text.splitlines()[1] == "0"


def test_two_signers_key_rotation() -> None:
    text = signed(7, [(OLD_NAME, OLD_KEY), (NEW_NAME, NEW_KEY)])
    assert text.count(f"\n{DASH} ") == 2
    assert verify_checkpoint(text, [OLD_VKEY]).verified_by == (OLD_VKEY,)
    assert verify_checkpoint(text, [NEW_VKEY]).verified_by == (NEW_VKEY,)
    both = verify_checkpoint(text, [NEW_VKEY, OLD_VKEY])
    assert set(both.verified_by) == {OLD_VKEY, NEW_VKEY}


def test_rotation_under_one_name() -> None:
    old = verifier_key(ORIGIN, OLD_KEY.public_key())
    new = verifier_key(ORIGIN, NEW_KEY.public_key())
    text = signed(9, [(ORIGIN, OLD_KEY), (ORIGIN, NEW_KEY)])
    assert verify_checkpoint(text, [new]).verified_by == (new,)
    assert verify_checkpoint(text, [old]).verified_by == (old,)


def test_unknown_signatures_are_ignored() -> None:
    text = signed(5, [("witness.example/w1", OTHER_KEY), (OLD_NAME, OLD_KEY)])
    assert verify_checkpoint(text, [OLD_VKEY]).verified_by == (OLD_VKEY,)


# --------------------------------------------------------------------------- rejection


def test_tampered_body_rejected() -> None:
    text = signed(42)
    body, rest = text.split("\n\n")
    for i in range(len(body)):
        changed = body[:i] + ("X" if body[i] != "X" else "Y") + body[i + 1 :]
        if changed.count("\n") != body.count("\n"):
            continue
        with pytest.raises(NoteError):
            verify_checkpoint(changed + "\n\n" + rest, [OLD_VKEY])


def test_tampered_size_and_root_rejected() -> None:
    text = signed(42)
    with pytest.raises(NoteError, match="bad signature"):
        verify_checkpoint(text.replace("\n42\n", "\n43\n"), [OLD_VKEY])
    other_root = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    with pytest.raises(NoteError, match="bad signature"):
        verify_checkpoint(text.replace(base64.b64encode(ROOT).decode(), other_root), [OLD_VKEY])
    body, rest = text.split("\n\n")
    with pytest.raises(NoteError, match="bad signature"):
        verify_checkpoint(body + "\nextra\n\n" + rest, [OLD_VKEY])


def test_tampered_signature_rejected() -> None:
    text = signed(42)
    body, line = text.split("\n\n")
    prefix, blob_b64 = line.rstrip("\n").rsplit(" ", 1)
    blob = base64.b64decode(blob_b64)
    for i in range(4, len(blob)):  # every byte of the Ed25519 signature
        bad = bytearray(blob)
        bad[i] ^= 0x01
        forged = f"{body}\n\n{prefix} {base64.b64encode(bytes(bad)).decode()}\n"
        with pytest.raises(NoteError, match="bad signature"):
            verify_checkpoint(forged, [OLD_VKEY])
    truncated = f"{body}\n\n{prefix} {base64.b64encode(blob[:-1]).decode()}\n"
    with pytest.raises(NoteError, match="bad signature"):
        verify_checkpoint(truncated, [OLD_VKEY])


def test_bad_known_signature_rejects_even_with_a_good_one() -> None:
    text = signed(42, [(OLD_NAME, OLD_KEY), (NEW_NAME, NEW_KEY)])
    lines = text.split("\n")
    tail = "AAAAAAA=" if not lines[-2].endswith("AAAAAAA=") else "BBBBBBA="
    forged_line = lines[-2][:-8] + tail
    forged = "\n".join([*lines[:-2], forged_line, ""])
    with pytest.raises(NoteError):
        verify_checkpoint(forged, [OLD_VKEY, NEW_VKEY])
    assert verify_checkpoint(forged, [OLD_VKEY]).verified_by == (OLD_VKEY,)


def test_unknown_key_only_rejected() -> None:
    text = signed(42, [(OLD_NAME, OTHER_KEY)])  # right name, wrong key -> different key ID
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_checkpoint(text, [OLD_VKEY])
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_checkpoint(signed(42, [("someone.else", OTHER_KEY)]), [OLD_VKEY])


def test_wrong_key_hash_or_name_is_unknown_key() -> None:
    text = signed(42)
    body, line = text.split("\n\n")
    prefix, blob_b64 = line.rstrip("\n").rsplit(" ", 1)
    blob = bytearray(base64.b64decode(blob_b64))
    blob[0] ^= 0xFF
    forged = f"{body}\n\n{prefix} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_checkpoint(forged, [OLD_VKEY])
    renamed = text.replace(f"{DASH} {OLD_NAME} ", f"{DASH} {NEW_NAME} ")
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_checkpoint(renamed, [OLD_VKEY])


def test_origin_must_match_when_given() -> None:
    text = signed(42)
    verify_checkpoint(text, [OLD_VKEY], origin=ORIGIN)
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(text, [OLD_VKEY], origin="elsewhere.example/log")


def _malformed_notes() -> dict[str, str | bytes]:
    good = signed(42)
    body, line = good.split("\n\n")
    root = base64.b64encode(ROOT).decode()
    lines = body.split("\n")

    def note(b: str, sig: str = line) -> str:
        return b + "\n\n" + sig

    return {
        "missing blank line": body + "\n" + line,
        "no signatures": body + "\n\n",
        "no final newline": good.rstrip("\n"),
        "hyphen instead of em dash": note(body, line.replace(DASH, "-", 1)),
        "en dash instead of em dash": note(body, line.replace(DASH, "\u2013", 1)),
        "no space after dash": note(body, line.replace(f"{DASH} ", DASH, 1)),
        "three fields": note(body, line.rstrip("\n") + " extra\n"),
        "double space": note(body, line.replace(" ", "  ", 1)),
        "plus in key name": note(body, line.replace(OLD_NAME, OLD_NAME + "+x")),
        "non-canonical base64": note(body, line.rstrip("\n").rstrip("=") + "\n"),
        "garbage base64": note(body, f"{DASH} {OLD_NAME} !!!!\n"),
        "short signature": note(body, f"{DASH} {OLD_NAME} {base64.b64encode(b'1234').decode()}\n"),
        "blank line between signatures": note(body, line + "\n" + line),
        "carriage return": note(body.replace("\n", "\r\n"), line),
        "tab": note(body.replace(ORIGIN, ORIGIN + "\t"), line),
        "nul": note(body.replace(ORIGIN, ORIGIN + "\x00"), line),
        "non-UTF-8": note(body, line).encode().replace(b"42", b"4\xff2"),
        "lone surrogate": note(body.replace(ORIGIN, ORIGIN + "\ud800"), line),
        "too large": note(body + "\n" + "x" * MAX_NOTE_SIZE, line),
        "too many signatures": note(body, line * 101),
        "two body lines": note("\n".join(lines[:2]), line),
        "empty body line": note("\n".join([lines[0], "", *lines[1:]]), line),
        "empty origin": note("\n".join(["", *lines[1:]]), line),
        "leading zero size": note(body.replace("\n42\n", "\n042\n"), line),
        "signed size": note(body.replace("\n42\n", "\n+42\n"), line),
        "negative size": note(body.replace("\n42\n", "\n-42\n"), line),
        "spaced size": note(body.replace("\n42\n", "\n 42\n"), line),
        "unicode digit size": note(body.replace("\n42\n", "\n4\u0662\n"), line),
        "huge size": note(body.replace("\n42\n", f"\n{1 << 64}\n"), line),
        "short root": note(body.replace(root, base64.b64encode(ROOT[:31]).decode()), line),
        "hex root": note(body.replace(root, ROOT.hex()), line),
        "unpadded root": note(body.replace(root, root.rstrip("=")), line),
    }


@pytest.mark.parametrize("case", sorted(_malformed_notes()))
def test_malformed_rejected(case: str) -> None:
    text = _malformed_notes()[case]
    with pytest.raises(NoteError):
        verify_checkpoint(text, [OLD_VKEY])
    with pytest.raises(NoteError):
        parse_checkpoint(text)


def test_note_level_parsing() -> None:
    note = parse_note(GO_NOTE)
    assert note.text == GO_TEXT
    assert [(s.name, s.key_hash.hex(), len(s.signature)) for s in note.signatures] == [
        ("PeterNeumann", "c74f20a3", 64)
    ]
    # The text may contain blank lines: the last blank line separates the signatures.
    text = "para one\n\npara two\n"
    signed_note = sign_note(text, [("k", OLD_KEY)])
    assert verify_note(signed_note, [verifier_key("k", OLD_KEY.public_key())]).text == text
    with pytest.raises(NoteError):
        sign_note("no final newline", [("k", OLD_KEY)])
    with pytest.raises(NoteError):
        sign_note("text\n", [])


def test_verifier_keys_required() -> None:
    with pytest.raises(NoteError):
        verify_checkpoint(signed(1), [])
    with pytest.raises(NoteError):
        verify_checkpoint(signed(1), OLD_VKEY)  # a bare string, not a list of keys
    with pytest.raises(NoteError):
        verify_checkpoint(signed(1), ["not a key"])


# --------------------------------------------------------------------------- verifier keys


def test_verifier_key_roundtrip() -> None:
    name, key_id, public = parse_verifier_key(OLD_VKEY)
    assert name == OLD_NAME
    assert key_id == key_hash(OLD_NAME, OLD_KEY.public_key())
    assert public.public_bytes_raw() == OLD_KEY.public_key().public_bytes_raw()
    assert verifier_key(name, public) == OLD_VKEY
    upper = OLD_VKEY.split("+", 2)
    upper[1] = upper[1].upper()
    assert parse_verifier_key("+".join(upper))[1] == key_id


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a3+",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a33+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW ",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA==",
        "PeterNeumann+c74f20a3+Alpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # type 0x02
        "peterneumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # other name
    ],
)
def test_verifier_key_parse_errors(bad: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier_key(bad)


def test_verifier_key_manglings_rejected() -> None:
    # As in golang.org/x/mod/sumdb/note: no proper substring and no one-character change of
    # a verifier key may parse.
    key = GO_VERIFIER_KEY
    for i in range(len(key) + 1):
        for j in range(i + 1, len(key) + 1):
            if (i, j) != (0, len(key)):
                with pytest.raises(NoteError):
                    parse_verifier_key(key[i:j])
    for i in range(len(key)):
        with pytest.raises(NoteError):
            parse_verifier_key(key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :])


def test_duplicate_verifier_keys_are_fine() -> None:
    # (Two *different* keys with the same name and key ID would need a 32-bit key ID collision;
    # verify_note refuses such an ambiguous key set.)
    assert verify_checkpoint(signed(1), [OLD_VKEY, OLD_VKEY]).verified_by == (OLD_VKEY,)


# --------------------------------------------------------------------------- signing inputs


@pytest.mark.parametrize(
    ("origin", "size", "root", "name", "extensions"),
    [
        ("", 1, ROOT, OLD_NAME, []),
        ("two\nlines", 1, ROOT, OLD_NAME, []),
        (ORIGIN, -1, ROOT, OLD_NAME, []),
        (ORIGIN, 1 << 64, ROOT, OLD_NAME, []),
        (ORIGIN, True, ROOT, OLD_NAME, []),
        (ORIGIN, 1, ROOT[:31], OLD_NAME, []),
        (ORIGIN, 1, ROOT, "", []),
        (ORIGIN, 1, ROOT, "has space", []),
        (ORIGIN, 1, ROOT, "has+plus", []),
        (ORIGIN, 1, ROOT, "nbsp\u00a0name", []),
        (ORIGIN, 1, ROOT, OLD_NAME, [""]),
        (ORIGIN, 1, ROOT, OLD_NAME, ["a\nb"]),
        (ORIGIN, 1, ROOT, OLD_NAME, ["tab\there"]),
    ],
)
def test_sign_checkpoint_rejects_bad_input(
    origin: str, size: int, root: bytes, name: str, extensions: list[str]
) -> None:
    with pytest.raises(NoteError):
        sign_checkpoint(origin, size, root, [(name, OLD_KEY)], extensions)
