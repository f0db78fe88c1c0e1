"""Fixtures for emergency access: a case an assigned agency may break the glass on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.emergency import Auth, withdraw_consent


@pytest.fixture
def assigned_case(
    app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]], move: Callable[..., Any],
) -> Callable[..., str]:
    """A school-north referral assigned to the health centre, whose consent was then withdrawn:
    the health centre's ordinary grant lapses, and only emergency access reads it."""

    def _case(*, withdraw: bool = True) -> str:
        rid: str = post_referral()["id"]
        move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-health-centre"]}))
        if withdraw:
            withdraw_consent(app_client, auth, rid)
        return rid

    return _case
