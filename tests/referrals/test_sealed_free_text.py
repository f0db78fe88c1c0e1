"""Free text of a referral is sealed with its subject's key: never in clear in a table, the WAL or the log.

Who referred, who recorded consent, why and by whom a status changed: each is typed by a person
and may name one.  The scan posts a distinctive value in every such field, moves referrals
through their lifecycle, then reads every byte a database reader could see and every decrypted
log entry; erasing the person then leaves no way to read them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, inspect, select, text
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body
from support.retention import another_person, database_bytes, entries, is_sqlite, retention_settings

from app import migrate
from app.config import Settings
from app.crypto.envelope import Envelope
from app.crypto.keyring import Keyring
from app.db import make_engine
from app.referrals import sealed, snapshot
from app.referrals.models import Referral, StatusChange
from app.referrals.render import render_referral
from app.retention import shred
from app.state import AppState

Auth = Callable[..., dict[str, str]]
CASEWORKER = "youth-ngo-caseworker"

# Long and unlike anything else stored, so a random ciphertext never contains one by chance.
TEXT = {
    "referring_person": "Referrer-Wojciechowska-Quillfeather-7731",
    "recorded_by": "Consent-Recorder-Adebayo-Zephyrine-4418",
    "consent_recorded_by": "Consent-Updater-Oyelaran-Brimstone-5529",
    "consent_reason": "Consent-Reason-Mother-Withdrew-Vellichor-6620",
    "triaged": "Triage-Reason-Father-Known-To-Police-Sonder-9012",
    "accepted": "Accept-Reason-Panel-Agreed-Petrichor-3391",
    "assigned": "Assign-Reason-Mentor-Available-Halcyon-2287",
    "in_intervention": "Start-Reason-First-Session-Booked-Lagniappe-1173",
    "closed": "Close-Reason-Programme-Completed-Sempiternal-8840",
    "declined": "Decline-Reason-Threshold-Not-Met-Ineffable-5562",
    "withdrawn": "Withdraw-Reason-Family-Moved-Abroad-Mellifluous-4409",
    "transferred": "Transfer-Reason-Moved-To-The-Town-Susurrus-6681",
}
# People the clients act for (the token's `act`): recorded as who changed what.
ACT = {
    COORDINATOR: "act-Coordinator-Marchbanks-Thelonius-3307",
    REFERRER: "act-Referrer-Featherstonehaugh-Oriel-2219",
    CASEWORKER: "act-Caseworker-Okonkwo-Ebullient-6654",
}
EVERY_VALUE = [*TEXT.values(), *ACT.values()]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return retention_settings(tmp_path, database_url)  # no background jobs: the test reads the files


@pytest.fixture
def acting(app_client: TestClient, token_for: Callable[..., str]) -> Auth:
    """Headers for a client acting for its person (ACT), with extra headers."""
    tokens: dict[str, str] = {}

    def _headers(client_id: str, **extra: str) -> dict[str, str]:
        if client_id not in tokens:
            tokens[client_id] = token_for(client_id, act=ACT[client_id])
        return {"Authorization": f"Bearer {tokens[client_id]}", **extra}

    return _headers


def _post(app_client: TestClient, acting: Auth, **changes: Any) -> dict[str, Any]:
    body = referral_body(referring_person=TEXT["referring_person"],
                         consent={"status": "given", "recorded_by": TEXT["recorded_by"]}, **changes)
    response = app_client.post("/v1/referrals", json=body, headers=acting(REFERRER))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _move(app_client: TestClient, acting: Auth, referral_id: str, client_id: str, to: str, **body: Any) -> None:
    extra = {"Idempotency-Key": body.pop("key")} if "key" in body else {}
    for _ in range(2 if extra else 1):  # a keyed transition is retried: the replay stores nothing new
        response = app_client.post(f"/v1/referrals/{referral_id}/transitions",
                                   json={"to": to, "reason": TEXT[to], **body}, headers=acting(client_id, **extra))
        assert response.status_code == 200, response.text


@pytest.fixture
def lifecycle(app_client: TestClient, acting: Auth) -> dict[str, Any]:
    """One person with three referrals taken through every kind of step; another person transferred."""
    first = _post(app_client, acting)
    _move(app_client, acting, first["id"], COORDINATOR, "triaged")
    _move(app_client, acting, first["id"], COORDINATOR, "accepted")
    _move(app_client, acting, first["id"], COORDINATOR, "assigned", agencies=["youth-ngo-bridges"], key="assign-1")
    _move(app_client, acting, first["id"], CASEWORKER, "in_intervention")
    consent = app_client.post(
        f"/v1/referrals/{first['id']}/consent", headers=acting(REFERRER),
        json={"status": "withdrawn", "legal_basis": "public_task", "recorded_by": TEXT["consent_recorded_by"],
              "reason": TEXT["consent_reason"]},
    )
    assert consent.status_code == 200, consent.text
    _move(app_client, acting, first["id"], COORDINATOR, "closed", outcome="engaged_completed")
    second = _post(app_client, acting)
    _move(app_client, acting, second["id"], COORDINATOR, "triaged")
    _move(app_client, acting, second["id"], COORDINATOR, "declined")
    third = _post(app_client, acting)
    _move(app_client, acting, third["id"], REFERRER, "withdrawn")
    elsewhere = _post(app_client, acting, subject=another_person(1))
    _move(app_client, acting, elsewhere["id"], COORDINATOR, "transferred", to_network="demo-town")
    subject_id = first["subject"]["id"]
    assert second["subject"]["id"] == third["subject"]["id"] == subject_id
    return {"subject_id": subject_id, "referral_ids": [first["id"], second["id"], third["id"]],
            "transferred": elsewhere["id"]}


# -- what a reader of the storage sees -----------------------------------------------------


def every_row_value(state: AppState) -> bytes:
    """Every value of every row of every table, as bytes (JSON as its text)."""
    chunks = []
    with state.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608 - names from the schema
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value))
                    elif isinstance(value, dict | list):
                        chunks.append(json.dumps(value, ensure_ascii=False).encode())
                    else:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def postgres_text_and_bytes(engine: Engine) -> Iterator[tuple[str, str, bytes]]:
    """(table, column, value) for every text, json and bytea column of every table (information_schema)."""
    with engine.connect() as conn:
        columns = conn.execute(text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND (data_type IN ('text', 'character varying', 'character', "
            "'json', 'jsonb', 'bytea') OR data_type = 'ARRAY') ORDER BY table_name, ordinal_position"
        )).all()
        assert {"referrals", "referral_status_changes", "audit_entries"} <= {t for t, _, _ in columns}
        for table, column, data_type in columns:
            # bytea as its raw bytes (clear text stored there would show), everything else as text.
            expression = f'"{column}"' if data_type == "bytea" else f'"{column}"::text'
            query = f'SELECT {expression} FROM "{table}" WHERE "{column}" IS NOT NULL'  # noqa: S608 - schema names
            for (value,) in conn.execute(text(query)):
                yield table, column, bytes(value) if data_type == "bytea" else str(value).encode()
        for (table,) in conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )):
            for (row,) in conn.execute(text(f'SELECT t::text FROM "{table}" t')):  # noqa: S608 - schema names
                yield table, "*", str(row).encode()


def assert_nowhere_in_clear(state: AppState, settings: Settings, values: list[str]) -> None:
    stored = every_row_value(state)
    for value in values:
        assert value.encode() not in stored, value
    if is_sqlite(settings):
        raw = database_bytes(settings)  # the file, its -wal and -shm
        for value in values:
            assert value.encode() not in raw, value
    else:
        for table, column, found in postgres_text_and_bytes(state.engine):
            for value in values:
                assert value.encode() not in found, (table, column, value)


def assert_no_value_in_the_log(state: AppState) -> None:
    """Decrypted, the log's details hold ids, codes and field names; who acted only as on_behalf_of."""
    logged = entries(state)
    assert logged
    for entry in logged:
        details = dict(entry.details or {})
        acting_for = details.pop("on_behalf_of", None)
        assert acting_for in (None, *ACT.values()), entry.event_type
        dumped = json.dumps(details, ensure_ascii=False)
        for value in EVERY_VALUE:
            assert value not in dumped, (entry.event_type, value)


