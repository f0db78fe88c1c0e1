"""The published JSON Schema, checked against every referral body the API accepts in the suite."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

DEFAULT_REFERRAL_SCHEMA = "referral/v1"


def published(client: TestClient, schema_id: str, authorization: str | None = None) -> dict[str, Any]:
    """The schema as the app serves it (with the caller's token: its networks and code systems named)."""
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(f"/v1/schemas/{schema_id}", headers=headers)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


_VALIDATORS: dict[str, Draft202012Validator] = {}


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A Draft 2020-12 validator with format checking (the schema itself checked once per document)."""
    key = json.dumps(schema, sort_keys=True)
    if key not in _VALIDATORS:
        Draft202012Validator.check_schema(schema)
        _VALIDATORS[key] = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return _VALIDATORS[key]


def schema_errors(client: TestClient, body: Any, authorization: str | None = None) -> list[str]:
    """Why the published schema refuses a referral body (empty: it accepts it)."""
    return messages(validator(published(client, schema_of(body), authorization)), body)


def schema_of(body: Any) -> str:
    """The schema a referral body names (the default when it names none)."""
    named = body.get("schema") if isinstance(body, dict) else None
    return str(named) if named else DEFAULT_REFERRAL_SCHEMA


def messages(checker: Draft202012Validator, body: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message[:300]}" for e in checker.iter_errors(body)]


def accepted_referrals_match_the_schema(client: TestClient) -> Callable[[httpx.Response], None]:
    """A response hook: a referral the API created (201) must be valid under the schema it publishes."""

    # The schema a caller is shown depends on the agreements in force (its networks): fetched once per
    # caller and schema while the same agreements are in force, again after a reload.
    fetched: dict[tuple[str, str | None], tuple[object, Draft202012Validator]] = {}

    def check(response: httpx.Response) -> None:
        request = response.request
        if request.method != "POST" or request.url.path != "/v1/referrals" or response.status_code != 201:
            return
        body = json.loads(request.read() or b"null")
        schema_id = schema_of(body)
        authorization = request.headers.get("Authorization")
        in_force = client.app.state.cb.policies.current  # type: ignore[attr-defined]
        known = fetched.get((schema_id, authorization))
        if known is None or known[0] is not in_force:
            known = (in_force, validator(published(client, schema_id, authorization)))
            fetched[(schema_id, authorization)] = known
        errors = messages(known[1], body)
        assert not errors, f"the API accepted a referral its published schema refuses: {errors}"

    return check


class _Many:
    """hypothesis-jsonschema 0.23 drives `many` by `.more()`; hypothesis ≥ 6.150 by `with`/`for`. This bridges them."""

    def __init__(self, data: Any, min_size: int, max_size: float, average_size: float) -> None:
        from hypothesis.internal.conjecture.utils import many

        self._many = many(data, min_size=min_size, max_size=max_size, average_size=average_size)
        self._many.__enter__()
        self._steps = iter(self._many)

    def more(self) -> bool:
        try:
            next(self._steps)
        except StopIteration:
            self._many.__exit__(None, None, None)
            return False
        return True

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


def hypothesis_jsonschema_compatible() -> None:
    """Let hypothesis-jsonschema (its object strategy) run on the installed hypothesis."""
    from hypothesis.internal.conjecture import utils
    from hypothesis_jsonschema import _from_schema

    if not hasattr(utils.many, "more"):
        _from_schema.cu = type("cu", (), {"many": _Many})  # type: ignore[attr-defined]
