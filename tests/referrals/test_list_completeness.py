"""Lists lose nothing: every referral a caller may read on its own is on its list, and only those.

The list queries prefilter candidates in SQL from the caller's grants (each grant's relation to the
caller and its conditions, app.referrals.repository); a prefilter narrower than the grants would
silently drop records a partner is entitled to (and must be told to withdraw).  Here each list is
compared with the single reads of every referral, for callers holding each kind of relation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

Auth = Callable[..., dict[str, str]]

CALLERS = ("school-north-referrer", "school-south-referrer", "social-services-caseworker",
           "youth-ngo-caseworker", "community-police-caseworker", "municipality-coordinator")
PURPOSES = ("safeguarding_assessment", "intervention_planning", "service_provision")


def _cases(post_referral: Callable[..., Any], move: Callable[..., Any]) -> list[str]:
    """Referrals of two referrers in several statuses, consents and assignments."""
    ids = []
    for referrer in ("school-north-referrer", "school-south-referrer"):
        for consent in ({"status": "given"}, {"status": "refused", "legal_basis": "public_task"}):
            submitted = post_referral(referrer, consent=consent)["id"]
            assigned = post_referral(referrer, consent=consent)["id"]
            move(assigned, "triaged", "accepted",
                 ("assigned", {"agencies": ["youth-ngo-bridges", "city-social-services"]}))
            closed = post_referral(referrer, consent=consent)["id"]
            move(closed, "triaged", "accepted", ("assigned", {"agencies": ["city-community-police"]}), "closed")
            ids += [submitted, assigned, closed]
    return ids


def _listed(app_client: TestClient, url: str, headers: dict[str, str]) -> set[str] | None:
    response = app_client.get(url, headers=headers)
    if response.status_code != 200:
        return None
    return {item["id"] for item in response.json()["items"]}


def test_each_list_holds_exactly_what_single_reads_grant(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
) -> None:
    ids = _cases(post_referral, move)
    checked = 0
    for client_id in CALLERS:
        for purpose in PURPOSES:
            headers = auth(client_id, **{"X-Purpose": purpose})
            listed = _listed(app_client, "/v1/referrals?limit=200", headers)
            if listed is None:
                continue
            readable = {rid for rid in ids
                        if app_client.get(f"/v1/referrals/{rid}", headers=headers).status_code == 200}
            assert listed == readable, (client_id, purpose)
            checked += bool(readable)
    assert checked >= 6  # the callers above do read something for most purposes


def test_a_partners_summaries_hold_every_consented_shared_case(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., Any], move: Callable[..., Any]
) -> None:
    ids = _cases(post_referral, move)
    coordinator = auth("municipality-coordinator", **{"X-Purpose": "safeguarding_assessment"})
    expected = set()
    for rid in ids:
        document = app_client.get(f"/v1/referrals/{rid}", headers=coordinator).json()
        if document["consent"]["status"] == "given" and document["status"] in ("accepted", "assigned",
                                                                                 "in_intervention"):
            expected.add(rid)
    assert expected  # the two consented assigned cases
    for reader in ("youth-ngo-reader", "religious-council-reader"):
        got = _listed(app_client, "/v1/summaries?limit=200", auth(reader, **{"X-Purpose": "service_provision"}))
        assert got == expected, reader
