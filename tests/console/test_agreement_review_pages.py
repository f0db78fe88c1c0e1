"""An agreement's review date in the console: the coordinator's work list warns 60 and 30 days ahead,
and once it has passed a page says which agreement expired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from support.console import Clock


def test_the_work_list_warns_of_the_review_60_then_30_days_ahead(
    signed_in: Callable[..., Any], clock: Clock,
) -> None:
    clock.now = datetime(2027, 5, 15, 9, 0, tzinfo=UTC)
    karim = signed_in("karim-coordinator", purpose="safeguarding_assessment")
    listed = karim.get("/console/worklist")
    assert listed.status_code == 200, listed.text
    assert 'id="group-agreement_review_60">Agreements to review within 60 days</h2>' in listed.text
    assert 'id="group-agreement_review_30"' not in listed.text
    assert 'href="/console/agreements/demo-city"' in listed.text and "<td>46</td>" in listed.text

    clock.now = datetime(2027, 6, 10, 9, 0, tzinfo=UTC)
    karim.sign_in("karim-coordinator")  # the session idled out meanwhile
    karim.choose_purpose("safeguarding_assessment")
    sharper = karim.get("/console/worklist?kind=agreement_review_30")
    assert sharper.status_code == 200, sharper.text
    assert 'id="group-agreement_review_30">Agreements to review within 30 days</h2>' in sharper.text
    assert "<td>20</td>" in sharper.text
    assert 'href="/console/agreements/demo-city"' in sharper.text
    assert 'href="/console/agreements/demo-city"' not in karim.get("/console/worklist?kind=agreement_review_60").text


def test_the_warning_is_translated(signed_in: Callable[..., Any], clock: Clock) -> None:
    clock.now = datetime(2027, 6, 10, 9, 0, tzinfo=UTC)
    karim = signed_in("karim-coordinator", purpose="safeguarding_assessment")
    karim.post("/console/language", {"language": "mk", "next": "/console/worklist"})
    listed = karim.get("/console/worklist")
    assert listed.status_code == 200, listed.text
    assert 'id="group-agreement_review_30">Договори за преглед во рок од 30 дена</h2>' in listed.text


def test_after_the_review_date_a_page_says_the_agreement_expired(
    signed_in: Callable[..., Any], clock: Clock, post_referral: Callable[..., Any],
) -> None:
    rid = post_referral()["id"]
    clock.now = datetime(2027, 7, 1, 9, 0, tzinfo=UTC)
    karim = signed_in("karim-coordinator", purpose="safeguarding_assessment")
    for path in (f"/console/referrals/{rid}", "/console/worklist"):
        page = karim.get(path)
        assert page.status_code == 403, (path, page.text)
        assert "agreement demo-city version 3 expired on 2027-06-30 (its review_by)" in page.text
        assert "Yasmin" not in page.text
