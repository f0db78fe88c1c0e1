"""C2SP signed notes and tlog-checkpoints, signed with Ed25519."""

# Formats (c2sp.org/signed-note, c2sp.org/tlog-checkpoint):
#
#   checkpoint body   <origin>\n<tree size>\n<base64 root hash>\n[<extension line>\n ...]
#   signed note       <body>\n— <key name> <base64(key ID || signature)>\n ...
#   key ID            SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]
#   verifier key      <key name>+<key ID as 8 hex digits>+<base64(0x01 || public key)>

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_ED25519",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Note",
    "NoteError",
    "NoteSignature",
    "checkpoint_body",
    "key_hash",
    "parse_checkpoint",
    "parse_note",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
    "verify_checkpoint",
    "verify_note",
]

ALG_ED25519 = 0x01
"""Signature type byte of Ed25519 note signatures."""

MAX_NOTE_SIZE = 1 << 20
"""Largest note accepted or produced, in UTF-8 bytes."""

MAX_SIGNATURES = 100
"""Most signature lines accepted on one note (the spec requires at least 16)."""

ROOT_HASH_SIZE = 32

_DASH = "\u2014 "  # EM DASH, SPACE: starts every signature line
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_MAX_TREE_SIZE = (1 << 64) - 1
_ED25519_SIG_SIZE = 64


class NoteError(ValueError):
    """A note, checkpoint or verifier key is malformed or does not verify."""


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the raw signature bytes."""

    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{_DASH}{self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    """A parsed signed note. ``verified_by`` lists the verifier keys that checked out."""

    text: str
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checkpoint:
    """A parsed tlog-checkpoint. ``verified_by`` lists the verifier keys that checked out."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        """The signed note text."""
        return checkpoint_body(self.origin, self.tree_size, self.root_hash, self.extensions)


# --------------------------------------------------------------------------- helpers


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise NoteError("key name must be a non-empty string")
    if "+" in name or any(c.isspace() for c in name) or _CONTROL.search(name):
        raise NoteError(f"invalid key name {name!r}: no spaces, '+' or control characters")


def _b64decode(value: str, what: str) -> bytes:
    """Strict standard base64: valid alphabet, padding and canonical trailing bits."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise NoteError(f"{what}: invalid base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise NoteError(f"{what}: non-canonical base64")
    return raw


def _public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def _check_text(text: str, what: str) -> None:
    if _CONTROL.search(text):
        raise NoteError(f"{what} contains control characters")


def _decode(text: str | bytes) -> str:
    if isinstance(text, bytes | bytearray):
        if len(text) > MAX_NOTE_SIZE:
            raise NoteError(f"note is larger than {MAX_NOTE_SIZE} bytes")
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    if not isinstance(text, str):
        raise NoteError("note must be str or bytes")
    if len(text) > MAX_NOTE_SIZE:
        raise NoteError(f"note is larger than {MAX_NOTE_SIZE} bytes")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise NoteError("note is not valid UTF-8 (lone surrogate)") from exc
    if size > MAX_NOTE_SIZE:
        raise NoteError(f"note is larger than {MAX_NOTE_SIZE} bytes")
    return text


# --------------------------------------------------------------------------- keys


def key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    """4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    _check_key_name(name)
    data = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + _public_bytes(public_key)
    return hashlib.sha256(data).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """``<name>+<8 hex digits key ID>+<base64(0x01 || public key)>``."""
    key_id = key_hash(name, public_key).hex()
    blob = base64.b64encode(bytes([ALG_ED25519]) + _public_bytes(public_key)).decode("ascii")
    return f"{name}+{key_id}+{blob}"


def parse_verifier_key(text: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Parse a verifier key string into (name, key ID, public key); checks the key ID."""
    if not isinstance(text, str):
        raise NoteError("verifier key must be a string")
    parts = text.split("+", 2)  # the base64 part may itself contain '+'
    if len(parts) != 3:
        raise NoteError("verifier key must be <name>+<key id>+<key>")
    name, hex_id, blob = parts
    _check_key_name(name)
    if not _HEX8.fullmatch(hex_id):
        raise NoteError("verifier key ID must be 8 hex digits")
    raw = _b64decode(blob, "verifier key")
    if len(raw) != 33:
        raise NoteError("verifier key must hold a 1-byte type and a 32-byte Ed25519 key")
    if raw[0] != ALG_ED25519:
        raise NoteError(f"unsupported verifier key type 0x{raw[0]:02x}")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError as exc:
        raise NoteError("verifier key holds an invalid Ed25519 public key") from exc
    expected = key_hash(name, public_key)
    if bytes.fromhex(hex_id) != expected:
        raise NoteError("verifier key ID does not match the key")
    return name, expected, public_key


# --------------------------------------------------------------------------- notes


