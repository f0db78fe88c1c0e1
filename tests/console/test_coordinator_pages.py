"""The coordinator's work list, deciding a referral's next step, and actions, through the console.

What each page shows comes from the API for the person's purpose; every change is checked back
through the API itself, and every refusal (stale form, invalid step, wrong agency) comes back as the
form with a message and changes nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from support.referrals import COORDINATOR

from app.state import AppState

Auth = Callable[..., dict[str, str]]
PLANNING = {"X-Purpose": "intervention_planning"}
HIDDEN = re.compile(r'name="(etag|key)" value="([^"]*)"')


def hidden(page: Any) -> dict[str, str]:
    """The decide form's ETag and idempotency key, as the browser would send them back."""
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}


def api_referral(app_client: TestClient, auth: Auth, referral_id: str) -> Any:
    found = app_client.get(f"/v1/referrals/{referral_id}", headers=auth(COORDINATOR, **PLANNING))
    assert found.status_code == 200, found.text
    return found


def test_the_coordinator_sees_a_new_referral_then_triages_accepts_and_assigns_it(
    signed_in: Callable[..., Any], post_referral: Callable[..., Any], app_client: TestClient, auth: Auth,
) -> None:
    rid = post_referral()["id"]
    karim = signed_in("karim-coordinator", purpose="safeguarding_assessment")

    listed = karim.get("/console/worklist")
    assert listed.status_code == 200, listed.text
    assert rid in listed.text and "New referrals" in listed.text
    assert f"/console/referrals/{rid}/decide" in listed.text and f'href="/console/referrals/{rid}"' in listed.text
    assert rid in karim.get("/console/worklist?kind=new").text
    assert rid not in karim.get("/console/worklist?kind=review_due").text

    for step, extra in (("triaged", {}), ("accepted", {}), ("assigned", {"agencies": ["city-social-services"]})):
        form = karim.get(f"/console/referrals/{rid}/decide")
        assert form.status_code == 200, form.text
        assert f'value="{step}"' in form.text
        done = karim.post(f"/console/referrals/{rid}/decide", {"to": step, **hidden(form), **extra})
        assert done.status_code == 200, done.text
        assert str(done.url).endswith(f"/decide?moved={step}")
        assert "Saved: the referral is now" in done.text
        assert api_referral(app_client, auth, rid).json()["status"] == step

    after = api_referral(app_client, auth, rid).json()
    assert after["assigned_agencies"] == ["city-social-services"]
    # The triaged referral has left the "new" group.
    assert rid not in karim.get("/console/worklist?kind=new").text


def test_a_stale_or_invalid_step_comes_back_with_a_message_and_changes_nothing(
    signed_in: Callable[..., Any], post_referral: Callable[..., Any], app_client: TestClient, auth: Auth,
    move: Callable[..., Any],
) -> None:
    rid = post_referral()["id"]
    karim = signed_in("karim-coordinator", purpose="safeguarding_assessment")
    opened = karim.get(f"/console/referrals/{rid}/decide")
    stale = hidden(opened)
    move(rid, "triaged")  # someone else, meanwhile
    before = api_referral(app_client, auth, rid)

    refused = karim.post(f"/console/referrals/{rid}/decide", {"to": "triaged", **stale})
    assert refused.status_code == 412, refused.text
    assert "Someone changed this since you opened it" in refused.text and "Nothing was changed" in refused.text
    now = api_referral(app_client, auth, rid)
    assert now.headers["ETag"] == before.headers["ETag"] and now.json()["status"] == "triaged"

    # Declining needs a reason: the API's 422, its field named, the form kept.
    form = karim.get(f"/console/referrals/{rid}/decide")
    refused = karim.post(f"/console/referrals/{rid}/decide", {"to": "declined", **hidden(form)})
    assert refused.status_code == 422, refused.text
    assert 'class="field-error" id="reason-error"' in refused.text
    assert 'id="to-declined" name="to" value="declined" checked' in refused.text
    # Closing is not a step from triaged: the API's 409.
    refused = karim.post(f"/console/referrals/{rid}/decide", {"to": "closed", "outcome": "risk_reduced",
                                                               **hidden(refused)})
    assert refused.status_code == 409, refused.text
    assert "not possible from where it stands" in refused.text
    # Nothing chosen: refused by the page itself.
    refused = karim.post(f"/console/referrals/{rid}/decide", {**hidden(refused)})
    assert refused.status_code == 422 and "Choose what to do." in refused.text
    # An assignment naming no agency, from accepted.
    move(rid, "accepted")
    form = karim.get(f"/console/referrals/{rid}/decide")
    refused = karim.post(f"/console/referrals/{rid}/decide", {"to": "assigned", **hidden(form)})
    assert refused.status_code == 422 and 'id="agencies-error"' in refused.text
    final = api_referral(app_client, auth, rid).json()
    assert final["status"] == "accepted" and not final.get("assigned_agencies")

    # A referral that does not exist: the API's 404 as a page, never a 5xx.
    missing = karim.get("/console/referrals/ref_does-not-exist/decide")
    assert missing.status_code == 404


