"""Each role reaches its home page signed in; a referral page shows the API's projection and logs it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from app.audit.models import AuditEntry


def test_a_referrer_signs_in_and_a_coordinator_passes_the_second_factor(signed_in: Callable[..., object]) -> None:
    referrer = signed_in("rana-referrer")
    assert "Rana Referrer" in referrer.get("/console/").text  # type: ignore[attr-defined]
    coordinator = signed_in("karim-coordinator")
    page = coordinator.get("/console/")  # type: ignore[attr-defined]
    assert page.status_code == 200 and "Karim Coordinator" in page.text


def test_a_case_page_is_the_apis_projection_and_leaves_its_entry(signed_in, post_referral, state) -> None:  # type: ignore[no-untyped-def]
    created = post_referral()
    referrer = signed_in("rana-referrer", purpose="safeguarding_assessment")
    with state.read_sessions() as session:
        before = len(session.scalars(select(AuditEntry.seq)).all())
    page = referrer.get(f"/console/referrals/{created['id']}")
    assert page.status_code == 200
    assert created["id"] in page.text
    with state.read_sessions() as session:
        after = len(session.scalars(select(AuditEntry.seq)).all())
    assert after > before
