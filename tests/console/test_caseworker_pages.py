"""The caseworker's pages: the cases assigned to the agency (as the agreements let it see them) and a note."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, NARRATIVE

PLANNING = "intervention_planning"
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def attribute(page: str, field_id: str, name: str) -> str:
    tag = re.search(rf'<(?:input|select|textarea)[^>]*\bid="{re.escape(field_id)}"[^>]*>', page)
    assert tag is not None, field_id
    found = re.search(rf'\b{name}="([^"]*)"', tag.group(0))
    assert found is not None, (field_id, name)
    return html.unescape(found.group(1))


def notes(app_client: TestClient, auth: Callable[..., dict[str, str]], referral_id: str) -> list[dict[str, Any]]:
    response = app_client.get(f"/v1/referrals/{referral_id}/notes",
                              headers=auth(COORDINATOR, **{"X-Purpose": PLANNING}))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def assigned(post_referral: Callable[..., dict[str, Any]], move: Callable[..., dict[str, Any]],
             *agencies: str) -> str:
    created = post_referral()
    move(created["id"], "triaged", "accepted", ("assigned", {"agencies": list(agencies)}))
    referral_id: str = created["id"]
    return referral_id


def test_a_caseworker_of_an_assigned_agency_sees_the_case_and_adds_a_note(
        signed_in: Callable[..., Any], post_referral: Callable[..., dict[str, Any]],
        move: Callable[..., dict[str, Any]], app_client: TestClient, auth: Callable[..., dict[str, str]]) -> None:
    referral_id = assigned(post_referral, move, "city-social-services")
    other = post_referral()  # not assigned to anyone
    hadi = signed_in("hadi-caseworker", purpose=PLANNING)
    page = hadi.get("/console/cases")
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    assert f'href="/console/referrals/{referral_id}"' in page.text and "Assigned" in page.text
    assert other["id"] not in page.text
    assert f'href="/console/referrals/{referral_id}/notes/new"' in page.text
    # Filtered by status, through the API's own filter.
    assert referral_id not in hadi.get("/console/cases?status=closed").text
    assert referral_id in hadi.get("/console/cases?status=assigned").text

    form = hadi.get(f"/console/referrals/{referral_id}/notes/new")
    assert form.status_code == 200
    assert '<option value="shared" selected>Shared</option>' in form.text
    key = KEY.search(form.text).group(1)  # type: ignore[union-attr]
    data = {"idempotency_key": key, "classification": "shared", "text": "Met the family; next visit in May."}
    done = hadi.post(f"/console/referrals/{referral_id}/notes/new", data)
    assert done.status_code == 200 and str(done.url).endswith(f"/console/referrals/{referral_id}?done=note-added")
    again = hadi.post(f"/console/referrals/{referral_id}/notes/new", data)  # a double submit
    assert again.status_code == 200
    found = notes(app_client, auth, referral_id)
    assert [n["text"] for n in found] == ["Met the family; next visit in May."]
    assert found[0]["author_agency"] == "city-social-services" and found[0]["classification"] == "shared"


def test_a_note_without_text_gives_the_form_back_with_the_fields_message(
        signed_in: Callable[..., Any], post_referral: Callable[..., dict[str, Any]],
        move: Callable[..., dict[str, Any]], app_client: TestClient, auth: Callable[..., dict[str, str]]) -> None:
    referral_id = assigned(post_referral, move, "city-social-services")
    hadi = signed_in("hadi-caseworker", purpose=PLANNING)
    form = hadi.get(f"/console/referrals/{referral_id}/notes/new")
    key = KEY.search(form.text).group(1)  # type: ignore[union-attr]
    page = hadi.post(f"/console/referrals/{referral_id}/notes/new",
                     {"idempotency_key": key, "classification": "shared", "text": ""})
    assert page.status_code == 422
    message = re.search(r'<p class="field-error" id="f-text-error"[^>]*>([^<]*)</p>', page.text)
    assert message is not None and html.unescape(message.group(1)) == attribute(page.text, "f-text",
                                                                                "data-msg-required")
    page = hadi.post(f"/console/referrals/{referral_id}/notes/new",
                     {"idempotency_key": key, "classification": "gossip", "text": "x"})
    assert page.status_code == 422 and 'id="f-classification-error"' in page.text
    page = hadi.post(f"/console/referrals/{referral_id}/notes/new",
                     {"idempotency_key": key, "classification": "shared", "text": "   "})
    assert page.status_code == 422 and 'id="f-text-error"' in page.text
    assert notes(app_client, auth, referral_id) == []


def test_agencies_see_only_what_their_grant_names(
        signed_in: Callable[..., Any], post_referral: Callable[..., dict[str, Any]],
        move: Callable[..., dict[str, Any]]) -> None:
    referral_id = assigned(post_referral, move, "city-community-police", "youth-ngo-bridges")
    # Police: the case without the narrative; the youth NGO: the summary (no assigned_agencies in its view).
    for person in ("police-caseworker", "youth-caseworker"):
        worker = signed_in(person, purpose=PLANNING)
        page = worker.get("/console/cases")
        assert page.status_code == 200 and f'href="/console/referrals/{referral_id}"' in page.text, person
        assert NARRATIVE not in page.text and "Haddad-Testperson" not in page.text
        form = worker.get(f"/console/referrals/{referral_id}/notes/new")
        assert form.status_code == 200 and NARRATIVE not in form.text and "Haddad-Testperson" not in form.text
    # A caseworker of an agency it is not assigned to: not listed, and the note page is the API's refusal.
    huda = signed_in("health-caseworker", purpose=PLANNING)
    assert referral_id not in huda.get("/console/cases").text
    refused = huda.get(f"/console/referrals/{referral_id}/notes/new")
    assert refused.status_code in (403, 404) and NARRATIVE not in refused.text
    posted = huda.post(f"/console/referrals/{referral_id}/notes/new", {"classification": "shared", "text": "x"})
    assert posted.status_code in (403, 404)


def test_without_the_role_the_pages_are_refused(signed_in: Callable[..., Any],
                                                post_referral: Callable[..., dict[str, Any]]) -> None:
    created = post_referral()
    karim = signed_in("karim-coordinator", purpose=PLANNING)
    assert karim.get("/console/cases").status_code == 403
    nour = signed_in("nour-reader", purpose="service_provision")
    assert nour.get("/console/cases").status_code == 403
    assert nour.get(f"/console/referrals/{created['id']}/notes/new").status_code == 403
    refused = nour.post(f"/console/referrals/{created['id']}/notes/new", {"classification": "shared", "text": "x"})
    assert refused.status_code == 403


def test_without_a_purpose_the_pages_ask_for_one(signed_in: Callable[..., Any],
                                                 post_referral: Callable[..., dict[str, Any]]) -> None:
    created = post_referral()
    hadi = signed_in("hadi-caseworker")
    for path in ("/console/cases", f"/console/referrals/{created['id']}/notes/new"):
        response = hadi.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/console/purpose"), path
