"""The training page: each person's standing, the warning on every page, coordinators recording completions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from support.audit_log import entries

from app.state import AppState

COURSE = "data-protection-basics"
BANNER = 'class="training-due"'


def test_an_untrained_person_is_warned_on_every_page_and_sees_why(
    signed_in: Callable[..., Any], state: AppState
) -> None:
    hadi = signed_in("hadi-caseworker", purpose="intervention_planning")
    for path in ("/console/", "/console/cases", "/console/agreements"):
        page = hadi.get(path)
        assert page.status_code == 200, (path, page.text[:1000])
        assert BANNER in page.text and COURSE in page.text, path
    own = hadi.get("/console/training")
    assert own.status_code == 200
    assert "not completed" in own.text and COURSE in own.text
    assert "Record a completion" not in own.text  # the form is a coordinator's
    refused = hadi.post("/console/training", {"person_id": "hadi-caseworker", "course_id": COURSE,
                                               "completed_on": str(state.clock().date())})
    assert refused.status_code == 403
    assert entries(state, event_type="training_recorded") == []


def test_a_coordinator_sees_the_network_and_records_a_completion(
    signed_in: Callable[..., Any], state: AppState
) -> None:
    karim = signed_in("karim-coordinator")
    page = karim.get("/console/training")
    assert page.status_code == 200
    assert "hadi-caseworker" in page.text and "nour-reader" in page.text
    assert "town-coordinator-person" not in page.text  # another network's
    day = state.clock().date()
    saved = karim.post("/console/training", {"person_id": "hadi-caseworker", "course_id": COURSE,
                                              "completed_on": str(day - timedelta(days=1)),
                                              "expires_on": str(day + timedelta(days=365))})
    assert saved.status_code == 200 and "Saved: the completion is recorded." in saved.text
    (logged,) = entries(state, event_type="training_recorded")
    assert logged.details is not None and logged.details["person_id"] == "hadi-caseworker"
    assert logged.details["recorded_by"] == "karim-coordinator"
    hadi = signed_in("hadi-caseworker")
    own = hadi.get("/console/training")
    assert BANNER not in own.text and "current" in own.text


def test_an_expiring_course_is_warned_about_and_bad_input_changes_nothing(
    signed_in: Callable[..., Any], state: AppState
) -> None:
    karim = signed_in("karim-coordinator")
    day = state.clock().date()
    future = karim.post("/console/training", {"person_id": "hadi-caseworker", "course_id": COURSE,
                                               "completed_on": str(day + timedelta(days=3))})
    assert future.status_code == 422 and "is in the future" in future.text
    assert 'value="hadi-caseworker"' in future.text  # the form keeps what was typed
    no_csrf = karim.post("/console/training", {"person_id": "hadi-caseworker", "course_id": COURSE,
                                                "completed_on": str(day)}, csrf="wrong")
    assert no_csrf.status_code == 403
    assert entries(state, event_type="training_recorded") == []
    soon = karim.post("/console/training", {"person_id": "hadi-caseworker", "course_id": COURSE,
                                             "completed_on": str(day - timedelta(days=700)),
                                             "expires_on": str(day + timedelta(days=10))})
    assert soon.status_code == 200
    hadi = signed_in("hadi-caseworker")
    home = hadi.get("/console/")
    assert BANNER in home.text
    assert "expires within 30 days" in hadi.get("/console/training").text


def test_the_page_is_translated(signed_in: Callable[..., Any]) -> None:
    hadi = signed_in("hadi-caseworker")
    hadi.post("/console/language", {"language": "ar", "next": "/console/training"})
    page = hadi.get("/console/training")
    assert page.status_code == 200
    assert "دوراتك" in page.text and "تدريب مستحق" in page.text
