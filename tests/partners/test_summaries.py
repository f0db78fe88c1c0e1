"""Partners pull exactly the consented summaries granted to them, and learn when to delete them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.referrals import COORDINATOR, DOB, REFERRER, referral_body

from app.audit.models import AuditEntry
from app.state import AppState

Auth = Callable[..., dict[str, str]]
SYNC = {"X-Purpose": "service_provision"}
PARTNER = "youth-ngo-reader"
NAMES = ("Yasmin", "Haddad", "Omar", "Testperson", DOB, "2009-03", "555-0101", "Rue Example", "LB-778899",
         "religion-marker", "narrative-marker")


@pytest.fixture
def network(post_referral: Callable[..., Any], move: Callable[..., Any]) -> dict[str, str]:
    """Referrals in every situation a partner's sync must tell apart."""
    ids = {}
    ids["shared"] = post_referral()["id"]
    move(ids["shared"], "triaged", "accepted")
    omar = referral_body()["subject"] | {"given_name": "Omar", "identifiers": []}
    ids["assigned"] = post_referral(subject=omar)["id"]
    move(ids["assigned"], "triaged", "accepted", "assigned")
    ids["refused"] = post_referral(consent={"status": "refused", "legal_basis": "public_task"})["id"]
    move(ids["refused"], "triaged", "accepted")
    ids["submitted"] = post_referral()["id"]
    ids["closed"] = post_referral()["id"]
    move(ids["closed"], "triaged", "accepted", "closed")
    return ids


def sync(app_client: TestClient, auth: Auth, client_id: str = PARTNER, **params: Any) -> Any:
    return app_client.get("/v1/summaries", params=params, headers=auth(client_id, **SYNC))


