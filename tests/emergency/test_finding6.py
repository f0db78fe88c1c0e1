"""Issue 11, finding 6, reproduced step by step: each step is now refused, capped or revoked.

"school-south, with no relation to the referral, gets a grant with a 32-character reason of x,
reads referral.case with the narrative of a person whose consent is withdrawn, repeats it on 30
referrals (30 × 201) and on a closed one; an auditor's review "UNJUSTIFIED - revoke" leaves the
grant active."
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from support.emergency import AUDITOR, EMERGENCY, REASON, SOUTH, Auth, ask, review, slug, withdraw_consent
from support.referrals import COORDINATOR, NARRATIVE
from support.refusals import denial_entries

from app.emergency.models import EmergencyGrant
from app.state import AppState

XS = "x" * 32


def grants(state: AppState) -> list[EmergencyGrant]:
    with state.sessions() as session:
        return list(session.query(EmergencyGrant).all())


def test_finding_6(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., dict[str, Any]],
    move: Callable[..., Any],
) -> None:
    # A school-north referral, assigned, whose person then withdrew consent.
    rid = post_referral()["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-social-services"]}))
    withdraw_consent(app_client, auth, rid)

    # 1. school-south, with no relation to the referral, asks with 32 × "x": refused, no grant.
    first = ask(app_client, auth, rid, SOUTH, XS)
    assert first.status_code == 403 and slug(first) == "emergency-not-eligible", first.text
    assert grants(state) == []

    # 2. ... so it reads nothing: no referral.case, no narrative.
    read = app_client.get(f"/v1/referrals/{rid}", headers=auth(SOUTH, **EMERGENCY))
    assert read.status_code == 403 and NARRATIVE not in read.text

    # 3. Repeated on 30 referrals: 30 × 403 (it was 30 × 201), each refusal logged.
    others = [post_referral()["id"] for _ in range(30)]
    denials_before = len(denial_entries(state))
    statuses = Counter(ask(app_client, auth, other, SOUTH, XS).status_code for other in others)
    assert statuses == Counter({403: 30})
    assert len(denial_entries(state)) == denials_before + 30
    # Even a party to every case (the network's coordinator), with a reason of substance, is capped.
    capped = [ask(app_client, auth, other, COORDINATOR).status_code for other in others]
    assert capped == [201] * 3 + [429] * 27
    # And 32 × "x" is no reason, whoever gives it (the reason is checked before the cap).
    no_reason = ask(app_client, auth, rid, COORDINATOR, XS)
    assert no_reason.status_code == 422 and no_reason.json()["rule"] == "min_length"

    # 4. ... and on a closed one: refused, naming the status, for the stranger and the party alike.
    closed = post_referral()["id"]
    move(closed, "triaged", "accepted", ("assigned", {"agencies": ["city-social-services"]}), "closed")
    assert slug(ask(app_client, auth, closed, SOUTH, XS)) == "emergency-not-eligible"
    on_closed = ask(app_client, auth, closed, COORDINATOR)
    assert on_closed.status_code == 403 and on_closed.json()["referral_status"] == "closed"

    # 5. The review "UNJUSTIFIED - revoke": a finding is a code, with an optional note ...
    grant = next(g for g in grants(state) if g.referral_id == others[0])
    assert review(app_client, auth, grant.id, "UNJUSTIFIED - revoke").status_code == 422
    before = app_client.get(f"/v1/referrals/{others[0]}", headers=auth(COORDINATOR, **EMERGENCY))
    assert before.status_code == 200
    found = review(app_client, auth, grant.id, "unjustified", "revoke")
    assert found.status_code == 200 and found.json()["active"] is False

    # 6. ... which revokes the grant at once: the next read under it fails, and the agency is flagged.
    after = app_client.get(f"/v1/referrals/{others[0]}", headers=auth(COORDINATOR, **EMERGENCY))
    assert after.status_code == 403 and NARRATIVE not in after.text
    flags = app_client.get("/v1/audit/flagged-agencies", headers=auth(AUDITOR)).json()["items"]
    assert [f["agency_id"] for f in flags] == ["city-municipality"]
    assert slug(ask(app_client, auth, others[1], COORDINATOR, REASON)) == "emergency-agency-flagged"
