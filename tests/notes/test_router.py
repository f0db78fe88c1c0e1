"""Notes on referrals: classified, append-only, corrections supersede, text sealed at rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.referrals import COORDINATOR, PURPOSE, REFERRER

from app.notes.models import Note
from app.state import AppState

Auth = Callable[..., dict[str, str]]


def add_note(app_client: TestClient, auth: Auth, rid: str, client_id: str = REFERRER, **body: Any) -> Any:
    payload = {"classification": "shared", "text": "Met the family; engaged well.", **body}
    return app_client.post(f"/v1/referrals/{rid}/notes", json=payload, headers=auth(client_id))


class TestNotes:
    def test_add_and_list_with_a_correction(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], state: AppState
    ) -> None:
        rid = post_referral()["id"]
        first = add_note(app_client, auth, rid, text="Note-marker-one: attended 3 sessions")
        assert first.status_code == 201
        note = first.json()
        assert note["id"].startswith("note_") and note["schema"] == "note/v1"
        assert note["author_agency"] == "school-north" and note["classification"] == "shared"
        fix = add_note(app_client, auth, rid, COORDINATOR, text="Correction: 4 sessions", supersedes=note["id"])
        assert fix.status_code == 201
        page = app_client.get(f"/v1/referrals/{rid}/notes", headers=auth(REFERRER, **PURPOSE)).json()
        assert [n["id"] for n in page["items"]] == [note["id"], fix.json()["id"]]
        assert page["items"][0]["superseded_by"] == fix.json()["id"]
        assert page["items"][0]["text"] == "Note-marker-one: attended 3 sessions"  # append-only
        with state.sessions() as session:
            stored = session.scalars(select(Note.text)).all()
            assert all(b"Note-marker-one" not in t for t in stored)

    def test_pages(self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]) -> None:
        rid = post_referral()["id"]
        ids = [add_note(app_client, auth, rid, text=f"n{i}").json()["id"] for i in range(5)]
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = app_client.get(f"/v1/referrals/{rid}/notes", params=params, headers=auth(REFERRER, **PURPOSE)).json()
            seen += [n["id"] for n in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ids

    @pytest.mark.parametrize(
        ("body", "path"),
        [
            ({"classification": "gossip"}, "$.classification"),
            ({"text": ""}, "$.text"),
            ({"supersedes": "note_nope"}, "$.supersedes"),
            ({"colour": "red"}, "$.colour"),
        ],
    )
    def test_bad_notes_are_422_and_leave_nothing(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], state: AppState,
        body: dict[str, Any], path: str,
    ) -> None:
        rid = post_referral()["id"]
        response = add_note(app_client, auth, rid, **body)
        assert response.status_code == 422
        assert path in [e["path"] for e in response.json()["errors"]]
        with state.sessions() as session:
            assert session.scalars(select(Note)).all() == []

    def test_a_note_cannot_supersede_one_on_another_referral(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        a, b = post_referral()["id"], post_referral()["id"]
        note = add_note(app_client, auth, a).json()
        assert add_note(app_client, auth, b, supersedes=note["id"]).status_code == 422

    @pytest.mark.parametrize("client_id", ["school-south-referrer", "youth-ngo-reader", "municipality-operator"])
    def test_outsiders_neither_add_nor_read(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], client_id: str
    ) -> None:
        rid = post_referral()["id"]
        add_note(app_client, auth, rid)
        assert add_note(app_client, auth, rid, client_id).status_code == 403
        listing = app_client.get(f"/v1/referrals/{rid}/notes", headers=auth(client_id, **PURPOSE))
        assert listing.status_code == 403
        assert "engaged well" not in listing.text

    def test_an_assigned_agency_adds_notes_and_reads_only_its_own(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        add_note(app_client, auth, rid, text="school only")
        move(rid, "triaged", "accepted", "assigned")
        assert add_note(app_client, auth, rid, "youth-ngo-caseworker", text="ngo note").status_code == 201
        page = app_client.get(f"/v1/referrals/{rid}/notes",
                              headers=auth("youth-ngo-caseworker", **{"X-Purpose": "service_provision"})).json()
        assert [n["text"] for n in page["items"]] == ["ngo note"]

    def test_reading_notes_needs_a_purpose_and_a_referral(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]
    ) -> None:
        rid = post_referral()["id"]
        assert app_client.get(f"/v1/referrals/{rid}/notes", headers=auth(REFERRER)).status_code == 400
        assert app_client.get("/v1/referrals/ref_x/notes", headers=auth(REFERRER, **PURPOSE)).status_code == 404
        assert add_note(app_client, auth, "ref_x").status_code == 404

    def test_idempotent_note_retry(self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]) -> None:
        rid = post_referral()["id"]
        headers = {**auth(REFERRER), "Idempotency-Key": "n-1"}
        body = {"classification": "shared", "text": "once"}
        a = app_client.post(f"/v1/referrals/{rid}/notes", json=body, headers=headers)
        b = app_client.post(f"/v1/referrals/{rid}/notes", json=body, headers=headers)
        assert a.json()["id"] == b.json()["id"]
        c = app_client.post(f"/v1/referrals/{rid}/notes", json=body | {"text": "twice"}, headers=headers)
        assert c.status_code == 409
        page = app_client.get(f"/v1/referrals/{rid}/notes", headers=auth(REFERRER, **PURPOSE)).json()
        assert len(page["items"]) == 1
