"""POST /v1/referrals: the standard format, vocabularies, mappings, encryption, linking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text
from support.referrals import DOB, NARRATIVE, REFERRER, referral_body

from app.referrals.models import Referral
from app.state import AppState
from app.subjects.models import Subject, SubjectIdentifier

Auth = Callable[..., dict[str, str]]


def counts(state: AppState, *, with_log: bool = True) -> dict[str, int]:
    with state.engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names()
                  if t not in ("alembic_version", "audit_checkpoints") and (with_log or not t.startswith("audit_"))]
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()  # noqa: S608 - table names from the test schema
                for t in tables}


def every_stored_byte(state: AppState) -> bytes:
    """All rows of all tables, as bytes: what someone reading the database would see."""
    chunks = []
    with state.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 - table names from the test schema
                for value in row:
                    chunks.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(chunks)


class TestCreate:
    def test_creates_a_submitted_referral_in_the_standard_format(
        self, app_client: TestClient, auth: Auth
    ) -> None:
        response = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER, ))
        assert response.status_code == 201
        body = response.json()
        assert response.headers["location"] == f"/v1/referrals/{body['id']}"
        assert response.headers["etag"] == f'"{body["id"]}.v1"'
        assert body["id"].startswith("ref_")
        assert body["schema"] == "referral/v1"
        assert body["status"] == "submitted"
        assert body["referring_agency"] == "school-north"
        assert body["subject"]["id"].startswith("sub_")
        assert body["subject"]["given_name"] == "Yasmin"
        assert body["subject"]["date_of_birth"] == DOB
        assert body["subject"]["age_band"] in {"12_15", "16_17"}
        assert body["subject"]["district"] == "al-mina"
        assert body["narrative"] == NARRATIVE
        assert body["consent"]["status"] == "given" and body["consent"]["legal_basis"] == "consent"
        assert [h["status"] for h in body["status_history"]] == ["submitted"]

    def test_no_plaintext_identity_or_narrative_is_stored(
        self, app_client: TestClient, auth: Auth, state: AppState
    ) -> None:
        app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER))
        stored = every_stored_byte(state)
        for secret in (b"Yasmin", b"Haddad-Testperson", DOB.encode(), b"2009-03", b"20090314", b"14/03/2009",
                       b"LB-778899",
                       b"religion-marker-value", b"narrative-marker", b"555-0101", b"Rue Example"):
            assert secret not in stored, secret
        with state.sessions() as session:
            subject = session.scalars(select(Subject)).one()
            assert subject.identity is not None and subject.identity[:1] == b"\x01"
            referral = session.scalars(select(Referral)).one()
            assert referral.subject_submission is not None and referral.subject_submission[:1] == b"\x01"
            assert referral.subject_district == "al-mina"

    def test_a_ciphertext_moved_to_another_row_fails_to_decrypt(
        self, app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
    ) -> None:
        first = post_referral()
        other_subject = referral_body()["subject"] | {"given_name": "Omar", "identifiers": []}
        second = post_referral(subject=other_subject)
        assert first["subject"]["id"] != second["subject"]["id"]
        with state.sessions() as session:
            a = session.get(Subject, first["subject"]["id"])
            b = session.get(Subject, second["subject"]["id"])
            assert a is not None and b is not None
            b.identity = a.identity  # same bytes, wrong row: associated data no longer matches
            ra = session.get(Referral, first["id"])
            rb = session.get(Referral, second["id"])
            assert ra is not None and rb is not None
            rb.narrative = ra.narrative
            session.commit()
        response = app_client.get(
            f"/v1/referrals/{second['id']}", headers=auth(REFERRER, **{"X-Purpose": "safeguarding_assessment"})
        )
        assert response.status_code == 500
        assert response.json()["type"].endswith("integrity-failure")
        assert "Yasmin" not in response.text and "narrative-marker" not in response.text

    def test_an_identifier_links_a_second_referral_to_the_same_subject(
        self, post_referral: Callable[..., Any], state: AppState
    ) -> None:
        first = post_referral()
        subject = referral_body()["subject"] | {
            "given_name": "Different", "identifiers": [{"system": "national_id", "value": "lb 778-899"}]
        }
        second = post_referral("social-services-caseworker", subject=subject)
        assert second["subject"]["id"] == first["subject"]["id"]
        assert second["subject"]["given_name"] == "Different"  # its own submission, not the first record's
        unrelated = post_referral(subject=referral_body()["subject"] | {"identifiers": [
            {"system": "school-north:pupil", "value": "LB-778899"}]})
        assert unrelated["subject"]["id"] != first["subject"]["id"]
        with state.sessions() as session:
            digests = session.scalars(select(SubjectIdentifier.digest)).all()
            assert len(digests) == 2 and all(len(d) == 64 for d in digests)

    def test_unknown_codes_are_422_listing_the_valid_ones(
        self, app_client: TestClient, auth: Auth, state: AppState
    ) -> None:
        before = counts(state)
        body = referral_body(concerns=["hate_incident", "bad_vibes"], risk_level="extreme")
        response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        errors = {e["path"]: e for e in response.json()["errors"]}
        assert set(errors) == {"$.concerns[1]", "$.risk_level"}
        assert "hate_incident" in errors["$.concerns[1]"]["valid_codes"]
        assert errors["$.risk_level"]["valid_codes"] == ["critical", "high", "low", "medium"]
        assert counts(state) == before

    @pytest.mark.parametrize(
        ("changes", "path"),
        [
            ({"concerns": []}, "$.concerns"),
            ({"subject": {"date_of_birth": "not-a-date"}}, "$.subject.date_of_birth"),
            ({"subject": {"date_of_birth": "2999-01-01"}}, "$.subject.date_of_birth"),
            ({"subject": {"shoe_size": 44}}, "$.subject.shoe_size"),
            ({"consent": None}, "$.consent"),
            ({"narrative": "x" * 20_001}, "$.narrative"),
            ({"schema": "referral/v9"}, "$.schema"),
            ({"risk_level": None}, "$.risk_level"),
            ({"consent": {"status": "not_required"}}, "$.consent.legal_basis"),
        ],
    )
    def test_schema_violations_are_422_with_json_paths(
        self, app_client: TestClient, auth: Auth, state: AppState, changes: dict[str, Any], path: str
    ) -> None:
        before = counts(state)
        response = app_client.post("/v1/referrals", json=referral_body(**changes), headers=auth(REFERRER))
        assert response.status_code == 422, response.text
        assert path in [e["path"] for e in response.json()["errors"]]
        assert counts(state) == before

    @pytest.mark.parametrize(
        "raw",
        [b"\xff\xfe{not utf8", b'{"subject": ' * 3000 + b"{}" + b"}" * 3000, b"[]", b"null", b"", b"{"],
    )
    def test_malformed_bodies_are_4xx_never_500(
        self, app_client: TestClient, auth: Auth, state: AppState, raw: bytes
    ) -> None:
        before = counts(state)
        response = app_client.post(
            "/v1/referrals", content=raw, headers={**auth(REFERRER), "Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"] == "application/problem+json"
        assert counts(state) == before

    def test_oversize_body_is_413(self, app_client: TestClient, auth: Auth) -> None:
        body = referral_body(narrative="x" * (1_048_576 + 1))
        response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
        assert response.status_code == 413

    @pytest.mark.parametrize("client_id", ["youth-ngo-reader", "national-statistics", "independent-auditor",
                                           "municipality-operator", "youth-ngo-caseworker"])
    def test_only_referrers_post(self, app_client: TestClient, auth: Auth, client_id: str) -> None:
        response = app_client.post("/v1/referrals", json=referral_body(), headers=auth(client_id))
        assert response.status_code == 403

    def test_a_fault_after_the_subject_is_written_leaves_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.referrals import service

        before = counts(state)

        def explode(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("power cut")

        monkeypatch.setattr(service, "ReferralConcern", explode)
        response = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER))
        assert response.status_code == 500
        assert "Yasmin" not in response.text
        assert counts(state) == before


class TestCodeMappings:
    MAPPING = {
        "mapping": "school-north-codes",
        "agency": "school-north",
        "codes": {
            "concern_category": {"RAD-ONLINE": "online_radicalisation_exposure", "REC": "recruitment_contact"},
            "risk_level": {"R3": "high"},
        },
    }

    def test_a_referral_in_agency_codes_is_translated_and_the_originals_kept(
        self, app_client: TestClient, auth: Auth
    ) -> None:
        created = app_client.post("/v1/admin/mappings", json=self.MAPPING, headers=auth("municipality-operator"))
        assert created.status_code == 201
        body = referral_body(code_system="school-north-codes", concerns=["RAD-ONLINE", "hate_speech"], risk_level="R3")
        response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
        assert response.status_code == 201, response.text
        referral = response.json()
        assert referral["concerns"] == ["online_radicalisation_exposure", "hate_speech"]
        assert referral["risk_level"] == "high"
        assert referral["code_system"] == "school-north-codes"
        assert referral["original_codes"] == {"concerns[0]": "RAD-ONLINE", "risk_level": "R3"}

    def test_a_mapping_with_non_standard_targets_is_refused(self, app_client: TestClient, auth: Auth) -> None:
        bad = self.MAPPING | {"codes": {"concern_category": {"X": "not_a_code"}, "moods": {"a": "b"}}}
        response = app_client.post("/v1/admin/mappings", json=bad, headers=auth("municipality-operator"))
        assert response.status_code == 422
        assert "not_a_code" in response.text and "moods" in response.text

    def test_unknown_or_foreign_code_system_is_422(self, app_client: TestClient, auth: Auth) -> None:
        app_client.post("/v1/admin/mappings", json=self.MAPPING, headers=auth("municipality-operator"))
        body = referral_body(code_system="school-north-codes", concerns=["RAD-ONLINE"])
        foreign = app_client.post("/v1/referrals", json=body, headers=auth("school-south-referrer"))
        assert foreign.status_code == 422
        assert foreign.json()["errors"][0]["path"] == "$.code_system"
        unknown = app_client.post("/v1/referrals", json=referral_body(code_system="nope"), headers=auth(REFERRER))
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["valid_codes"] == ["school-north-codes", "school-north-legacy"]

    def test_unmapped_agency_codes_list_the_valid_standard_codes(self, app_client: TestClient, auth: Auth) -> None:
        app_client.post("/v1/admin/mappings", json=self.MAPPING, headers=auth("municipality-operator"))
        body = referral_body(code_system="school-north-codes", concerns=["UNMAPPED"])
        response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
        assert response.status_code == 422
        assert "hate_incident" in response.json()["errors"][0]["valid_codes"]


class TestIdempotency:
    def test_a_retry_returns_the_original_and_creates_nothing(
        self, app_client: TestClient, auth: Auth, state: AppState
    ) -> None:
        headers = {**auth(REFERRER), "Idempotency-Key": "retry-1"}
        first = app_client.post("/v1/referrals", json=referral_body(), headers=headers)
        before = counts(state, with_log=False)
        again = app_client.post("/v1/referrals", json=referral_body(), headers=headers)
        assert again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert counts(state, with_log=False) == before  # only the replay's access entry is new
        with state.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Referral)) == 1

    def test_the_same_key_with_another_body_is_409(self, app_client: TestClient, auth: Auth, state: AppState) -> None:
        headers = {**auth(REFERRER), "Idempotency-Key": "retry-2"}
        app_client.post("/v1/referrals", json=referral_body(), headers=headers)
        before = counts(state)
        response = app_client.post("/v1/referrals", json=referral_body(risk_level="low"), headers=headers)
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert counts(state) == before

    def test_keys_belong_to_one_client(self, app_client: TestClient, auth: Auth) -> None:
        a = app_client.post("/v1/referrals", json=referral_body(), headers={**auth(REFERRER), "Idempotency-Key": "k"})
        b = app_client.post("/v1/referrals", json=referral_body(),
                            headers={**auth("school-south-referrer"), "Idempotency-Key": "k"})
        assert a.status_code == b.status_code == 201
        assert a.json()["id"] != b.json()["id"]

    def test_a_failed_request_does_not_burn_its_key(self, app_client: TestClient, auth: Auth) -> None:
        headers = {**auth(REFERRER), "Idempotency-Key": "k-fail"}
        bad = app_client.post("/v1/referrals", json=referral_body(risk_level="nope"), headers=headers)
        assert bad.status_code == 422
        assert app_client.post("/v1/referrals", json=referral_body(), headers=headers).status_code == 201


def test_a_mapping_file_shipped_in_policies_translates(app_client: TestClient, auth: Auth) -> None:
    body = referral_body(code_system="school-north-legacy", concerns=["PC-ONLINE"], risk_level="R2")
    response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
    assert response.status_code == 201, response.text
    assert response.json()["concerns"] == ["online_radicalisation_exposure"]
    assert response.json()["original_codes"] == {"concerns[0]": "PC-ONLINE", "risk_level": "R2"}
    listed = app_client.get("/v1/admin/mappings", headers=auth("municipality-operator")).json()["items"]
    assert {"id": "school-north-legacy", "source": "file"}.items() <= listed[0].items()


def test_mapping_files_are_validated(tmp_path: Any) -> None:
    from app.vocabularies.mappings import MappingError, load_mapping_files

    (tmp_path / "bad.yaml").write_text("mapping: bad-one\nagency: x\ncodes: {risk_level: {A: nope}}\n")
    with pytest.raises(MappingError, match="bad.yaml"):
        load_mapping_files(tmp_path)


def test_a_racing_referral_about_the_same_person_is_a_retryable_409(
    app_client: TestClient, auth: Auth, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.subjects import service as subjects

    monkeypatch.setattr(subjects, "find_linked", lambda session, holders: None)  # the race: neither saw the other
    assert app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER)).status_code == 201
    before = counts(state)
    response = app_client.post("/v1/referrals", json=referral_body(), headers=auth("school-south-referrer"))
    assert response.status_code == 409
    assert response.json()["type"].endswith("concurrent-change")
    assert counts(state) == before
    monkeypatch.undo()
    retried = app_client.post("/v1/referrals", json=referral_body(), headers=auth("school-south-referrer"))
    assert retried.status_code == 201


class TestTheWritersTurnIsForWriting:
    """Sealing and rendering a new referral happen before the writer's turn, not in it."""

    @pytest.fixture
    def in_turn(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
        import contextlib
        import threading

        from app import door
        from app.crypto.envelope import DataKey
        from app.referrals import router

        held = threading.local()
        seen: dict[str, list[str]] = {"before": [], "in turn": []}
        unit_of_work, seal, render = router.unit_of_work, DataKey.seal, door.render_referral

        @contextlib.contextmanager
        def noted_unit_of_work(state: AppState) -> Any:
            with unit_of_work(state) as session:
                held.on = True
                try:
                    yield session
                finally:
                    held.on = False

        def where() -> list[str]:
            return seen["in turn" if getattr(held, "on", False) else "before"]

        def noted_seal(key: DataKey, plaintext: bytes, context: str) -> bytes:
            where().append(f"seal {context.split(':')[0]}")
            return seal(key, plaintext, context)

        def noted_render(*args: Any, **kwargs: Any) -> dict[str, Any]:
            where().append("render")
            result: dict[str, Any] = render(*args, **kwargs)
            return result

        monkeypatch.setattr(router, "unit_of_work", noted_unit_of_work)
        monkeypatch.setattr(DataKey, "seal", noted_seal)
        monkeypatch.setattr(door, "render_referral", noted_render)
        return seen

    def test_a_new_person(self, app_client: TestClient, auth: Any, in_turn: dict[str, list[str]]) -> None:
        response = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER))
        assert response.status_code == 201, response.text
        assert in_turn["in turn"] == []
        assert "render" in in_turn["before"] and "seal subject.identity" in in_turn["before"]
        assert any(item.startswith("seal referral") for item in in_turn["before"])

    def test_a_known_person(self, app_client: TestClient, auth: Any, in_turn: dict[str, list[str]]) -> None:
        first = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER)).json()
        in_turn["before"].clear()
        again = app_client.post("/v1/referrals", json=referral_body(risk_level="medium"),
                                headers=auth("school-south-referrer"))
        assert again.status_code == 201, again.text
        assert again.json()["subject"]["id"] == first["subject"]["id"]
        assert in_turn["in turn"] == []  # the merged identity too was sealed before the turn
        assert "seal subject.identity" in in_turn["before"] and "render" in in_turn["before"]