def test_an_action_is_set_and_its_owner_marks_it_done(
    signed_in: Callable[..., Any], post_referral: Callable[..., Any], app_client: TestClient, auth: Auth,
    move: Callable[..., Any], state: AppState,
) -> None:
    rid = post_referral()["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-social-services"]}))
    karim = signed_in("karim-coordinator", purpose="intervention_planning")
    due = (state.clock() + timedelta(days=7)).date().isoformat()
    past = (state.clock() - timedelta(days=2)).date().isoformat()

    form = karim.get(f"/console/referrals/{rid}/actions/new")
    assert form.status_code == 200 and 'name="owner_agency"' in form.text
    # Bad input: a date in the past (the API's 422), and missing fields (the page's own): nothing set.
    refused = karim.post(f"/console/referrals/{rid}/actions/new", {
        "description": "Home visit with the family", "owner_agency": "city-social-services", "due_on": past})
    assert refused.status_code == 422 and 'id="due_on-error"' in refused.text
    assert "Home visit with the family" in refused.text  # the form keeps what was typed
    refused = karim.post(f"/console/referrals/{rid}/actions/new", {"description": "", "owner_agency": ""})
    assert refused.status_code == 422
    listed = app_client.get(f"/v1/referrals/{rid}/actions", headers=auth(COORDINATOR, **PLANNING))
    assert listed.json()["items"] == []

    created = karim.post(f"/console/referrals/{rid}/actions/new", {
        "description": "Home visit with the family", "owner_agency": "city-social-services", "due_on": due})
    assert created.status_code == 200, created.text
    assert "/console/actions?saved=created" in str(created.url)
    assert "Home visit with the family" in created.text and "Saved: the action is set." in created.text
    [action] = app_client.get(f"/v1/referrals/{rid}/actions", headers=auth(COORDINATOR, **PLANNING)).json()["items"]
    assert action["status"] == "open" and action["owner_agency"] == "city-social-services"

    # Another agency's caseworker neither sees it among its actions nor may change it.
    rana = signed_in("rana-referrer", purpose="intervention_planning")
    theirs = rana.get("/console/actions")
    assert theirs.status_code == 200 and action["id"] not in theirs.text
    refused = rana.post(f"/console/actions/{action['id']}/status", {"status": "done"})
    assert refused.status_code == 403, refused.text
    assert "You may not do this" in refused.text

    # The owner agency's caseworker marks it done from its own list.
    hadi = signed_in("hadi-caseworker", purpose="intervention_planning")
    mine = hadi.get("/console/actions")
    assert mine.status_code == 200, mine.text
    assert action["id"] in mine.text and "Home visit with the family" in mine.text
    done = hadi.post(f"/console/actions/{action['id']}/status", {"status": "done", "note": "Visited on Monday",
                                                                  "state": "all"})
    assert done.status_code == 200, done.text
    assert "Saved: the action&#39;s status is changed." in done.text or "Saved: the action's status" in done.text
    assert "Visited on Monday" in done.text
    [after] = app_client.get(f"/v1/referrals/{rid}/actions", headers=auth(COORDINATOR, **PLANNING)).json()["items"]
    assert after["status"] == "done" and after["completion_note"] == "Visited on Monday"
    # A status outside the protocol: the API's 422, the list again.
    refused = hadi.post(f"/console/actions/{action['id']}/status", {"status": "finished", "state": "all"})
    assert refused.status_code == 422 and "Nothing was changed" in refused.text


def test_only_coordinators_reach_the_coordinators_pages(signed_in: Callable[..., Any]) -> None:
    rana = signed_in("rana-referrer", purpose="safeguarding_assessment")
    for path in ("/console/worklist", "/console/referrals/ref_x/decide", "/console/meetings", "/console/meetings/new",
                 "/console/meetings/mtg_x"):
        refused = rana.get(path)
        assert refused.status_code == 403, path
    rana.get("/console/")
    for path in ("/console/referrals/ref_x/decide", "/console/meetings/new", "/console/meetings/mtg_x/close",
                 "/console/meetings/mtg_x/items", "/console/meetings/mtg_x/items/1/minutes"):
        refused = rana.post(path, {"to": "triaged"})
        assert refused.status_code == 403, path
    assert rana.get("/console/actions").status_code == 200  # a caseworker's page too
    nour = signed_in("nour-reader", purpose="service_provision")
    assert nour.get("/console/actions").status_code == 403
    assert nour.get("/console/referrals/ref_x/actions/new").status_code == 403


def test_without_a_purpose_the_pages_ask_for_one(signed_in: Callable[..., Any]) -> None:
    karim = signed_in("karim-coordinator")
    for path in ("/console/worklist", "/console/referrals/ref_x/decide", "/console/meetings",
                 "/console/meetings/new", "/console/meetings/mtg_x", "/console/actions",
                 "/console/referrals/ref_x/actions/new"):
        asked = karim.get(path, follow_redirects=False)
        assert asked.status_code == 303, path
        assert asked.headers["location"].startswith("/console/purpose?next="), path


def test_the_town_coordinator_never_sees_the_citys_referrals(
    signed_in: Callable[..., Any], post_referral: Callable[..., Any],
) -> None:
    city = post_referral()["id"]
    town = post_referral("town-school-referrer", network="demo-town")["id"]
    tarek = signed_in("town-coordinator-person", purpose="safeguarding_assessment")
    listed = tarek.get("/console/worklist")
    assert listed.status_code == 200, listed.text
    assert town in listed.text
    assert city not in listed.text
    # Asking for the city's network by name falls back to the town's own.
    assert city not in tarek.get("/console/worklist?network=demo-city").text
    refused = tarek.get(f"/console/referrals/{city}/decide")
    assert refused.status_code in (403, 404)  # a page saying so, never the referral