class TestSealedFreeText:
    def test_every_free_text_field_is_readable_where_granted(
        self, app_client: TestClient, auth: Auth, lifecycle: dict[str, Any]
    ) -> None:
        first, second, third = lifecycle["referral_ids"]
        for client in (REFERRER, COORDINATOR):
            got = app_client.get(f"/v1/referrals/{first}", headers=auth(client, **PURPOSE))
            assert got.status_code == 200, got.text
            body = got.json()
            assert body["referring_person"] == TEXT["referring_person"]
            assert body["consent"]["recorded_by"] == TEXT["consent_recorded_by"]
            assert body["consent"]["status"] == "withdrawn"
            assert [(h["status"], h["reason"]) for h in body["status_history"]] == [
                ("submitted", None),
                *[(s, TEXT[s]) for s in ("triaged", "accepted", "assigned", "in_intervention", "closed")],
            ]
        declined = app_client.get(f"/v1/referrals/{second}", headers=auth(COORDINATOR, **PURPOSE)).json()
        assert declined["status_history"][-1]["reason"] == TEXT["declined"]
        assert declined["consent"]["recorded_by"] == TEXT["recorded_by"]
        withdrawn = app_client.get(f"/v1/referrals/{third}", headers=auth(REFERRER, **PURPOSE)).json()
        assert withdrawn["status_history"][-1]["reason"] == TEXT["withdrawn"]

    def test_a_writer_that_may_read_the_record_gets_its_free_text_in_the_reply(
        self, app_client: TestClient, acting: Auth
    ) -> None:
        created = _post(app_client, acting)
        assert created["referring_person"] == TEXT["referring_person"]
        assert created["consent"]["recorded_by"] == TEXT["recorded_by"]
        reply = app_client.post(f"/v1/referrals/{created['id']}/transitions", json={"to": "triaged",
                                "reason": TEXT["triaged"]}, headers=acting(COORDINATOR, **PURPOSE))
        assert reply.status_code == 200, reply.text
        assert reply.json()["status_history"][-1]["reason"] == TEXT["triaged"]
        consent = app_client.post(f"/v1/referrals/{created['id']}/consent", headers=acting(REFERRER, **PURPOSE),
                                  json={"status": "given", "recorded_by": TEXT["consent_recorded_by"]})
        assert consent.status_code == 200, consent.text
        assert consent.json()["consent"]["recorded_by"] == TEXT["consent_recorded_by"]

    def test_no_free_text_is_stored_or_logged_in_clear_and_erasure_shreds_it(
        self, app_client: TestClient, auth: Auth, state: AppState, settings: Settings, lifecycle: dict[str, Any]
    ) -> None:
        with state.sessions() as session:
            steps = session.scalars(select(StatusChange)).all()
            referrals = session.scalars(select(Referral)).all()
            assert all(isinstance(s.by_person, bytes) for s in steps)
            assert {s.to_status for s in steps if s.reason is not None} == {
                "triaged", "accepted", "assigned", "in_intervention", "closed", "declined", "withdrawn", "transferred"}
            assert all(isinstance(r.referring_person, bytes) and isinstance(r.consent_recorded_by, bytes)
                       and "recorded_by" not in r.consent for r in referrals)
            ciphertexts = [c for s in steps if s.referral_id in lifecycle["referral_ids"]
                           for c in (s.reason, s.by_person) if c]
            ciphertexts += [c for r in referrals if r.id in lifecycle["referral_ids"]
                            for c in (r.referring_person, r.consent_recorded_by) if c]

        assert_nowhere_in_clear(state, settings, EVERY_VALUE)
        assert_no_value_in_the_log(state)

        erased = app_client.post(f"/v1/subjects/{lifecycle['subject_id']}/erasure", headers=auth(COORDINATOR),
                                 json={"legal_ground": "consent_withdrawn", "reference": "DSR-2026-0911"})
        assert erased.status_code == 200, erased.text
        for referral_id in lifecycle["referral_ids"]:
            for client in (REFERRER, COORDINATOR):
                got = app_client.get(f"/v1/referrals/{referral_id}", headers=auth(client, **PURPOSE))
                assert got.status_code == 410, got.text
                assert not any(value in got.text for value in EVERY_VALUE)
        listed = app_client.get("/v1/referrals", headers=auth(COORDINATOR, **PURPOSE))
        assert not any(value in listed.text for value in EVERY_VALUE)
        stored = every_row_value(state) + (database_bytes(settings) if is_sqlite(settings) else b"")
        for ciphertext in ciphertexts:
            assert ciphertext not in stored
        assert_nowhere_in_clear(state, settings, EVERY_VALUE)
        assert_no_value_in_the_log(state)


