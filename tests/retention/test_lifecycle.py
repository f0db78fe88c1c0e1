"""Records walk through their whole life, on an injected clock, until the purge takes them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, PURPOSE, REFERRER
from support.retention import START, Clock, client_ready, entries, rows, verify_log

from app.notes.models import Note
from app.partners.models import PartnerDisclosure
from app.policy.duration import Duration
from app.referrals.models import Referral, StatusChange
from app.retention import purge
from app.retention.models import LegalHold, Tombstone
from app.state import AppState
from app.subjects.models import Subject, SubjectIdentifier

SIX_YEARS = Duration(years=6)
TEN_YEARS = Duration(years=10)
ADMIN = "municipality-operator"
PARTNER = "youth-ngo-reader"

Auth = Callable[..., dict[str, str]]


def _note(app_client: TestClient, auth: Auth, referral_id: str) -> str:
    response = app_client.post(
        f"/v1/referrals/{referral_id}/notes",
        headers=auth(REFERRER),
        json={"classification": "shared", "text": "Met the family; mentoring agreed."},
    )
    assert response.status_code == 201, response.text
    note_id: str = response.json()["id"]
    return note_id


def _closed(clock: Clock, move: Callable[..., Any], referral_id: str, after_days: int = 30) -> Any:
    move(referral_id, "triaged", "accepted")
    closed_at = clock.advance(days=after_days)
    move(referral_id, "closed")
    return closed_at


class TestRetentionDates:
    def test_an_open_referral_is_kept_at_most_max_open_retention(
        self,
        app_client: TestClient,
        state: AppState,
        demo: Any,
        post_referral: Callable[..., Any],
    ) -> None:
        Clock(state)
        created = post_referral()
        referral = rows(state, Referral, id=created["id"])[0]
        subject = rows(state, Subject, id=created["subject"]["id"])[0]
        assert referral.retain_until == TEN_YEARS.add_to(START)
        assert subject.retain_until == referral.retain_until

    def test_closing_starts_the_agreements_clock_and_notes_follow(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        clock = Clock(state)
        client_ready(auth, REFERRER, COORDINATOR)
        referral_id = post_referral()["id"]
        _note(app_client, auth, referral_id)
        closed_at = _closed(clock, move, referral_id)
        referral = rows(state, Referral, id=referral_id)[0]
        # owner-full and coordinator-full: P6Y after closed (the longest owner/coordinator rule)
        assert referral.retain_until == SIX_YEARS.add_to(closed_at)
        assert [n.retain_until for n in rows(state, Note, referral_id=referral_id)] == [
            referral.retain_until
        ]
        assert rows(state, Subject, id=referral.subject_id)[0].retain_until == referral.retain_until


class TestPurge:
    def test_a_referral_lives_its_whole_life_then_is_purged(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        clock = Clock(state)
        client_ready(auth, REFERRER, COORDINATOR)
        created = post_referral()
        referral_id, subject_id = created["id"], created["subject"]["id"]
        note_id = _note(app_client, auth, referral_id)
        closed_at = _closed(clock, move, referral_id)
        expiry = SIX_YEARS.add_to(closed_at)

        clock.at(expiry - timedelta(days=1))
        assert purge.run(state).planned == []
        assert rows(state, Referral, id=referral_id)

        clock.at(expiry + timedelta(days=1))
        report = purge.run(state)
        assert (report.subjects, report.referrals, report.notes) == (1, 1, 1)

        for model, where in (
            (Referral, {"id": referral_id}),
            (Note, {"id": note_id}),
            (Subject, {"id": subject_id}),
            (SubjectIdentifier, {"subject_id": subject_id}),
            (StatusChange, {"referral_id": referral_id}),
        ):
            assert rows(state, model, **where) == [], model
        assert {t.record_id: t.reason for t in rows(state, Tombstone)} == {
            referral_id: "purge",
            subject_id: "purge",
        }

        clock.at(START + timedelta(days=40))  # back while the agreement is in force
        for client in (COORDINATOR, REFERRER):
            response = app_client.get(
                f"/v1/referrals/{referral_id}", headers=auth(client, **PURPOSE)
            )
            assert response.status_code == 410, response.text
            assert response.headers["content-type"] == "application/problem+json"
        assert (
            app_client.get(
                f"/v1/referrals/{referral_id}/notes", headers=auth(COORDINATOR, **PURPOSE)
            ).status_code
            == 410
        )
        assert (
            app_client.post(
                f"/v1/referrals/{referral_id}/transitions",
                json={"to": "triaged"},
                headers=auth(COORDINATOR),
            ).status_code
            == 410
        )

        [entry] = entries(state, event_type="purge", subject_id=subject_id)
        assert entry.details is not None
        assert entry.details["record_ids"] == {
            "subject_id": subject_id,
            "referral_ids": [referral_id],
            "note_ids": [note_id],
        }
        assert entry.details["key_destroyed"] is True
        verify_log(state)

    def test_a_referral_never_closed_goes_after_max_open_retention(
        self,
        app_client: TestClient,
        state: AppState,
        demo: Any,
        post_referral: Callable[..., Any],
    ) -> None:
        clock = Clock(state)
        referral_id = post_referral()["id"]
        clock.at(TEN_YEARS.add_to(START) - timedelta(days=1))
        assert purge.run(state).referrals == 0
        clock.at(TEN_YEARS.add_to(START) + timedelta(days=1))
        assert purge.run(state).referrals == 1
        assert rows(state, Referral, id=referral_id) == []

    def test_a_person_with_a_live_referral_keeps_their_key(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        clock = Clock(state)
        client_ready(auth, REFERRER, COORDINATOR)
        first = post_referral()
        second = post_referral()  # the same national id: the same person
        assert first["subject"]["id"] == second["subject"]["id"]
        closed_at = _closed(clock, move, first["id"])

        clock.at(SIX_YEARS.add_to(closed_at) + timedelta(days=1))
        report = purge.run(state)
        assert (report.subjects, report.referrals) == (0, 1)
        subject = rows(state, Subject, id=first["subject"]["id"])[0]
        assert subject.wrapped_key is not None
        assert subject.retain_until == rows(state, Referral, id=second["id"])[0].retain_until

        clock.at(START + timedelta(days=60))
        assert (
            app_client.get(
                f"/v1/referrals/{first['id']}", headers=auth(COORDINATOR, **PURPOSE)
            ).status_code
            == 410
        )
        response = app_client.get(
            f"/v1/referrals/{second['id']}", headers=auth(COORDINATOR, **PURPOSE)
        )
        assert response.status_code == 200
        assert response.json()["subject"]["family_name"] == "Haddad-Testperson"

    def test_dry_run_lists_what_would_go_and_changes_nothing(
        self,
        app_client: TestClient,
        state: AppState,
        demo: Any,
        post_referral: Callable[..., Any],
    ) -> None:
        clock = Clock(state)
        created = post_referral()
        clock.at(TEN_YEARS.add_to(START) + timedelta(days=1))
        report = purge.run(state, dry_run=True)
        assert [
            (p.target.subject_id, p.target.referral_ids, p.target.whole) for p in report.planned
        ] == [(created["subject"]["id"], (created["id"],), True)]
        assert rows(state, Referral, id=created["id"])
        assert rows(state, Tombstone) == []
        assert entries(state, event_type="purge") == []

    def test_partners_are_told_their_copy_is_withdrawn(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        post_referral: Callable[..., Any],
        move: Callable[..., Any],
    ) -> None:
        clock = Clock(state)
        client_ready(auth, REFERRER, COORDINATOR, PARTNER)
        referral_id = post_referral()["id"]
        move(referral_id, "triaged", "accepted")
        sync = app_client.get(
            "/v1/summaries", headers=auth(PARTNER, **{"X-Purpose": "service_provision"})
        )
        assert [i["id"] for i in sync.json()["items"]] == [referral_id]
        clock.at(TEN_YEARS.add_to(START) + timedelta(days=1))
        purge.run(state)
        [held] = rows(state, PartnerDisclosure, referral_id=referral_id)
        assert held.withdrawn_at == clock.now
        [notice] = entries(
            state, event_type="withdrawal_notice", recipient_agency="youth-ngo-bridges"
        )
        assert notice.details is not None and notice.details["record_ids"] == {
            "referral_id": referral_id
        }
        clock.at(START + timedelta(days=1))
        sync = app_client.get(
            "/v1/summaries", headers=auth(PARTNER, **{"X-Purpose": "service_provision"})
        )
        assert sync.json()["withdrawn"] == [referral_id]


class TestLegalHolds:
    def test_a_case_hold_stops_expiry_until_lifted(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        post_referral: Callable[..., Any],
    ) -> None:
        clock = Clock(state)
        client_ready(auth, REFERRER, COORDINATOR)
        referral_id = post_referral()["id"]
        response = app_client.post(
            f"/v1/referrals/{referral_id}/legal-hold",
            headers=auth(COORDINATOR),
            json={"reason": "Court case 2026/114 needs the file"},
        )
        assert response.status_code == 201, response.text
        hold = response.json()
        assert hold["scope"] == "referral" and hold["active"] is True

        clock.at(TEN_YEARS.add_to(START) + timedelta(days=1))
        report = purge.run(state)
        assert report.referrals == 0
        assert report.held == {referral_id: [hold["id"]]}
        assert rows(state, Referral, id=referral_id)

        clock.at(START + timedelta(days=3))
        listed = app_client.get(
            f"/v1/referrals/{referral_id}/legal-hold", headers=auth(COORDINATOR, **PURPOSE)
        ).json()
        assert [h["id"] for h in listed["items"]] == [hold["id"]]
        lifted = app_client.post(
            f"/v1/referrals/{referral_id}/legal-hold/{hold['id']}/lift",
            headers=auth(COORDINATOR),
            json={"reason": "Proceedings closed in 2036"},
        )
        assert lifted.status_code == 200 and lifted.json()["active"] is False

        clock.at(TEN_YEARS.add_to(START) + timedelta(days=1))
        assert purge.run(state).referrals == 1
        assert (
            rows(state, LegalHold) == []
        )  # the lifted hold leaves with its referral; the log keeps it
        actions = [
            e.details["action"]
            for e in entries(state, event_type="change")
            if e.details and "action" in e.details
        ]
        assert actions == ["legal_hold_placed", "legal_hold_lifted"]

    def test_an_agency_hold_by_an_admin_covers_every_referral_of_the_agency(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        post_referral: Callable[..., Any],
    ) -> None:
        clock = Clock(state)
        client_ready(auth, REFERRER, COORDINATOR, ADMIN)
        referral_id = post_referral()["id"]
        response = app_client.post(
            "/v1/admin/legal-holds",
            headers=auth(ADMIN),
            json={"agency_id": "school-north", "reason": "Inquiry into school-north records"},
        )
        assert response.status_code == 201, response.text
        hold_id = response.json()["id"]
        assert [
            h["id"]
            for h in app_client.get("/v1/admin/legal-holds", headers=auth(ADMIN)).json()["items"]
        ] == [hold_id]

        clock.at(TEN_YEARS.add_to(START) + timedelta(days=1))
        assert purge.run(state).held == {referral_id: [hold_id]}
        clock.at(START + timedelta(days=1))
        assert (
            app_client.post(
                f"/v1/admin/legal-holds/{hold_id}/lift",
                headers=auth(ADMIN),
                json={"reason": "Inquiry finished, nothing found"},
            ).status_code
            == 200
        )
        clock.at(TEN_YEARS.add_to(START) + timedelta(days=1))
        assert purge.run(state).referrals == 1

    def test_who_may_hold(
        self,
        app_client: TestClient,
        state: AppState,
        auth: Auth,
        post_referral: Callable[..., Any],
    ) -> None:
        referral_id = post_referral()["id"]
        body = {"reason": "Court case 2026/114 needs the file"}
        assert (
            app_client.post(
                f"/v1/referrals/{referral_id}/legal-hold", headers=auth(REFERRER), json=body
            ).status_code
            == 403
        )
        assert (
            app_client.post(
                "/v1/admin/legal-holds",
                headers=auth(COORDINATOR),
                json={**body, "agency_id": "school-north"},
            ).status_code
            == 403
        )
        # A referral's hold is its network coordinator's; operators hold whole agencies only.
        assert (
            app_client.post(
                f"/v1/referrals/{referral_id}/legal-hold", headers=auth(ADMIN), json=body
            ).status_code
            == 403
        )
        assert (
            app_client.post(
                "/v1/admin/legal-holds",
                headers=auth(ADMIN),
                json={**body, "referral_id": referral_id},
            ).status_code
            == 422
        )
        assert (
            app_client.post(
                "/v1/referrals/ref_nope/legal-hold", headers=auth(COORDINATOR), json=body
            ).status_code
            == 404
        )


class TestRaces:
    def test_a_referral_linked_after_planning_keeps_the_person(
        self,
        app_client: TestClient,
        state: AppState,
        post_referral: Callable[..., Any],
    ) -> None:
        """The purge planned to erase the person; a new referral for them arrived meanwhile."""
        from app.retention.ledger import ErasureLedger
        from app.retention.shred import Target

        clock = Clock(state)
        first = post_referral()
        subject_id = first["subject"]["id"]
        planned = purge.Planned(Target(subject_id, (first["id"],), True), None)
        second = post_referral()  # links to the same person
        assert second["subject"]["id"] == subject_id
        report = purge.PurgeReport(dry_run=False)
        ledger = ErasureLedger(state.settings.resolved_erasure_ledger_path)
        purge._purge_one(state, ledger, planned, clock.now, "test", report)
        assert (report.subjects, report.referrals) == (0, 1)
        assert rows(state, Subject, id=subject_id)[0].wrapped_key is not None
        assert rows(state, Referral, id=second["id"])
        assert rows(state, Referral, id=first["id"]) == []


def test_the_command_lists_what_would_go(
    app_client: TestClient,
    state: AppState,
    settings: Any,
    post_referral: Callable[..., Any],
    monkeypatch: Any,
) -> None:
    import json

    from sqlalchemy import update
    from typer.testing import CliRunner

    from app.cli import cli
    from app.db import transaction

    created = post_referral()
    with transaction(state.sessions) as session:  # the CLI's clock is the real one: age the record
        session.execute(
            update(Referral).values(created_at=START - timedelta(days=4000), retain_until=None)
        )
    for name, value in (
        ("ENV", "dev"),
        ("DATA_DIR", str(settings.data_dir)),
        ("DATABASE_URL", settings.resolved_database_url),
        ("KEYRING_PATH", str(settings.resolved_keyring_path)),
    ):
        monkeypatch.setenv(f"CASEBRIDGE_{name}", value)
    runner = CliRunner()
    result = runner.invoke(cli, ["retention", "run", "--dry-run", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [p["referral_ids"] for p in listed["planned"]] == [[created["id"]]]
    table = runner.invoke(cli, ["retention", "run", "--dry-run"])
    assert "Would purge" in table.stdout and "erase person" in table.stdout
    assert rows(state, Referral, id=created["id"])
    done = runner.invoke(cli, ["retention", "run", "--yes"])  # irreversible: --yes
    assert done.exit_code == 0, done.stderr
    assert "1 people and 1 referrals" in done.stdout
    assert rows(state, Referral, id=created["id"]) == []
