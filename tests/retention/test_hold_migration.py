"""Migration 0010 seals the reasons of existing case holds with the person's key, and back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, text

from app import migrate
from app.crypto.envelope import Envelope, WrappedKey
from app.crypto.keyring import Keyring
from app.db import make_engine
from app.retention import holds, shred

LEGACY = {
    "reason": "Legacy-Hold-Court-Case-About-Ortolan-4411",
    "lift": "Legacy-Lift-Proceedings-Closed-Shrike-2290",
    "erased": "Legacy-Hold-Erased-Person-Wryneck-7302",
    "orphan": "Legacy-Hold-Referral-Gone-Brambling-6618",
}
AGENCY_REASON = "Inquiry into school-north records 2026"
TABLES = ("legal_holds", "referrals", "subjects", "agencies")


def _legacy_rows(engine: Engine, envelope: Envelope) -> None:
    """At revision 0009: case holds with clear reasons (a person kept, one erased, a referral gone)
    and an agency-wide hold."""
    tables = MetaData()
    tables.reflect(engine)
    now = datetime.now(UTC)
    _, wrapped = envelope.new_data_key("sub_kept")
    referral = dict(schema_id="referral/v1", referring_agency="school-north", referring_client="c",
                    concerns=[], vulnerability_factors=[], protective_factors=[], risk_level="high",
                    urgency="routine", consent={}, consent_status="given", requested_services=[],
                    do_not_contact=False, original_codes={}, status="triaged", version=2, created_at=now,
                    updated_at=now, network_id="demo-city")
    hold = dict(scope="referral", agency_id=None, placed_by_agency="city-municipality", placed_by_client="c",
                placed_at=now, lifted_at=None, lifted_by_client=None, lift_reason=None)
    with engine.begin() as conn:
        conn.execute(tables.tables["agencies"].insert().values(id="school-north", name="School", sector="education",
                                                               created_at=now))
        conn.execute(tables.tables["subjects"].insert(), [
            {"id": "sub_kept", "wrapped_key": wrapped.wrapped, "kek_id": wrapped.kek_id,
             "created_at": now, "updated_at": now},
            {"id": "sub_erased", "wrapped_key": None, "kek_id": None, "created_at": now, "updated_at": now},
        ])
        conn.execute(tables.tables["referrals"].insert(), [
            {**referral, "id": "ref_kept", "subject_id": "sub_kept"},
            {**referral, "id": "ref_erased", "subject_id": "sub_erased"},
        ])
        conn.execute(tables.tables["legal_holds"].insert(), [
            {**hold, "id": "hold_kept", "referral_id": "ref_kept", "reason": LEGACY["reason"], "lifted_at": now,
             "lifted_by_client": "c", "lift_reason": LEGACY["lift"]},
            {**hold, "id": "hold_erased", "referral_id": "ref_erased", "reason": LEGACY["erased"]},
            {**hold, "id": "hold_orphan", "referral_id": "ref_gone", "reason": LEGACY["orphan"]},
            {**hold, "id": "hold_agency", "scope": "agency", "agency_id": "school-north", "referral_id": None,
             "reason": AGENCY_REASON},
        ])


def _stored(engine: Engine) -> bytes:
    chunks = []
    with engine.connect() as conn:
        for row in conn.execute(text("SELECT * FROM legal_holds")):
            chunks += [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row]
    if engine.dialect.name == "sqlite":
        assert shred.fold_wal(engine)
        path = Path(str(engine.url.database))
        chunks += [Path(str(path) + suffix).read_bytes() for suffix in ("", "-wal")
                   if Path(str(path) + suffix).exists()]
    return b"\n".join(chunks)


def _holds(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(text("SELECT * FROM legal_holds"))}


def _clear_out(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


@pytest.fixture
def at_0009(database_url: str) -> Iterator[Engine]:
    """The test database taken back to revision 0009, and brought to head again afterwards."""
    engine = make_engine(database_url)
    _clear_out(engine)
    migrate.downgrade(engine, "0009")
    try:
        yield engine
    finally:
        _clear_out(engine)
        migrate.upgrade(engine)
        engine.dispose()


class TestMigration:
    def test_0010_seals_existing_case_hold_reasons_and_its_downgrade_opens_them(self, at_0009: Engine) -> None:
        keyring = Keyring.generate()
        envelope = Envelope(keyring)
        _legacy_rows(at_0009, envelope)
        assert LEGACY["reason"].encode() in _stored(at_0009)

        migrate.upgrade(at_0009, "0010", keyring=keyring)

        stored = _stored(at_0009)
        for value in LEGACY.values():
            assert value.encode() not in stored, value
        rows = _holds(at_0009)
        with at_0009.connect() as conn:
            wrapped, kek_id = conn.execute(text("SELECT wrapped_key, kek_id FROM subjects WHERE id = 'sub_kept'")).one()
        key = envelope.unwrap("sub_kept", WrappedKey(kek_id, bytes(wrapped)))
        kept = rows["hold_kept"]
        # The service opens them with its own contexts: the migration sealed them the same way.
        assert key.open(bytes(kept.sealed_reason), f"{holds.REASON}:hold_kept").decode() == LEGACY["reason"]
        assert key.open(bytes(kept.sealed_lift_reason), f"{holds.LIFT_REASON}:hold_kept").decode() == LEGACY["lift"]
        assert (kept.reason, kept.lift_reason) == (None, None)
        for gone in ("hold_erased", "hold_orphan"):  # the erased person's text went with the erasure
            assert (rows[gone].reason, rows[gone].sealed_reason) == (None, None)
        agency = rows["hold_agency"]
        assert (agency.reason, agency.sealed_reason) == (AGENCY_REASON, None)  # the operator's text

        migrate.downgrade(at_0009, "0009", keyring=keyring)
        reasons = {i: (r.reason, r.lift_reason) for i, r in _holds(at_0009).items()}
        assert reasons == {
            "hold_kept": (LEGACY["reason"], LEGACY["lift"]),
            "hold_erased": ("", None),
            "hold_orphan": ("", None),
            "hold_agency": (AGENCY_REASON, None),
        }

    def test_0010_without_the_keyring_refuses_and_changes_nothing(
        self, at_0009: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _legacy_rows(at_0009, Envelope(Keyring.generate()))
        monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(tmp_path / "no-keyring.json"))
        monkeypatch.delenv("CASEBRIDGE_KEYRING_JSON", raising=False)
        with pytest.raises(RuntimeError, match="needs the keyring"):
            migrate.upgrade(at_0009, "0010")
        assert migrate.current_revisions(at_0009) == {"0009"}
        assert _holds(at_0009)["hold_kept"].reason == LEGACY["reason"]
        assert not (tmp_path / "no-keyring.json").exists()
