"""Erasure on request: the person is gone at once, wherever a reader or the file could look."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.referrals import BASE_REFERRAL, COORDINATOR, NAME, NARRATIVE, PURPOSE, REFERRER
from support.retention import database_bytes, entries, is_sqlite, rows, verify_log

from app.config import Settings
from app.emergency.models import EmergencyGrant
from app.idempotency import IdempotencyRecord
from app.notes.models import Note
from app.referrals.models import Referral, ReferralConcern, StatusChange
from app.retention import purge, shred
from app.retention.ledger import ErasureLedger
from app.retention.models import Tombstone
from app.state import AppState
from app.subjects.models import Subject, SubjectIdentifier

Auth = Callable[..., dict[str, str]]
ADMIN = "municipality-operator"
GROUND = {"legal_ground": "consent_withdrawn", "reference": "DSR-2026-0042"}
NOTE_TEXT = "Note-marker: Yasmin's mentor met her aunt on Tuesday."


@pytest.fixture
def person(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
) -> dict[str, Any]:
    """A person with two referrals and a note, one referral assigned and worked on."""
    first = post_referral()
    second = post_referral(narrative="A second concern, narrative-two-marker.")
    move(first["id"], "triaged", "accepted")
    response = app_client.post(
        f"/v1/referrals/{first['id']}/notes",
        headers=auth(REFERRER),
        json={"classification": "shared", "text": NOTE_TEXT},
    )
    assert response.status_code == 201
    return {
        "subject_id": first["subject"]["id"],
        "referral_ids": sorted([first["id"], second["id"]]),
        "note_id": response.json()["id"],
    }


def _erase(app_client: TestClient, auth: Auth, subject_id: str, client: str = COORDINATOR) -> Any:
    return app_client.post(f"/v1/subjects/{subject_id}/erasure", headers=auth(client), json=GROUND)


SECRETS = [
    NAME.encode(),
    b"Haddad-Testperson",
    b"LB-778899",
    b"+961-70-555-0101",
    b"12 Rue Example",
    b"religion-marker-value",
    NARRATIVE.encode(),
    b"narrative-two-marker",
    b"Note-marker",
]


class TestErasure:
    def test_erasure_leaves_nothing_readable_and_every_read_answers_410(
        self,
        app_client: TestClient,
        state: AppState,
        settings: Settings,
        auth: Auth,
        person: dict[str, Any],
    ) -> None:
        subject_id = person["subject_id"]
        sealed = rows(state, Subject, id=subject_id)[0]
        ciphertexts = (
            [sealed.wrapped_key, sealed.identity]
            + [r.narrative for r in rows(state, Referral, subject_id=subject_id)]
            + [n.text for n in rows(state, Note, id=person["note_id"])]
        )
        digests = [i.digest.encode() for i in rows(state, SubjectIdentifier, subject_id=subject_id)]

        response = _erase(app_client, auth, subject_id)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "erased"
        assert body["referral_ids"] == person["referral_ids"]
        assert body["notes"] == 1

        for referral_id in person["referral_ids"]:
            for client in (COORDINATOR, REFERRER):
                got = app_client.get(
                    f"/v1/referrals/{referral_id}", headers=auth(client, **PURPOSE)
                )
                assert got.status_code == 410, got.text
                assert got.json()["type"].endswith("/referral-erased")
            assert (
                app_client.get(
                    f"/v1/referrals/{referral_id}/notes", headers=auth(COORDINATOR, **PURPOSE)
                ).status_code
                == 410
            )
        listed = app_client.get("/v1/referrals", headers=auth(COORDINATOR, **PURPOSE)).json()
        assert listed["items"] == []

        for model, where in (
            (Subject, {"id": subject_id}),
            (SubjectIdentifier, {"subject_id": subject_id}),
            (Referral, {"subject_id": subject_id}),
            (Note, {"id": person["note_id"]}),
            (IdempotencyRecord, {}),
            (EmergencyGrant, {}),
            (ReferralConcern, {}),
            (StatusChange, {}),
        ):
            assert rows(state, model, **where) == [], model
        assert {t.record_id for t in rows(state, Tombstone)} == {
            subject_id,
            *person["referral_ids"],
        }

        if is_sqlite(settings):
            raw = database_bytes(settings)
            for secret in SECRETS + digests + [c for c in ciphertexts if c]:
                assert secret not in raw, secret[:24]

        [entry] = entries(state, event_type="erasure", subject_id=subject_id)
        assert entry.actor_agency == "city-municipality"
        assert entry.details is not None
        assert entry.details["legal_ground"] == "consent_withdrawn"
        assert entry.details["reference"] == "DSR-2026-0042"
        assert entry.details["record_ids"]["referral_ids"] == person["referral_ids"]
        ledger = [e.id for _, e in ErasureLedger(settings.resolved_erasure_ledger_path).read()]
        assert sorted(ledger) == sorted([subject_id, *person["referral_ids"]])
        verify_log(state)

    def test_the_same_identifier_later_makes_a_new_person(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        person: dict[str, Any],
        post_referral: Callable[..., Any],
    ) -> None:
        assert _erase(app_client, auth, person["subject_id"]).status_code == 200
        again = post_referral()
        assert again["subject"]["id"] != person["subject_id"]
        assert again["subject"]["family_name"] == BASE_REFERRAL["subject"]["family_name"]

    def test_the_coordinator_may_erase_others_may_not(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        person: dict[str, Any],
    ) -> None:
        # tests/erasure/test_erasure_authorization.py walks every other caller.
        for client in (REFERRER, ADMIN):
            denied = _erase(app_client, auth, person["subject_id"], client=client)
            assert denied.status_code == 403
        assert rows(state, Subject, id=person["subject_id"])[0].wrapped_key is not None
        assert _erase(app_client, auth, person["subject_id"]).status_code == 200

    def test_erasing_twice_is_410_and_an_unknown_person_404(
        self,
        app_client: TestClient,
        auth: Auth,
        person: dict[str, Any],
    ) -> None:
        assert _erase(app_client, auth, person["subject_id"]).status_code == 200
        assert _erase(app_client, auth, person["subject_id"]).status_code == 410
        assert _erase(app_client, auth, "sub_nobody").status_code == 404

    def test_a_legal_hold_refuses_erasure(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        person: dict[str, Any],
    ) -> None:
        referral_id = person["referral_ids"][0]
        hold = app_client.post(
            f"/v1/referrals/{referral_id}/legal-hold",
            headers=auth(COORDINATOR),
            json={"reason": "Court case 2026/114 needs the file"},
        ).json()
        refused = _erase(app_client, auth, person["subject_id"])
        assert refused.status_code == 409
        assert refused.json()["hold_ids"] == [hold["id"]]
        assert rows(state, Subject, id=person["subject_id"])[0].wrapped_key is not None

    def test_a_body_without_a_legal_ground_is_422(
        self,
        app_client: TestClient,
        auth: Auth,
        person: dict[str, Any],
    ) -> None:
        response = app_client.post(
            f"/v1/subjects/{person['subject_id']}/erasure",
            headers=auth(COORDINATOR),
            json={"reference": "x"},
        )
        assert response.status_code == 422


class TestFailedErasure:
    def test_a_failure_after_the_key_is_destroyed_is_an_error_and_the_purge_finishes_it(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        person: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("disk full")

        monkeypatch.setattr(shred, "remove", broken)
        response = _erase(app_client, auth, person["subject_id"])
        assert response.status_code == 500
        assert response.json()["type"].endswith("/erasure-incomplete")
        # sealed off: key gone, every read 410, lists skip it
        assert rows(state, Subject, id=person["subject_id"])[0].wrapped_key is None
        for referral_id in person["referral_ids"]:
            assert (
                app_client.get(
                    f"/v1/referrals/{referral_id}", headers=auth(COORDINATOR, **PURPOSE)
                ).status_code
                == 410
            )
        assert (
            app_client.get("/v1/referrals", headers=auth(COORDINATOR, **PURPOSE)).json()["items"]
            == []
        )
        assert app_client.get("/v1/events", headers=auth(REFERRER, **PURPOSE)).json()["items"] == []

        monkeypatch.undo()
        report = purge.run(state)
        assert report.finished == 1
        assert rows(state, Subject, id=person["subject_id"]) == []
        assert rows(state, Referral, subject_id=person["subject_id"]) == []
        verify_log(state)

    def test_when_the_log_cannot_be_written_nothing_is_erased(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        person: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        auth(COORDINATOR)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise OSError("log volume gone")

        monkeypatch.setattr(state.audit, "_write", refuse)
        assert _erase(app_client, auth, person["subject_id"]).status_code == 503
        monkeypatch.undo()
        assert rows(state, Subject, id=person["subject_id"])[0].wrapped_key is not None
        assert rows(state, Tombstone) == []
        ok = app_client.get(
            f"/v1/referrals/{person['referral_ids'][0]}", headers=auth(COORDINATOR, **PURPOSE)
        )
        assert ok.status_code == 200

    def test_when_the_ledger_cannot_be_written_nothing_is_erased(
        self,
        app_client: TestClient,
        state: AppState,
        settings: Settings,
        auth: Auth,
        person: dict[str, Any],
    ) -> None:
        ledger = settings.resolved_erasure_ledger_path
        ledger.parent.mkdir(parents=True, exist_ok=True)
        ledger.mkdir()  # a directory where the file should be: every write fails
        response = _erase(app_client, auth, person["subject_id"])
        assert response.status_code == 500
        assert rows(state, Subject, id=person["subject_id"])[0].wrapped_key is not None
        assert rows(state, Tombstone) == []
        assert entries(state, event_type="erasure") == []
