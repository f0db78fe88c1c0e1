"""A lean entry (app.lean) answers exactly what the declared route answers, and skips only the cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from support.referrals import COORDINATOR, PURPOSE

from app import lean
from app.audit.models import AuditEntry
from app.state import AppState

Auth = Callable[..., dict[str, str]]

# Every request shape a lean entry must answer as the declared route does: (name, headers
# beyond the caller's token, query, whether the token is sent, whether the referral exists).
READ_CASES: list[tuple[str, dict[str, Any], dict[str, str], bool, bool]] = [
    ("plain read", PURPOSE, {}, True, True),
    ("named view", PURPOSE, {"view": "referral.summary"}, True, True),
    ("unknown view", PURPOSE, {"view": "no.such.view"}, True, True),
    ("view too long", PURPOSE, {"view": "v" * 65}, True, True),
    ("purpose missing", {}, {}, True, True),
    ("purpose not open", {"X-Purpose": "research"}, {}, True, True),
    ("purpose too long", {"X-Purpose": "p" * 65}, {}, True, True),
    ("purpose not printable", {"X-Purpose": "safeguarding\u00e9".encode("latin-1")}, {}, True, True),
    ("justification too long", {**PURPOSE, "X-Justification": "j" * 501}, {}, True, True),
    ("justification", {**PURPOSE, "X-Justification": "case conference"}, {}, True, True),
    ("emergency without a grant", {"X-Purpose": "emergency", "X-Justification": "risk to life"}, {}, True, True),
    ("no token", PURPOSE, {}, False, True),
    ("not a bearer token", {**PURPOSE, "Authorization": "Basic dXNlcjpwYXNz"}, {}, False, True),
    ("a forged token", {**PURPOSE, "Authorization": "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}, {}, False, True),
    ("no such referral", PURPOSE, {}, True, False),
]
CASES = {"get_referral": READ_CASES}


def entries(state: AppState) -> int:
    with state.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def lean_routes(app_client: TestClient) -> list[fastapi.routing.APIRoute]:
    """Every route of the app, through the routers it includes, that has a lean entry."""
    found: list[fastapi.routing.APIRoute] = []
    pending = list(app_client.app.routes)  # type: ignore[attr-defined]
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)
        if included is not None:
            pending.extend(included.routes)
        elif isinstance(route, fastapi.routing.APIRoute) and lean.entry_of(route.endpoint):
            found.append(route)
    return found


def test_every_lean_entry_has_its_cases(app_client: TestClient) -> None:
    named = {route.name for route in lean_routes(app_client)}
    assert named, "no route has a lean entry: the hot read lost its"
    assert named == set(CASES)


@pytest.mark.parametrize(("name", "headers", "query", "with_token", "exists"), READ_CASES,
                         ids=[case[0] for case in READ_CASES])
def test_the_lean_read_answers_as_the_declared_route(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
    move: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
    name: str, headers: dict[str, Any], query: dict[str, str], with_token: bool, exists: bool,
) -> None:
    rid = post_referral()["id"]
    move(rid, "triaged")
    url = f"/v1/referrals/{rid if exists else 'ref_doesnotexist'}"
    sent = {**(auth(COORDINATOR) if with_token else {}), **headers}

    def answer() -> tuple[int, dict[str, Any] | None, dict[str, str], int]:
        before = entries(state)
        response = app_client.get(url, headers=sent, params=query)
        kept = {k: response.headers.get(k, "") for k in ("content-type", "x-granted-view", "x-agreement", "etag")}
        body = response.json()
        body.pop("instance", None)  # the request id differs
        body.pop("request_id", None)
        return response.status_code, body, kept, entries(state) - before

    solved: list[int] = []
    real = fastapi.routing.solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        solved.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    lean_answer = answer()
    lean_solved = len(solved)
    monkeypatch.setattr(lean, "entry_of", lambda endpoint: None)  # the declared way only
    declared_answer = answer()
    assert lean_answer == declared_answer
    assert len(solved) > lean_solved  # the declared way solved dependencies
    plainly_valid = not any(word in name for word in ("too long", "not printable"))
    assert lean_solved == (0 if plainly_valid else 1)  # and the lean entry only when it must
    if name == "plain read":
        assert lean_answer[0] == 200 and lean_answer[3] == 1  # one disclosure entry each way
    if not plainly_valid:
        assert lean_answer[0] == 422 and lean_answer[3] == 0