class TestSummaries:
    def test_a_partner_sees_exactly_the_consented_summaries_and_no_identifier(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], state: AppState
    ) -> None:
        for client_id in (PARTNER, "religious-council-reader"):
            response = sync(app_client, auth, client_id)
            assert response.status_code == 200
            body = response.json()
            assert {i["id"] for i in body["items"]} == {network["shared"], network["assigned"]}
            for leaked in NAMES:
                assert leaked not in response.text, leaked
            for item in body["items"]:
                assert set(item) == {"id", "subject", "concerns", "requested_services", "status", "view",
                                     "retain_until"}
                assert set(item["subject"]) == {"age_band", "district"}
                assert item["view"] == "referral.summary"
                assert date.fromisoformat(item["retain_until"]) == state.clock().date() + timedelta(days=90)

    def test_every_summary_handed_out_is_a_disclosure_entry(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], state: AppState
    ) -> None:
        sync(app_client, auth)
        with state.sessions() as session:
            rows = session.scalars(select(AuditEntry).where(
                AuditEntry.event_type == "disclosure", AuditEntry.recipient_agency == "youth-ngo-bridges"
            )).all()
        assert len(rows) == 2
        assert {r.purpose for r in rows} == {"service_provision"}
        assert {r.rule_id for r in rows} == {"partner-summary"}

    def test_pages_newest_change_first_and_incremental(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], state: AppState, move: Callable[..., Any]
    ) -> None:
        first = sync(app_client, auth, limit=1).json()
        assert [i["id"] for i in first["items"]] == [network["assigned"]]
        second = sync(app_client, auth, limit=1, cursor=first["next_cursor"]).json()
        assert [i["id"] for i in second["items"]] == [network["shared"]] and second["next_cursor"] is None
        later = sync(app_client, auth, updated_since=first["synced_at"]).json()
        assert later["items"] == []
        move(network["shared"], ("assigned", {"agencies": ["city-social-services"]}))
        changed = sync(app_client, auth, updated_since=first["synced_at"]).json()
        assert [i["id"] for i in changed["items"]] == [network["shared"]]

    def test_pages_skip_what_no_grant_admits_and_lose_nothing(
        self, app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
    ) -> None:
        """Granted summaries among many that no grant admits: every one arrives once, in order."""
        granted = []
        for n in range(5):
            for _ in range(3):  # not granted: consent refused, or still submitted
                refused = post_referral(consent={"status": "refused", "legal_basis": "public_task"})["id"]
                move(refused, "triaged", "accepted")
                post_referral()
            rid = post_referral(subject=referral_body()["subject"] | {"given_name": f"P{n}", "identifiers": []})["id"]
            move(rid, "triaged", "accepted")
            granted.append(rid)
        seen, cursor = [], None
        for _ in range(10):
            body = sync(app_client, auth, limit=2, **({"cursor": cursor} if cursor else {})).json()
            seen += [i["id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(granted))

    def test_no_log_no_summaries_and_nothing_remembered(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], state: AppState,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from app.audit.service import AuditUnavailable
        from app.partners.models import PartnerDisclosure

        auth(PARTNER)  # the token first: issuing one is not what is under test

        def refuse(*args: Any, **kwargs: Any) -> list[int]:
            raise AuditUnavailable()

        monkeypatch.setattr(state.audit, "_append", refuse)  # every append passes here
        response = sync(app_client, auth)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert network["shared"] not in response.text and "al-mina" not in response.text
        with state.sessions() as session:
            assert session.scalars(select(PartnerDisclosure)).all() == []

    def test_a_fault_after_the_log_answers_503_and_the_log_over_states_never_under_states(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], state: AppState,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from sqlalchemy.exc import OperationalError

        from app.partners import service
        from app.partners.models import PartnerDisclosure

        headers = auth(PARTNER, **SYNC)
        with state.sessions() as session:
            before = len(session.scalars(select(AuditEntry.seq)).all())

        def lost(*args: Any, **kwargs: Any) -> None:
            raise OperationalError("INSERT INTO partner_disclosures", {}, Exception("disk I/O error"))

        monkeypatch.setattr(service, "remember", lost)
        response = app_client.get("/v1/summaries", headers=headers)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert network["shared"] not in response.text and "al-mina" not in response.text
        with state.sessions() as session:
            assert session.scalars(select(PartnerDisclosure)).all() == []  # nothing held
            entries = session.scalars(select(AuditEntry).where(AuditEntry.seq >= before)).all()
        # The page's entries were durable before the write that failed: a read entry for a
        # response never sent, never a response without its entry.
        assert {e.event_type for e in entries} == {"disclosure"}
        monkeypatch.undo()
        again = sync(app_client, auth)
        assert again.status_code == 200 and network["shared"] in {i["id"] for i in again.json()["items"]}
        with state.sessions() as session:
            assert {r.referral_id for r in session.scalars(select(PartnerDisclosure))} >= {network["shared"]}

    def test_an_unchanged_page_is_a_cheap_304(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], state: AppState
    ) -> None:
        first = sync(app_client, auth)
        tag = first.headers["etag"]
        with state.sessions() as session:
            before = len(session.scalars(select(AuditEntry.seq)).all())
        again = app_client.get("/v1/summaries", headers=auth(PARTNER, **SYNC, **{"If-None-Match": tag}))
        assert again.status_code == 304 and again.content == b""
        with state.sessions() as session:
            assert len(session.scalars(select(AuditEntry.seq)).all()) == before  # nothing handed out

    def test_withdrawn_consent_reaches_the_partner_on_its_next_sync(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], state: AppState
    ) -> None:
        first = sync(app_client, auth).json()
        assert network["shared"] in {i["id"] for i in first["items"]}
        withdrawn = app_client.post(
            f"/v1/referrals/{network['shared']}/consent",
            json={"status": "withdrawn", "legal_basis": "public_task", "reason": "family asked"},
            headers=auth(REFERRER),
        )
        assert withdrawn.status_code == 200
        nxt = sync(app_client, auth, updated_since=first["synced_at"]).json()
        assert nxt["withdrawn"] == [network["shared"]]
        assert network["shared"] not in {i["id"] for i in nxt["items"]}
        full = sync(app_client, auth).json()
        assert full["withdrawn"] == [network["shared"]]
        with state.sessions() as session:
            notices = session.scalars(select(AuditEntry).where(AuditEntry.event_type == "withdrawal_notice")).all()
        assert len(notices) == 1
        other = sync(app_client, auth, "religious-council-reader").json()
        assert other["withdrawn"] == []  # it never received it

    def test_a_case_leaving_the_shared_statuses_is_withdrawn(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], move: Callable[..., Any]
    ) -> None:
        first = sync(app_client, auth).json()
        move(network["assigned"], "closed")
        nxt = sync(app_client, auth, updated_since=first["synced_at"]).json()
        assert nxt["withdrawn"] == [network["assigned"]]

    @pytest.mark.parametrize(
        ("client_id", "purpose", "status"),
        [(PARTNER, None, 400), (PARTNER, "statistics", 400), (PARTNER, "safeguarding_assessment", 400),
         (COORDINATOR, "safeguarding_assessment", 403), ("national-statistics", "statistics", 403)],
    )
    def test_bad_requests_name_what_is_allowed(
        self, app_client: TestClient, auth: Auth, network: dict[str, str], client_id: str, purpose: str | None,
        status: int,
    ) -> None:
        headers = auth(client_id) if purpose is None else auth(client_id, **{"X-Purpose": purpose})
        response = app_client.get("/v1/summaries", headers=headers)
        assert response.status_code == status, response.text
        if status == 400:
            assert response.json()["purposes"] == ["service_provision"]
        assert "items" not in response.json()


def test_the_partner_example_forgets_what_expired() -> None:
    # The example itself runs against a live service in tests/partners/test_sync_script.py.
    from app.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("partner_sync", REPO_ROOT / "docs/examples/partner_sync.py")
    assert spec and spec.loader
    example = importlib.util.module_from_spec(spec)
    import sys

    sys.modules.setdefault("partner_sync", example)  # its dataclasses look their module up
    spec.loader.exec_module(example)
    today = datetime.now(UTC).date()
    held = {"old": {"retain_until": (today - timedelta(days=1)).isoformat()},
            "kept": {"retain_until": today.isoformat()}}
    assert example.purge_expired(held, today) == 1
    assert set(held) == {"kept"}


def test_concurrent_syncs_of_one_partner_all_succeed(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
) -> None:
    """Syncs of one partner touch the same held rows: they queue on them in one order (no deadlock,
    no 503), and each hands out the whole set."""
    from concurrent.futures import ThreadPoolExecutor

    shared = set()
    for _ in range(24):
        rid = post_referral()["id"]
        move(rid, "triaged", "accepted")
        shared.add(rid)
    headers = auth(PARTNER, **{"X-Purpose": "service_provision"})

    def full_sync(_: int) -> tuple[list[int], set[str]]:
        statuses, seen, url = [], set(), "/v1/summaries?limit=200"
        response = app_client.get(url, headers=headers)
        statuses.append(response.status_code)
        if response.status_code == 200:
            seen = {item["id"] for item in response.json()["items"]}
        return statuses, seen

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(full_sync, range(48)))
    assert [s for statuses, _ in results for s in statuses] == [200] * 48
    assert all(seen == shared for _, seen in results)
