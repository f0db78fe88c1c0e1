"""The leaf format v1: exact bytes, one definition everywhere, strict parsing."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.audit.leaf import (
    DETAILS_AAD_LABEL,
    LeafFormatError,
    StoredEntry,
    clear_text,
    details_aad,
    from_us,
    leaf_bytes,
    leaf_bytes_many,
    parse_leaf,
    to_us,
)

ENTRY = StoredEntry(
    seq=7,
    time_us=1_795_000_000_123_456,
    event_type="disclosure",
    actor_agency="school-north",
    recipient_agency="city-municipality",
    purpose="safeguarding_assessment",
    decision="permit",
    agreement_id="demo-city",
    rule_id="coordinator-full",
    subject_index="ab" * 32,
    subject_index_key_id="bix-1",
    key_id="aud-1",
    details=b"\x01sealed-bytes",
    prev_hash=bytes(range(32)),
)


class TestLeafBytes:
    def test_known_answer(self) -> None:
        text = (
            "disclosure\x1fschool-north\x1fcity-municipality\x1fsafeguarding_assessment\x1fpermit"
            "\x1fdemo-city\x1fcoordinator-full\x1f" + "ab" * 32 + "\x1fbix-1\x1faud-1"
        ).encode()
        expected = (
            b"\x01"
            + struct.pack(">Q", 7)
            + struct.pack(">q", 1_795_000_000_123_456)
            + struct.pack(">H", len(text))
            + struct.pack(">I", len(ENTRY.details))
            + text
            + ENTRY.details
            + ENTRY.prev_hash
        )
        assert leaf_bytes(ENTRY) == expected

    def test_absent_columns_are_empty_and_round_trip_to_none(self) -> None:
        sparse = ENTRY._replace(
            actor_agency=None,
            recipient_agency=None,
            purpose=None,
            decision=None,
            agreement_id=None,
            rule_id=None,
            subject_index=None,
            subject_index_key_id=None,
        )
        data = leaf_bytes(sparse)
        assert b"disclosure" + b"\x1f" * 9 + b"aud-1" in data
        assert parse_leaf(data) == sparse

    def test_parse_round_trips(self) -> None:
        assert parse_leaf(leaf_bytes(ENTRY)) == ENTRY

    def test_many_is_the_same_function(self) -> None:
        rows = [ENTRY._replace(seq=i, details=bytes([i]) * i) for i in range(50)]
        assert leaf_bytes_many(rows) == [leaf_bytes(r) for r in rows]

    def test_every_column_changes_the_leaf(self) -> None:
        base = leaf_bytes(ENTRY)
        for name in StoredEntry._fields:
            value = getattr(ENTRY, name)
            if isinstance(value, int):
                changed = value + 1
            elif isinstance(value, bytes):
                changed = value[:-1] + bytes([value[-1] ^ 1])
            else:
                changed = value + "x"
            assert leaf_bytes(ENTRY._replace(**{name: changed})) != base, name

    def test_aad_binds_position_time_and_clear_columns(self) -> None:
        text = clear_text(ENTRY[2:12])
        aad = details_aad(ENTRY.seq, ENTRY.time_us, text)
        assert aad.startswith(DETAILS_AAD_LABEL)
        assert text in leaf_bytes(ENTRY)
        assert details_aad(ENTRY.seq + 1, ENTRY.time_us, text) != aad
        assert details_aad(ENTRY.seq, ENTRY.time_us + 1, text) != aad


class TestParseLeafIsStrict:
    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (lambda b: b"\x02" + b[1:], "unknown leaf version"),
            (lambda b: b + b"\x00", "length"),
            (lambda b: b[:-1], "length"),
            (lambda b: b[:10], "too short"),
        ],
    )
    def test_malformed_leaves_are_refused(self, mutate: object, message: str) -> None:
        with pytest.raises(LeafFormatError, match=message):
            parse_leaf(mutate(leaf_bytes(ENTRY)))  # type: ignore[operator]

    def test_wrong_number_of_columns(self) -> None:
        data = bytearray(leaf_bytes(ENTRY))
        data[23 + 10] = ord("x")  # the first separator (after "disclosure") becomes text
        with pytest.raises(LeafFormatError, match="ten columns"):
            parse_leaf(bytes(data))

    def test_non_utf8_text(self) -> None:
        data = bytearray(leaf_bytes(ENTRY))
        data[23] = 0xFF
        with pytest.raises(LeafFormatError, match="UTF-8"):
            parse_leaf(bytes(data))


class TestTime:
    def test_microseconds_are_exact(self) -> None:
        moment = datetime(2026, 11, 21, 6, 7, 8, 123456, tzinfo=UTC)
        assert from_us(to_us(moment)) == moment
        assert to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0

    def test_zones_are_normalised(self) -> None:
        local = datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
        assert to_us(local) == to_us(datetime(2026, 1, 1, tzinfo=UTC))

    def test_naive_times_are_refused(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            to_us(datetime(2026, 1, 1))  # noqa: DTZ001