def sign_note(text: str, signers: Sequence[tuple[str, Ed25519PrivateKey]]) -> str:
    """Sign note text (which must end in a newline) with every (key name, key) signer."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteError("note text must be a string ending in a newline")
    _check_text(text, "note text")
    if not signers:
        raise NoteError("at least one signer is required")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signers")
    message = _decode(text).encode("utf-8")
    lines = []
    for name, private_key in signers:
        key_id = key_hash(name, private_key.public_key())
        lines.append(NoteSignature(name, key_id, private_key.sign(message)).line())
    signed = text + "\n" + "".join(lines)
    _decode(signed)  # size limit
    return signed


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signature lines, checking the format only."""
    text = _decode(note)
    if _CONTROL.search(text):
        raise NoteError("note contains control characters other than newline")
    if not text.endswith("\n"):
        raise NoteError("note does not end in a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line[:80]!r}")
        fields = line[len(_DASH) :].split(" ")
        if len(fields) != 2:
            raise NoteError(f"malformed signature line {line[:80]!r}")
        name, blob = fields
        _check_key_name(name)
        raw = _b64decode(blob, "signature")
        if len(raw) < 5:
            raise NoteError("signature is too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return Note(body, tuple(signatures))


def _verifier_table(verifier_keys: Sequence[str]) -> dict[tuple[str, bytes], Ed25519PublicKey]:
    if isinstance(verifier_keys, str):
        raise NoteError("verifier_keys must be a sequence of verifier key strings")
    table: dict[tuple[str, bytes], Ed25519PublicKey] = {}
    for vkey in verifier_keys:
        name, key_id, public_key = parse_verifier_key(vkey)
        known = table.get((name, key_id))
        if known is not None and _public_bytes(known) != _public_bytes(public_key):
            raise NoteError(f"ambiguous verifier keys: two keys named {name!r} share a key ID")
        table[(name, key_id)] = public_key
    if not table:
        raise NoteError("no verifier keys given")
    return table


def verify_note(note: str | bytes, verifier_keys: Sequence[str]) -> Note:
    """Parse and verify a signed note.

    Signatures by unknown keys (name and key ID not both matching a verifier key) are
    ignored; every signature by a known key must verify, and at least one must be present.
    """
    table = _verifier_table(verifier_keys)
    parsed = parse_note(note)
    message = parsed.text.encode("utf-8")
    verified: list[str] = []
    for sig in parsed.signatures:
        public_key = table.get((sig.name, sig.key_hash))
        if public_key is None:
            continue
        try:
            if len(sig.signature) != _ED25519_SIG_SIZE:
                raise InvalidSignature
            public_key.verify(sig.signature, message)
        except InvalidSignature:
            raise NoteError(
                f"bad signature by known key {sig.name}+{sig.key_hash.hex()}: "
                "the note text was altered or the signature is corrupt"
            ) from None
        vkey = verifier_key(sig.name, public_key)
        if vkey not in verified:
            verified.append(vkey)
    if not verified:
        raise NoteError("note has no signature by a known key")
    return Note(parsed.text, parsed.signatures, tuple(verified))


# --------------------------------------------------------------------------- checkpoints


def checkpoint_body(
    origin: str, tree_size: int, root: bytes, extensions: Sequence[str] = ()
) -> str:
    """Checkpoint note text: origin, tree size, base64 root hash and extension lines."""
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise NoteError("origin must be a non-empty single line")
    _check_text(origin, "origin")
    if isinstance(tree_size, bool) or not isinstance(tree_size, int):
        raise NoteError("tree size must be an integer")
    if not 0 <= tree_size <= _MAX_TREE_SIZE:
        raise NoteError("tree size out of range")
    if len(root) != ROOT_HASH_SIZE:
        raise NoteError(f"root hash must be {ROOT_HASH_SIZE} bytes")
    if isinstance(extensions, str):
        raise NoteError("extensions must be a sequence of lines")
    for line in extensions:
        if not isinstance(line, str) or not line or "\n" in line:
            raise NoteError("extension lines must be non-empty single lines")
        _check_text(line, "extension line")
    root_b64 = base64.b64encode(bytes(root)).decode("ascii")
    return "".join(f"{line}\n" for line in (origin, str(tree_size), root_b64, *extensions))


def sign_checkpoint(
    origin: str,
    tree_size: int,
    root: bytes,
    signers: Sequence[tuple[str, Ed25519PrivateKey]],
    extensions: Sequence[str] = (),
) -> str:
    """A signed checkpoint note; several signers are allowed (e.g. old and new key in rotation)."""
    return sign_note(checkpoint_body(origin, tree_size, root, extensions), signers)


def _parse_body(note: Note) -> Checkpoint:
    lines = note.text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, tree size and root hash lines")
    if any(not line for line in lines):
        raise NoteError("checkpoint has an empty line in its body")
    origin, size_text, root_text, *extensions = lines
    if not _TREE_SIZE.fullmatch(size_text):
        raise NoteError(f"malformed tree size {size_text[:40]!r}")
    tree_size = int(size_text)
    if tree_size > _MAX_TREE_SIZE:
        raise NoteError("tree size out of range")
    root = _b64decode(root_text, "root hash")
    if len(root) != ROOT_HASH_SIZE:
        raise NoteError(f"root hash must be {ROOT_HASH_SIZE} bytes")
    return Checkpoint(origin, tree_size, root, tuple(extensions), note.signatures, note.verified_by)


def parse_checkpoint(text: str | bytes) -> Checkpoint:
    """Parse a signed checkpoint WITHOUT verifying its signatures (format checks only)."""
    return _parse_body(parse_note(text))


def verify_checkpoint(
    text: str | bytes, verifier_keys: Sequence[str], *, origin: str | None = None
) -> Checkpoint:
    """Parse a signed checkpoint and verify it against trusted verifier keys.

    Raises NoteError if it is malformed, has no signature by a known key, or a known key's
    signature does not verify (the body was altered).  With ``origin``, the origin must match.
    """
    parse_checkpoint(text)  # reject malformed checkpoints before any signature work
    checkpoint = _parse_body(verify_note(text, verifier_keys))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint
