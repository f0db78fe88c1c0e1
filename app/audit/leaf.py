"""The canonical bytes of a stored entry: what the Merkle tree commits to (format v1)."""

# Leaf format v1 (integers big-endian):
#
#   offset   size  field
#   0        1     version = 0x01
#   1        8     seq: unsigned, the leaf index
#   9        8     time_us: signed, UTC microseconds since the Unix epoch
#   17       2     t = length of the clear text
#   19       4     d = length of the details ciphertext
#   23       t     clear text: UTF-8 of the ten clear columns, in CLEAR_COLUMNS order, joined
#                  by U+001F; an absent (NULL) column is the empty string; no column may
#                  contain a control character, so the split is unambiguous
#   23+t     d     details: the AES-256-GCM sealed details, exactly as stored
#   23+t+d   32    prev_hash: leaf hash of entry seq-1 (32 zero bytes for seq 0)
#
# The leaf hash is SHA-256(0x00 || leaf) (RFC 9162).  The details' associated data is
# DETAILS_AAD_LABEL || seq (8) || time_us (8) || clear text, so a ciphertext opens only in the
# row, at the position and with the clear columns it was written with.

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

LEAF_VERSION: Final = 1
ZERO_HASH: Final = bytes(32)
SEPARATOR: Final = "\x1f"
DETAILS_AAD_LABEL: Final = b"casebridge/audit-details/v1\x00"

CLEAR_COLUMNS: Final = (
    "event_type",
    "actor_agency",
    "recipient_agency",
    "purpose",
    "decision",
    "agreement_id",
    "rule_id",
    "subject_index",
    "subject_index_key_id",
    "key_id",
)
ROW_COLUMNS: Final = ("seq", "time_us", *CLEAR_COLUMNS, "details", "prev_hash")
"""Column order of the tuples ``leaf_bytes_many`` takes (and ``StoredEntry``'s fields)."""

_HEAD = struct.Struct(">BQqHI")
_HASH_HEAD = struct.Struct(">xBQqHI")  # the same, after the 0x00 leaf-hash prefix
_SEQ_TIME = struct.Struct(">Qq")
_MAX_TEXT = 0xFFFF


class LeafFormatError(ValueError):
    """Bytes that are not a well-formed v1 leaf."""


class StoredEntry(NamedTuple):
    """The stored columns a leaf is made of, in leaf order."""

    seq: int
    time_us: int
    event_type: str
    actor_agency: str | None
    recipient_agency: str | None
    purpose: str | None
    decision: str | None
    agreement_id: str | None
    rule_id: str | None
    subject_index: str | None
    subject_index_key_id: str | None
    key_id: str
    details: bytes
    prev_hash: bytes


def clear_text(columns: Sequence[str | None]) -> bytes:
    """UTF-8 clear text of the ten clear columns (CLEAR_COLUMNS order)."""
    if len(columns) != len(CLEAR_COLUMNS):
        raise ValueError(f"expected {len(CLEAR_COLUMNS)} clear columns")
    text = SEPARATOR.join(c or "" for c in columns).encode("utf-8")
    if len(text) > _MAX_TEXT:
        raise ValueError("clear columns are too long for one leaf")
    return text


def details_aad(seq: int, time_us: int, text: bytes) -> bytes:
    """Associated data sealing the details to their row's position and clear columns."""
    return DETAILS_AAD_LABEL + _SEQ_TIME.pack(seq, time_us) + text


def leaf_bytes(entry: Sequence[Any]) -> bytes:
    """The canonical leaf bytes of one stored entry (ROW_COLUMNS order)."""
    return leaf_bytes_many((entry,))[0]


def leaf_bytes_many(rows: Iterable[Sequence[Any]], *, hash_input: bool = False) -> list[bytes]:
    """Leaf bytes of ROW_COLUMNS tuples: the ONE definition, used by append, export and verify.

    With ``hash_input`` each comes with the RFC 9162 leaf prefix 0x00 already in front (what
    SHA-256 hashes), saving the verifier a copy.  A plain loop: this is its hot path.
    """
    out: list[bytes] = []
    append = out.append
    pack = _HASH_HEAD.pack if hash_input else _HEAD.pack
    join = b"".join
    sep = SEPARATOR
    for r in rows:
        text = sep.join(
            (
                r[2],
                r[3] or "",
                r[4] or "",
                r[5] or "",
                r[6] or "",
                r[7] or "",
                r[8] or "",
                r[9] or "",
                r[10] or "",
                r[11],
            )
        ).encode("utf-8")
        details = r[12]
        append(
            join((pack(LEAF_VERSION, r[0], r[1], len(text), len(details)), text, details, r[13]))
        )
    return out


def parse_leaf(data: bytes) -> StoredEntry:
    """Split v1 leaf bytes back into their columns (strict: every byte accounted for)."""
    if len(data) < _HEAD.size + 32:
        raise LeafFormatError("leaf is too short")
    version, seq, time_us, text_len, details_len = _HEAD.unpack_from(data)
    if version != LEAF_VERSION:
        raise LeafFormatError(f"unknown leaf version {version}")
    if len(data) != _HEAD.size + text_len + details_len + 32:
        raise LeafFormatError("leaf length does not match its length fields")
    text_end = _HEAD.size + text_len
    try:
        fields = data[_HEAD.size : text_end].decode("utf-8").split(SEPARATOR)
    except UnicodeDecodeError:
        raise LeafFormatError("leaf clear text is not UTF-8") from None
    if len(fields) != len(CLEAR_COLUMNS):
        raise LeafFormatError("leaf clear text does not hold ten columns")
    if not fields[0] or not fields[-1]:
        raise LeafFormatError("leaf has no event type or key id")
    actor, recipient, purpose, decision, agreement, rule, index, index_key = (
        f or None for f in fields[1:9]
    )
    return StoredEntry(
        seq,
        time_us,
        fields[0],
        actor,
        recipient,
        purpose,
        decision,
        agreement,
        rule,
        index,
        index_key,
        fields[9],
        data[text_end : text_end + details_len],
        data[-32:],
    )


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """UTC microseconds since the Unix epoch (exact); the datetime must be timezone-aware."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the disclosure log")
    return (moment - _EPOCH) // _MICROSECOND


def from_us(time_us: int) -> datetime:
    """The UTC datetime of a microsecond timestamp."""
    return _EPOCH + timedelta(microseconds=time_us)