class TestRendering:
    def test_nothing_outside_the_view_is_even_opened(
        self, state: AppState, lifecycle: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        opened: list[str] = []
        real = sealed.Opener.text

        def spy(self: sealed.Opener, value: bytes | None, context: str) -> str | None:
            opened.append(context.split(":")[0])
            return real(self, value, context)

        monkeypatch.setattr(sealed.Opener, "text", spy)
        with state.sessions() as session:
            record = snapshot.load(session, lifecycle["referral_ids"][0])
        summary = render_referral(record, record.subject, state.envelope,
                                  frozenset({"status", "concerns", "subject.age_band"}))
        assert opened == [] and not any(v in json.dumps(summary) for v in EVERY_VALUE)
        history = render_referral(record, record.subject, state.envelope, frozenset({"status_history"}))
        assert set(opened) == {sealed.STEP_REASON}
        assert history["status_history"][1]["reason"] == TEXT["triaged"]

    def test_a_person_whose_key_is_destroyed_renders_as_absent_not_an_error(
        self, state: AppState, lifecycle: dict[str, Any]
    ) -> None:
        with state.sessions() as session:
            record = snapshot.load(session, lifecycle["referral_ids"][0])
        shredded = dataclasses.replace(record.subject, wrapped_key=None, kek_id=None)
        document = render_referral(dataclasses.replace(record, subject=shredded), shredded, state.envelope,
                                   frozenset({"referring_person", "consent", "status_history"}))
        assert document["referring_person"] is None
        assert document["consent"]["recorded_by"] is None and document["consent"]["status"] == "withdrawn"
        assert [h["reason"] for h in document["status_history"]] == [None] * 6

    def test_a_reason_moved_to_another_step_fails_its_integrity_check(
        self, app_client: TestClient, auth: Auth, state: AppState, lifecycle: dict[str, Any]
    ) -> None:
        first = lifecycle["referral_ids"][0]
        with state.sessions() as session:
            steps = session.scalars(select(StatusChange).where(StatusChange.referral_id == first)
                                    .order_by(StatusChange.id)).all()
            steps[1].reason, steps[2].reason = steps[2].reason, steps[1].reason  # same person, wrong rows
            session.commit()
        got = app_client.get(f"/v1/referrals/{first}", headers=auth(COORDINATOR, **PURPOSE))
        assert got.status_code == 500
        assert got.json()["type"].endswith("integrity-failure")
        assert not any(value in got.text for value in EVERY_VALUE)


# -- migration 0007 ------------------------------------------------------------------------

LEGACY = {
    "person": "Legacy-Referrer-Abernathy-Kittiwake-1029",
    "recorded_by": "Legacy-Recorder-Baptiste-Nightjar-3847",
    "reason": "Legacy-Reason-Uncle-Named-Here-Corvid-5610",
    "by_person": "Legacy-Actor-Cholmondeley-Plover-7725",
    "erased": "Legacy-Erased-Person-Text-Dunnock-9934",
}


def _legacy_rows(engine: Engine, envelope: Envelope) -> None:
    """At revision 0006: a person with clear free text, and an erased person (no key) with some."""
    from datetime import UTC, datetime

    tables = MetaData()
    tables.reflect(engine)
    now = datetime.now(UTC)
    _, wrapped = envelope.new_data_key("sub_kept")
    referral = dict(schema_id="referral/v1", referring_agency="school-north", referring_client="c",
                    concerns=[], vulnerability_factors=[], protective_factors=[], risk_level="high",
                    urgency="routine", consent_status="given", requested_services=[], do_not_contact=False,
                    original_codes={}, status="triaged", version=2, created_at=now, updated_at=now,
                    network_id="demo-city")
    consent = {"status": "given", "legal_basis": "consent", "recorded_at": now.isoformat()}
    with engine.begin() as conn:
        conn.execute(tables.tables["agencies"].insert().values(id="school-north", name="School", sector="education",
                                                               created_at=now))
        conn.execute(tables.tables["subjects"].insert(), [
            {"id": "sub_kept", "wrapped_key": wrapped.wrapped, "kek_id": wrapped.kek_id,
             "created_at": now, "updated_at": now},
            {"id": "sub_erased", "wrapped_key": None, "kek_id": None, "created_at": now, "updated_at": now},
        ])
        conn.execute(tables.tables["referrals"].insert(), [
            {**referral, "id": "ref_kept", "subject_id": "sub_kept", "referring_person": LEGACY["person"],
             "consent": {**consent, "recorded_by": LEGACY["recorded_by"]}},
            {**referral, "id": "ref_erased", "subject_id": "sub_erased", "referring_person": LEGACY["erased"],
             "consent": {**consent, "recorded_by": LEGACY["erased"]}},
        ])
        # Every row names every column: an executemany takes its columns from the first row.
        step = dict(agencies=[], by_agency="city-municipality", by_client="c", at=now, from_status=None, reason=None)
        conn.execute(tables.tables["referral_status_changes"].insert(), [
            {**step, "id": 1, "referral_id": "ref_kept", "to_status": "submitted", "by_person": LEGACY["by_person"]},
            {**step, "id": 2, "referral_id": "ref_kept", "from_status": "submitted", "to_status": "triaged",
             "reason": LEGACY["reason"], "by_person": LEGACY["by_person"]},
            {**step, "id": 3, "referral_id": "ref_erased", "to_status": "triaged", "reason": LEGACY["erased"],
             "by_person": LEGACY["erased"]},
        ])


def _stored(engine: Engine) -> bytes:
    chunks = []
    with engine.connect() as conn:
        for table in ("referrals", "referral_status_changes"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 - fixed names
                chunks += [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row]
    if engine.dialect.name == "sqlite":
        assert shred.fold_wal(engine)  # the file after a checkpoint, and what the WAL still holds
        path = Path(str(engine.url.database))
        chunks += [Path(str(path) + suffix).read_bytes() for suffix in ("", "-wal")
                   if Path(str(path) + suffix).exists()]
    return b"\n".join(chunks)


def _clear_out(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("referral_status_changes", "referrals", "subjects", "agencies"):
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


@pytest.fixture
def at_0006(database_url: str) -> Iterator[Engine]:
    """The test database taken back to revision 0006, and brought to head again afterwards."""
    engine = make_engine(database_url)
    _clear_out(engine)
    migrate.downgrade(engine, "0006")
    try:
        yield engine
    finally:
        _clear_out(engine)
        migrate.upgrade(engine)
        engine.dispose()


class TestMigration:
    def test_0007_seals_existing_free_text_and_its_downgrade_opens_it(self, at_0006: Engine) -> None:
        keyring = Keyring.generate()
        envelope = Envelope(keyring)
        _legacy_rows(at_0006, envelope)
        assert LEGACY["reason"].encode() in _stored(at_0006)

        migrate.upgrade(at_0006, "0007", keyring=keyring)

        stored = _stored(at_0006)
        for value in LEGACY.values():
            assert value.encode() not in stored, value
        with at_0006.connect() as conn:
            kept = conn.execute(text("SELECT referring_person, consent_recorded_by, consent FROM referrals "
                                     "WHERE id = 'ref_kept'")).one()
            erased = conn.execute(text("SELECT referring_person, consent_recorded_by FROM referrals "
                                       "WHERE id = 'ref_erased'")).one()
            steps = {i: (r, b) for i, r, b in conn.execute(text(
                "SELECT id, reason, by_person FROM referral_status_changes"))}
            wrapped, kek_id = conn.execute(text("SELECT wrapped_key, kek_id FROM subjects WHERE id = 'sub_kept'")).one()
        from app.crypto.envelope import WrappedKey

        key = envelope.unwrap("sub_kept", WrappedKey(kek_id, bytes(wrapped)))

        def opened(value: Any, context: str) -> str:
            return key.open(bytes(value), context).decode()

        # The service opens them with its own contexts: the migration sealed them the same way.
        consent = kept.consent if isinstance(kept.consent, dict) else json.loads(kept.consent)
        assert "recorded_by" not in consent and consent["status"] == "given"
        assert opened(kept.referring_person,
                      sealed.on_referral(sealed.REFERRING_PERSON, "ref_kept")) == LEGACY["person"]
        assert opened(kept.consent_recorded_by,
                      sealed.on_referral(sealed.CONSENT_RECORDED_BY, "ref_kept")) == LEGACY["recorded_by"]
        assert steps[1][0] is None
        assert opened(steps[2][0], sealed.on_step(sealed.STEP_REASON, "ref_kept", 2)) == LEGACY["reason"]
        assert opened(steps[2][1], sealed.on_step(sealed.STEP_BY_PERSON, "ref_kept", 2)) == LEGACY["by_person"]
        assert tuple(erased) == (None, None) and steps[3] == (None, None)  # the erased person's text is gone

        migrate.downgrade(at_0006, "0006", keyring=keyring)
        with at_0006.connect() as conn:
            person, consent_text = conn.execute(text(
                "SELECT referring_person, consent FROM referrals WHERE id = 'ref_kept'")).one()
            reasons: dict[int, Any] = dict(conn.execute(text("SELECT id, reason FROM referral_status_changes")).all())
        consent = consent_text if isinstance(consent_text, dict) else json.loads(consent_text)
        assert person == LEGACY["person"] and consent["recorded_by"] == LEGACY["recorded_by"]
        assert reasons == {1: None, 2: LEGACY["reason"], 3: None}

    def test_0007_without_the_keyring_refuses_and_changes_nothing(
        self, at_0006: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _legacy_rows(at_0006, Envelope(Keyring.generate()))
        monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(tmp_path / "no-keyring.json"))
        monkeypatch.delenv("CASEBRIDGE_KEYRING_JSON", raising=False)
        with pytest.raises(RuntimeError, match="needs the keyring"):
            migrate.upgrade(at_0006, "0007")
        assert migrate.current_revisions(at_0006) == {"0006"}
        with at_0006.connect() as conn:
            assert conn.execute(text("SELECT referring_person FROM referrals WHERE id = 'ref_kept'")).scalar_one() \
                == LEGACY["person"]
        assert not (tmp_path / "no-keyring.json").exists()  # never created by a migration

    def test_0007_with_another_keyring_refuses(self, at_0006: Engine) -> None:
        _legacy_rows(at_0006, Envelope(Keyring.generate()))
        with pytest.raises(RuntimeError, match="cannot unwrap"):
            migrate.upgrade(at_0006, "0007", keyring=Keyring.generate())
        assert migrate.current_revisions(at_0006) == {"0006"}
