"""Referrals about the same person, posted at the same moment, link to one subject and keep all it says."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from support.referrals import REFERRER, referral_body

from app.referrals.models import Referral
from app.state import AppState
from app.subjects import service as subjects
from app.subjects.models import Subject, SubjectIdentifier

Auth = Callable[..., dict[str, str]]
OTHER_REFERRER = "school-south-referrer"
WAIT = 10.0


def post_together(
    app_client: TestClient, requests: list[tuple[dict[str, Any], dict[str, str]]]
) -> list[httpx.Response]:
    responses: list[httpx.Response | None] = [None] * len(requests)

    def post(index: int) -> None:
        body, headers = requests[index]
        responses[index] = app_client.post("/v1/referrals", json=body, headers=headers)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in responses), "a request never finished"
    return [r for r in responses if r is not None]


def on_postgres(database_url: str) -> bool:
    # SQLite's writers queue (BEGIN IMMEDIATE): a second request cannot look before the first commits.
    return database_url.startswith("postgresql")


def counts(state: AppState) -> dict[str, int]:
    with state.sessions() as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Subject, SubjectIdentifier, Referral)}


def someone_waits_on_a_lock(state: AppState) -> bool:
    with state.engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) > 0 FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )).scalar_one())


def test_two_first_referrals_about_one_person_link_to_one_subject(
    app_client: TestClient, auth: Auth, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold both requests just after each planned, before the writer's turn, a new person: the
    # read found nobody for either. Planning is read-only, so this holds on SQLite too.
    rendezvous = threading.Barrier(2, timeout=WAIT)
    planned: list[bool] = []
    found: list[bool] = []
    plan, lookup = subjects.plan_link, subjects.find_linked

    def plan_then_wait(*args: Any) -> subjects.Plan | None:
        result = plan(*args)
        planned.append(result is not None and result.new)
        if planned.count(True) <= 2:
            rendezvous.wait()
        return result

    def find_linked_and_note(session: Any, holders: tuple[str, ...]) -> Subject | None:
        subject = lookup(session, holders)
        found.append(subject is not None)
        return subject

    requests = [(referral_body(), auth(REFERRER)), (referral_body(risk_level="medium"), auth(OTHER_REFERRER))]
    monkeypatch.setattr(subjects, "plan_link", plan_then_wait)
    monkeypatch.setattr(subjects, "find_linked", find_linked_and_note)
    first, second = post_together(app_client, requests)

    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json()["subject"]["id"] == second.json()["subject"]["id"]
    assert counts(state) == {"subjects": 1, "subject_identifiers": 1, "referrals": 2}  # no orphan subject
    assert planned == [True, True]  # both planned a new person
    assert found == [True]  # the loser's plan no longer held: it looked again, in its turn, and linked


def test_referrals_linking_at_once_each_add_to_the_identity(
    app_client: TestClient, auth: Auth, state: AppState, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject_id = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER)).json()["subject"]["id"]
    # The first to read the identity waits until the other has read it too (each plans its merge
    # before the writer's turn, so both merge into the same identity as read), or waits its turn.
    read_identity = subjects.read_identity
    first_read = threading.Lock()
    other_read = threading.Event()

    def read_identity_then_wait(envelope: Any, subject: Subject) -> dict[str, Any]:
        identity = read_identity(envelope, subject)
        if not first_read.acquire(blocking=False):
            other_read.set()
        else:
            deadline = time.monotonic() + WAIT
            while not other_read.wait(0.05) and not (on_postgres(database_url) and someone_waits_on_a_lock(state)):
                assert time.monotonic() < deadline, "the other request neither read nor waited"
        return identity

    with_email = referral_body(subject=referral_body()["subject"] | {"email": "y.h@example.org"})
    with_language = referral_body(subject=referral_body()["subject"] | {"language": "ar"})
    requests = [(with_email, auth(REFERRER)), (with_language, auth(OTHER_REFERRER))]
    monkeypatch.setattr(subjects, "read_identity", read_identity_then_wait)
    first, second = post_together(app_client, requests)
    monkeypatch.undo()

    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json()["subject"]["id"] == second.json()["subject"]["id"] == subject_id
    with state.sessions() as session:
        subject = session.get(Subject, subject_id)
        assert subject is not None
        identity = subjects.read_identity(state.envelope, subject)
    assert (identity.get("email"), identity.get("language")) == ("y.h@example.org", "ar")  # neither lost
