"""Every operation, every input, poisoned with control characters: never a 5xx, and nothing changes.

The operations come from the OpenAPI document the app serves, so a new route is fuzzed without
anyone adding it here.  For each one, as a caller whose role reaches it (from `x-required-roles`,
else found by asking), one input at a time is poisoned: each path parameter, each query
parameter, `X-Purpose`, `Authorization` and every header the operation declares, and each string
of a body built from the operation's request schema (JSON or form).

- C0 characters and DEL in the path, query, headers and form fields, and C0 characters other
  than TAB, LF and CR in JSON strings, are refused at the edge (app.edges): exactly 400 (a
  header) or 422, an RFC 9457 problem naming where, no row changed anywhere, audit log included.
- TAB, LF and CR in a JSON string are free text and pass the edge: whatever the operation makes
  of them, it is not a 5xx; a refusal is a problem and changes no case data (a denial may be
  logged: that is the design).

Runs on SQLite and PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from support.referrals import COORDINATOR, REFERRER, referral_body
from support.row_counts import TABLES, counts

from app.state import AppState

Auth = Callable[..., dict[str, str]]
ADMIN = "municipality-operator"
AUDITOR = "independent-auditor"
MARKER = "zq-marker"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "request_id"}
METHODS = ("get", "post", "put", "patch", "delete")
CASE_TABLES = tuple(t for t in TABLES if t != "audit_entries")

# Callers tried in this order when an operation does not say which roles it admits, with the
# purpose each states on reads.
CALLERS: list[tuple[str, str | None]] = [
    (REFERRER, "safeguarding_assessment"), (COORDINATOR, "safeguarding_assessment"),
    (AUDITOR, "subject_access"), (ADMIN, None), ("youth-ngo-reader", "service_provision"),
    ("national-statistics", "statistics"),
]
ROLES_OF = {REFERRER: {"referrer", "caseworker"}, COORDINATOR: {"coordinator"}, AUDITOR: {"auditor"},
            ADMIN: {"admin"}, "youth-ngo-reader": {"partner_reader"}, "national-statistics": {"statistics_reader"}}
PREFERRED = {"get_statistics": "national-statistics"}  # admitted to all, opened by agreement to one
PURPOSE_OF = dict(CALLERS)

# Refused at the edge wherever they occur (NUL first: it is what PostgreSQL cannot store).
EDGE = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1f"]
EDGE_STRICT = [*EDGE, "\t", "\n", "\r", "\x7f"]  # path, query, headers, form fields
FREE_TEXT = ["\t", "\n", "\r"]  # allowed in JSON strings: must not break anything either


class Cycle:
    """NUL every time, plus the next of the others: every character is tried, at a bounded cost."""

    def __init__(self, chars: list[str]) -> None:
        self.rest = itertools.cycle(chars[1:])
        self.first = chars[0]

    def __call__(self) -> list[str]:
        return [self.first, next(self.rest)]


# -- the world the operations act on ----------------------------------------------------------

@pytest.fixture
def world(app_client: TestClient, auth: Auth, post_referral: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """Real ids for path parameters, so a poisoned request reaches as deep as a clean one would."""
    main = post_referral()
    spare = post_referral(subject={**referral_body()["subject"], "given_name": "Spare",
                                   "identifiers": [{"system": "national_id", "value": "LB-000111"}]})
    note = app_client.post(f"/v1/referrals/{main['id']}/notes", headers=auth(REFERRER),
                           json={"classification": "shared", "text": "First meeting held."})
    assert note.status_code == 201, note.text
    case_hold = app_client.post(f"/v1/referrals/{main['id']}/legal-hold", headers=auth(COORDINATOR),
                                json={"reason": "Proceedings 2026/17"})
    assert case_hold.status_code == 201, case_hold.text
    agency_hold = app_client.post("/v1/admin/legal-holds", headers=auth(ADMIN),
                                  json={"agency_id": "school-south", "reason": "Proceedings 2026/18"})
    assert agency_hold.status_code == 201, agency_hold.text
    vocabularies = app_client.get("/v1/vocabularies", headers=auth(REFERRER)).json()
    items = vocabularies.get("items", vocabularies) if isinstance(vocabularies, dict) else vocabularies
    return {
        "referral_id": main["id"], "subject_id": main["subject"]["id"], "spare_subject_id": spare["subject"]["id"],
        "case_hold_id": case_hold.json()["id"], "agency_hold_id": agency_hold.json()["id"],
        "vocabulary": items[0]["name"] if items and isinstance(items[0], dict) else "concern",
    }


def path_value(world: dict[str, str], operation_id: str, name: str) -> str:
    """A real value for a path parameter; the destructive operations get ones no other uses."""
    special = {
        ("erase_subject", "subject_id"): world["spare_subject_id"],
        ("lift_legal_hold", "hold_id"): world["agency_hold_id"],
        ("lift_referral_legal_hold", "hold_id"): world["case_hold_id"],
        ("disable_client", "client_id"): "town-youth-reader",
        ("get_schema", "name"): "referral",
        ("get_schema", "version"): "v1",
        ("get_vocabulary", "name"): world["vocabulary"],
    }
    common = {"referral_id": world["referral_id"], "subject_id": world["subject_id"], "network_id": "demo-city",
              "seq": "0", "grant_id": "emg_unknown", "flag_id": "flag_unknown"}
    return special.get((operation_id, name)) or common.get(name, "x")


# -- bodies from the request schema -----------------------------------------------------------

SAMPLES: dict[str, Callable[[dict[str, str]], Any]] = {
    "create_agency": lambda w: {"id": "fuzz-agency", "name": "Fuzz agency", "sector": "education"},
    "create_client": lambda w: {"agency_id": "school-north", "name": "Fuzz client", "roles": ["caseworker"]},
    "create_referral": lambda w: referral_body(),
    "transition_referral": lambda w: {"to": "triaged", "reason": "r"},
    "create_note": lambda w: {"classification": "shared", "text": "t", "author_person": "p"},
    "place_legal_hold": lambda w: {"agency_id": "school-north", "reason": "Proceedings"},
    "create_mapping": lambda w: {"mapping": "fuzz-map", "agency": "school-north", "codes": {}},
    "request_emergency_access": lambda w: {"reason": "Threat to life reported by police."},
    "explain_decision": lambda w: {"purpose": "safeguarding_assessment", "referral_id": w["referral_id"]},
}


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        _, _, name = schema["$ref"].rpartition("/")
        schema = spec["components"]["schemas"][name]
    return schema


def build(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> Any:
    """A value of the schema with every property filled (optional ones too: each string is a target)."""
    schema = resolve(schema, spec)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if resolve(o, spec).get("type") != "null"]
        if options:
            return build(options[0], spec, depth)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 5:
            return {}
        found = {k: build(v, spec, depth + 1) for k, v in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not found:
            found = {"k": build(extra, spec, depth + 1)}
        return found
    if kind == "array":
        return [build(schema.get("items", {}), spec, depth + 1)] if depth <= 5 else []
    if kind == "string":
        return {"date": "2020-01-01", "date-time": "2026-01-01T00:00:00Z", "email": "a@example.org",
                "uri": "https://example.org/"}.get(schema.get("format", ""), "x" * max(1, schema.get("minLength", 1)))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return "x"


def string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_paths(item, (*path, index))


def poisoned(value: Any, path: tuple[Any, ...], char: str) -> Any:
    if not path:
        return MARKER + char + value
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = poisoned(value[path[0]], path[1:], char)
    return copy


def json_path(path: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


# -- the operations ---------------------------------------------------------------------------

class Operation:
    def __init__(self, spec: dict[str, Any], path: str, method: str, operation: dict[str, Any],
                 world: dict[str, str], demo: dict[str, dict[str, Any]]) -> None:
        self.path, self.method, self.id = path, method, operation["operationId"]
        parameters = [resolve(p, spec) for p in operation.get("parameters", [])]
        self.path_params = [p["name"] for p in parameters if p["in"] == "path"]
        self.query_params = [p["name"] for p in parameters if p["in"] == "query"]
        self.headers = sorted({p["name"] for p in parameters if p["in"] == "header"} | {"X-Purpose", "Authorization"})
        self.roles = operation.get("x-required-roles")
        self.values = {name: path_value(world, self.id, name) for name in self.path_params}
        content = operation.get("requestBody", {}).get("content", {})
        self.form = "application/x-www-form-urlencoded" in content
        self.body: Any = None
        if self.form:
            self.body = {**build(content["application/x-www-form-urlencoded"]["schema"], spec),
                         "grant_type": "client_credentials", "client_id": REFERRER,
                         "client_secret": demo[REFERRER]["client_secret"]}
        elif "application/json" in content:
            sample = SAMPLES.get(self.id)
            self.body = sample(world) if sample else build(content["application/json"]["schema"], spec)

    def url(self, values: dict[str, str], query: dict[str, str] | None = None) -> str:
        url = self.path
        for name, value in values.items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        return url + ("?" + urlencode(query) if query else "")

    def send(self, client: TestClient, headers: dict[str, Any], *, values: dict[str, str] | None = None,
             query: dict[str, str] | None = None, body: Any = None) -> Response:
        body = self.body if body is None else body
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["data" if self.form else "json"] = body
        return client.request(self.method.upper(), self.url(values or self.values, query), headers=headers, **kwargs)


def operations(spec: dict[str, Any], world: dict[str, str], demo: dict[str, dict[str, Any]]) -> list[Operation]:
    found = [Operation(spec, path, method, operation, world, demo)
             for path, item in spec["paths"].items()
             for method, operation in item.items() if method in METHODS and isinstance(operation, dict)]
    # Destructive operations last, so the others act on the world as it was built.
    return sorted(found, key=lambda o: o.id in {"erase_subject", "disable_client"})


def caller_for(client: TestClient, auth: Auth, op: Operation) -> tuple[str, str | None]:
    """A caller whose role reaches the operation: as declared (`x-required-roles`), else the first the
    operation does not refuse with a 401/403."""
    if op.id in PREFERRED:
        return PREFERRED[op.id], PURPOSE_OF[PREFERRED[op.id]]
    if op.roles is not None:
        admitted = set(op.roles)
        chosen = next((c for c, _ in CALLERS if not admitted or ROLES_OF[c] & admitted), None)
        if chosen is not None:
            return chosen, PURPOSE_OF[chosen]
    for client_id, purpose in CALLERS:
        headers = auth(client_id, **({"X-Purpose": purpose} if purpose else {}))
        # An invalid body: the role check (a dependency) runs first, and nothing is created.
        response = op.send(client, headers, body=[] if op.body is not None and not op.form else None)
        if response.status_code not in (401, 403):
            return client_id, purpose
    return CALLERS[0]


# -- the checks -------------------------------------------------------------------------------

def refused_at_edge(response: Response, status: int, location: str, where: str) -> None:
    assert response.status_code == status, (where, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", where
    problem = response.json()
    assert set(problem) >= PROBLEM_FIELDS, (where, problem)
    assert any(e["location"] == location for e in problem["errors"]), (where, problem)
    assert MARKER not in response.text, where


class Fuzz:
    def __init__(self, client: TestClient, state: AppState) -> None:
        self.client, self.state = client, state
        self.before = counts(state)
        self.sent = 0

    def edge(self, response: Response, status: int, location: str, where: str) -> None:
        """Refused at the edge: nothing anywhere changed."""
        self.sent += 1
        refused_at_edge(response, status, location, where)
        assert counts(self.state) == self.before, where

    def free_text(self, response: Response, where: str) -> None:
        """Past the edge: never a 5xx; a refusal is a problem and leaves the case data as it was."""
        self.sent += 1
        assert response.status_code < 500, (where, response.status_code, response.text)
        after = counts(self.state)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", (where, response.text)
            assert {t: after[t] for t in CASE_TABLES} == {t: self.before[t] for t in CASE_TABLES}, where
        self.before = after


def test_every_operation_refuses_control_characters_in_every_input(
    app_client: TestClient, auth: Auth, world: dict[str, str], demo: dict[str, dict[str, Any]], state: AppState,
) -> None:
    spec = app_client.app.openapi()  # type: ignore[attr-defined]
    ops = operations(spec, world, demo)
    assert len(ops) >= 40, "the OpenAPI document lost its operations"
    fuzz = Fuzz(app_client, state)
    strict, text, free = Cycle(EDGE_STRICT), Cycle(EDGE), itertools.cycle(FREE_TEXT)
    for op in ops:
        client_id, purpose = caller_for(app_client, auth, op)
        clean = auth(client_id, **({"X-Purpose": purpose} if purpose else {}))
        fuzz.before = counts(state)
        for name in op.path_params:
            for char in strict():
                values = {**op.values, name: op.values[name] + char}
                fuzz.edge(op.send(app_client, clean, values=values), 422, "path", f"{op.id} path {name} {char!r}")
        for name in op.query_params:
            for char in strict():
                response = op.send(app_client, clean, query={name: MARKER + char})
                fuzz.edge(response, 422, "query", f"{op.id} query {name} {char!r}")
        for header in op.headers:
            for char in strict():
                headers = {**clean, header: clean.get(header, MARKER) + char}
                fuzz.edge(op.send(app_client, headers), 400, "header", f"{op.id} header {header} {char!r}")
        if op.body is None:
            continue
        for path in string_paths(op.body):
            where = f"{op.id} body {json_path(path)}"
            for char in (strict() if op.form else text()):
                body = poisoned(op.body, path, char)
                fuzz.edge(op.send(app_client, clean, body=body), 422, "body", f"{where} {char!r}")
            if not op.form:
                char = next(free)
                fuzz.free_text(op.send(app_client, clean, body=poisoned(op.body, path, char)), f"{where} {char!r}")
    assert fuzz.sent > 500
