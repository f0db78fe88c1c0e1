"""schemathesis against the live ASGI app: the published document is what the service does.

Every operation of the served document is exercised in the examples, coverage and fuzzing phases
(``schema.parametrize()``) and, in the stateful phase, along the OpenAPI links from a creation to the
operations that read and act on what it created (``as_state_machine()``), on SQLite and PostgreSQL.
The cases of each operation are sent in turn as each role of the demo network and as no one, so every
role meets every operation while the run stays within CI's budget (about 2 minutes of CPU for both
databases; the test summary prints operations, cases and stateful calls).

Every check schemathesis has runs, with its defaults, except:
- ``max_response_time``: off (no timing assertions in tests; speed is measured in bench/);
- ``positive_data_acceptance``: its expected statuses name the domain refusals a schema-valid request
  may still get (EXPECTED_POSITIVE), plus 422 only on operations whose document lists
  ``x-server-side-rules``.

The run is derandomised (fixed seed, no example database) so CI sees the same cases each time.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import ASGIClient
from support.referrals import PURPOSE, referral_body

from app.main import create_app

# One client per role of the demo network (app/demo.py), and no token at all.
ROLE_CLIENTS = {
    "referrer": "school-north-referrer",  # referrer + caseworker
    "caseworker": "youth-ngo-caseworker",
    "coordinator": "municipality-coordinator",
    "partner_reader": "youth-ngo-reader",
    "statistics_reader": "national-statistics",
    "auditor": "independent-auditor",
    "admin": "municipality-operator",
}
# Schema-valid input may still be refused by the domain, never by validation: an X-Purpose that no
# agreement opens (400), a record another agency owns (403/404), a state that forbids the change
# (409/410/412/428), a rate limit (429).  422 is deliberately absent: valid input is never "invalid".
EXPECTED_POSITIVE = ["2xx", "3xx", "400", "401", "403", "404", "409", "410", "412", "428", "429"]
SEED = 20261203
MAX_EXAMPLES = 6
# The state machine picks its next call at random among the linked operations: enough runs that a
# creation is followed along its link by a read, whatever the seed (it took 6 on one machine, not on another).
STATEFUL_EXAMPLES = 30
STATEFUL_STEPS = 10

# The document does not depend on the database: load it once, as a partner would, from what is served.
DOCUMENT = create_app().openapi()
# Rules the document says the service checks beyond the schema (`x-server-side-rules`, e.g. "names a
# registered agency"): there, a schema-valid body may also get the 422 that names the rule.
SERVER_SIDE = sorted(
    op["operationId"] for item in DOCUMENT["paths"].values() for op in item.values() if op.get("x-server-side-rules")
)
CONFIG: dict[str, Any] = {
    "seed": SEED,
    "base-url": "http://testserver",
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "checks": {"positive_data_acceptance": {"expected-statuses": EXPECTED_POSITIVE}},
    "operations": [
        {"include-operation-id": op_id,
         "checks": {"positive_data_acceptance": {"expected-statuses": [*EXPECTED_POSITIVE, "422"]}}}
        for op_id in SERVER_SIDE
    ],
}


@pytest.fixture
def tokens(app_client: TestClient, token_for: Callable[..., str]) -> dict[str, str]:
    return {role: token_for(client) for role, client in ROLE_CLIENTS.items()}


@pytest.fixture
def live(app_client: TestClient, tokens: dict[str, str], post_referral: Callable[..., dict[str, Any]]) -> ASGIClient:
    """A client of the app whose lifespan app_client runs, with the demo network seeded and a referral.

    schemathesis' own ASGI transport would start the app's lifespan a second time (and keep it to
    the end of the process); its client used as a session sends requests without doing so.
    """
    post_referral()
    return ASGIClient(app_client.app)


schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=SchemathesisConfig.from_dict(CONFIG))


def _linked_with_valid_referrals(document: dict[str, Any], linked: list[str]) -> dict[str, Any]:
    """The linked operations of the document, the body of POST /v1/referrals pinned to a valid referral.

    A generated referral almost never passes the server-side rules (its network, its codes), so the
    stateful phase would never get past the creation; the fuzzing phases test that body instead.
    """
    pinned = copy.deepcopy(document)
    for path, item in list(pinned["paths"].items()):
        for method in [m for m, op in item.items() if op["operationId"] not in linked]:
            del item[method]
        if not item:
            del pinned["paths"][path]
    media = pinned["paths"]["/v1/referrals"]["post"]["requestBody"]["content"]["application/json"]
    media["schema"] = {"enum": [referral_body()]}
    return pinned


# The operations the links join (app.openapi.LINKS): the machine walks among them, not all 52.
LINKED = sorted({
    op_id for item in DOCUMENT["paths"].values() for op in item.values()
    for op_id in [op["operationId"], *(link["operationId"] for r in op["responses"].values()
                                       for link in r.get("links", {}).values())]
    if any(r.get("links") for r in op["responses"].values())
})
stateful_schema = schemathesis.openapi.from_dict(
    _linked_with_valid_referrals(DOCUMENT, LINKED), config=SchemathesisConfig.from_dict(CONFIG)
)


def _callers(tokens: dict[str, str]) -> Iterator[dict[str, str]]:
    """Every role in turn, and no token, forever: the cases of one operation are spread over them all."""
    while True:
        yield {}
        for token in tokens.values():
            yield {"Authorization": f"Bearer {token}"}


@pytest.fixture
def callers(tokens: dict[str, str]) -> Iterator[dict[str, str]]:
    return _callers(tokens)


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None, derandomize=True)
def test_every_operation_for_every_role(
    case: Any, live: ASGIClient, callers: Iterator[dict[str, str]], schemathesis_tally: dict[str, Any]
) -> None:
    headers = next(callers)
    if case.headers and "Authorization" in case.headers:
        headers = {}  # the case tests a malformed token of its own
    schemathesis_tally["operations"].add(case.operation.label)
    schemathesis_tally["cases"] += 1
    case.call_and_validate(session=live, headers=headers)


def test_stateful_links_create_then_read(
    live: ASGIClient, tokens: dict[str, str], schemathesis_tally: dict[str, Any]
) -> None:
    """Create → read along the document's links, as a referrer and as the coordinator."""
    called: set[str] = set()
    for role in ("referrer", "coordinator"):
        headers = {"Authorization": f"Bearer {tokens[role]}"}

        class Machine(stateful_schema.as_state_machine()):  # type: ignore[misc]
            caller = headers

            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                schemathesis_tally["stateful_steps"] += 1
                called.add(case.operation.label)
                return {"session": live, "headers": self.caller}

        run_state_machine_as_test(Machine, settings=settings(
            max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck), database=None,
        ))
    # The links were followed: referrals created, then read and acted on by the id the creation returned.
    # Which links the machine takes is its own choice (seeded); that it took some from the creation is not.
    followed = {op for op in called if op.startswith(("GET /v1/referrals/{referral_id}", "POST /v1/referrals/{"))}
    assert "POST /v1/referrals" in called and len(followed) >= 2, called


def test_links_from_a_creation_resolve(app_client: TestClient, tokens: dict[str, str]) -> None:
    """Each link of POST /v1/referrals, followed as the document says, reaches the referral just created."""
    referrer = {"Authorization": f"Bearer {tokens['referrer']}"}
    created = app_client.post("/v1/referrals", json=referral_body(), headers=referrer)
    assert created.status_code == 201, created.text
    links = DOCUMENT["paths"]["/v1/referrals"]["post"]["responses"]["201"]["links"]
    assert {"get_referral", "list_notes", "create_note", "transition_referral", "update_consent"} <= set(links)
    assert all(link["parameters"] == {"referral_id": "$response.body#/id"} for link in links.values())
    # The read link, followed: the id the body names is the referral (its owner reads it for case work).
    read = app_client.get(f"/v1/referrals/{created.json()['id']}",
                          headers={**referrer, **PURPOSE})
    assert read.status_code == 200, read.text
    assert read.json()["id"] == created.json()["id"]

