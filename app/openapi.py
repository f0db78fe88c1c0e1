"""The OpenAPI document, derived from the routes so that no operation can miss its errors, headers or roles.

FastAPI documents what a route declares; what the service really sends is decided elsewhere (the
bearer check, role dependencies, the error handlers in app.errors, the body limit in app.observability).
This module closes that gap in one place: every operation gets the problem+json responses it can give,
``X-Request-ID`` on every response, its required roles, and examples; FastAPI's ``HTTPValidationError``,
which the API never sends, is removed.  Routes add what cannot be derived (an explicit 409, a required
``X-Purpose``, service-level roles) in their decorators, through :func:`extra` and :func:`headers`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from app.agencies.schemas import Role
from app.auth.principal import ROLE_CHECKS, current_principal, token_caller
from app.errors import PROBLEM_BASE, PROBLEM_JSON
from app.openapi_examples import MEDIA_EXAMPLES, REQUEST_EXAMPLES, RESPONSE_EXAMPLES
from app.standards import formats, publish
from app.state import get_read_session, get_session, state_dependency
from app.vocabularies.catalog import vocabularies

SECURITY_SCHEME = "OAuth2"
ALL_ROLES = tuple(r.value for r in Role)
CASE_ROLES = tuple(r for r in ALL_ROLES if r != Role.admin.value)
REF = "#/components/schemas/Problem"
# What app.edges lets through: no C0 control character or DEL in a path, query, form field or header
# (422/400); JSON strings may keep TAB, LF and CR (422 otherwise).
NO_CONTROL = "^[^\\x00-\\x1F\\x7F]*$"
TEXT_NO_CONTROL = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F]*$"
# app.idempotency.check_key: printable, not only spaces (and at most 200 characters, the header's own limit).
IDEMPOTENCY_KEY = "^[\\x20-\\x7E]*[\\x21-\\x7E][\\x20-\\x7E]*$"
PAGE_PARAMETERS = frozenset({"cursor", "after"})

TAGS: list[dict[str, Any]] = [
    {"name": "health", "description": "Liveness, readiness and metrics for the platform; no token."},
    {"name": "auth", "description": "OAuth 2.0 client-credentials tokens (`POST /v1/token`), the keys that "
                                    "verify them, and the calling client."},
    {"name": "admin", "description": "Operators: agencies, API clients, code mappings, agreement reloads and "
                                     "legal holds. The `admin` role never reads or writes case data."},
    {"name": "standards", "description": "Published JSON Schemas of the case documents and the code vocabularies "
                                         "they use; public."},
    {"name": "referrals", "description": "Case referrals: create, read (with a stated `X-Purpose`), list, move "
                                         "through the lifecycle, record consent, follow the change feed."},
    {"name": "notes", "description": "Case notes attached to a referral, classified and shared per agreement."},
    {"name": "agreements", "description": "The information-sharing agreements and networks in force, and "
                                          "explanations of access decisions."},
    {"name": "audit", "description": "The tamper-evident disclosure log: signed checkpoints, proofs, entries, "
                                     "exports, emergency-access review and flagged agencies."},
    {"name": "partners", "description": "Summaries for partner systems that synchronise what they are granted."},
    {"name": "statistics", "description": "Aggregate counts under agreements that permit statistics, with "
                                          "small-number suppression."},
    {"name": "emergency", "description": "Break-glass access to one referral under an agreement's emergency "
                                         "section: time-limited, logged and reviewed."},
    {"name": "erasure", "description": "Erasure of a person's records (crypto-shredding), refused under legal "
                                       "hold."},
    {"name": "legal-holds", "description": "Legal holds that keep records past their retention date."},
    {"name": "meetings", "description": "The case conference: meetings and agendas proposed from the network's "
                                        "protocol, invitations per item, minutes and decisions, actions."},
    {"name": "training", "description": "Training records: the courses people completed, which agreements may "
                                        "require of their recipients, and each caller's own training status."},
]

ERROR_ITEM: dict[str, Any] = {
    "type": "object",
    "description": "One invalid input: where, what, and for unknown codes the valid ones.",
    "required": ["path", "message"],
    "properties": {
        "location": {"type": "string", "enum": ["body", "query", "path", "header"]},
        "path": {"type": "string", "description": "JSONPath of the invalid value, e.g. `$.subject.date_of_birth`."},
        "message": {"type": "string"},
        "type": {"type": "string", "description": "Machine-readable error type, e.g. `missing`, `unknown_code`."},
        "valid_codes": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": True,
}

PROBLEM: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An RFC 9457 problem details object; every error this API sends is one, as "
                   "`application/problem+json`, with `request_id` to quote to operators. Extension members "
                   "appear only on the errors that carry them.",
    "required": ["type", "title", "status", "detail", "instance", "request_id"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": f"Problem type, `{PROBLEM_BASE}<slug>`."},
        "title": {"type": "string", "description": "Short summary of the problem type."},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "HTTP status code."},
        "detail": {"type": "string", "description": "What went wrong for this request; never case data."},
        "instance": {"type": "string", "description": "The request path."},
        "request_id": {"type": "string", "description": "The request's `X-Request-ID`."},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemError"},
                   "description": "422: every invalid input."},
        "purposes": {"type": "array", "items": {"type": "string"},
                     "description": "400 `purpose-required`/`purpose-unknown`, 403 `agreement-expired`/"
                                    "`agreement-not-yet-effective`: the purposes open to the caller."},
        "reason": {"type": "string", "description": "403 `access-denied`: why no agreement grants the read."},
        "rule_ids": {"type": "array", "items": {"type": "string"},
                     "description": "403 `access-denied`: the agreement rules that decided."},
        "network": {"type": ["string", "null"], "description": "403 `change-denied`: the record's network."},
        "needs": {"type": "array", "items": {"type": "string"},
                  "description": "403 `change-denied`: the relations the change needs."},
        "allowed": {"type": "array", "items": {"type": "string"},
                    "description": "409 `transition-not-allowed`: the statuses allowed next; "
                                   "400 statistics: the dimensions allowed."},
        "allowed_for_you": {"type": "array", "items": {"type": "string"},
                            "description": "The transitions open to the caller."},
        "etag": {"type": "string", "description": "412: the current ETag."},
        "known": {"type": "array", "items": {"type": "string"}, "description": "404: the names that exist."},
        "grant_id": {"type": "string", "description": "409 `emergency-grant-active`: the active grant."},
        "hold_ids": {"type": "array", "items": {"type": "string"}, "description": "409 `legal-hold`: the holds."},
        "log_size": {"type": "integer", "description": "400 `invalid-proof-range`: entries in the log."},
        "max_per_agency_per_day": {"type": "integer", "description": "429: the emergency section's limit."},
        "agreement": {"type": "string", "description": "429: the agreement whose limit was reached; 403 "
                      "`agreement-expired`/`agreement-not-yet-effective`: the agreement not in force."},
        "agreement_version": {"type": "integer", "description": "403 `agreement-expired`/"
                              "`agreement-not-yet-effective`: its version."},
        "checks": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "503 readiness: each check's state."},
    },
    "additionalProperties": True,
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "The request's id (the caller's own `X-Request-ID` if valid, else generated); "
                                    "quoted in logs and in every problem's `request_id`.",
                     "required": True, "schema": {"type": "string"}},
    "CaseBridge-Training": {"description": "`true` on every reply to a caller whose agency belongs to a training "
                                           "network (synthetic people, isolated from every real network: "
                                           "docs/training.md); absent otherwise.",
                            "schema": {"type": "string", "enum": ["true"]}},
    "ETag": {"description": "The record's version; send it back in `If-Match` (or `If-None-Match`).",
             "schema": {"type": "string"}},
    "Location": {"description": "The created resource.", "schema": {"type": "string"}},
    "Idempotent-Replayed": {"description": "`true` when this is the stored reply to an earlier request with the "
                                           "same `Idempotency-Key`.", "schema": {"type": "string", "enum": ["true"]}},
    "X-Granted-View": {"description": "The agreement view(s) the case data in this reply was cut to, comma-separated; "
                                      "`none` on a receipt. Sent on every reply that carries case data.",
                       "schema": {"type": "string"}},
    "X-Agreement": {"description": "The agreement that granted the read, `<id>;version=<n>`.",
                    "schema": {"type": "string"}},
    "X-Emergency-Grant": {"description": "The emergency grant a break-glass read was made under.",
                          "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying.",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "WWW-Authenticate": {"description": "The authentication scheme: `Bearer`.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "Caching directives.", "schema": {"type": "string"}},
    "Content-Disposition": {"description": "Suggested file name of a download.", "schema": {"type": "string"}},
    "Content-Language": {"description": "The language of the labels.", "schema": {"type": "string"}},
    "Vary": {"description": "The request headers the response depends on.", "schema": {"type": "string"}},
}

# Headers the handlers set on their successful replies (grep app/ for where): (operation, status) -> names.
SUCCESS_HEADERS: dict[tuple[str, int], tuple[str, ...]] = {
    ("issue_token", 200): ("Cache-Control",),
    ("create_referral", 201): ("ETag", "Location", "Idempotent-Replayed", "X-Granted-View"),
    ("get_referral", 200): ("ETag", "X-Granted-View", "X-Agreement", "X-Emergency-Grant"),
    ("list_referrals", 200): ("X-Granted-View",),
    ("transition_referral", 200): ("ETag", "Idempotent-Replayed", "X-Granted-View", "X-Agreement"),
    ("update_consent", 200): ("ETag", "X-Granted-View", "X-Agreement"),
    ("list_events", 200): ("X-Granted-View",),
    ("create_note", 201): ("Idempotent-Replayed", "X-Granted-View"),
    ("list_notes", 200): ("X-Granted-View",),
    ("list_referral_legal_holds", 200): ("X-Granted-View",),
    ("get_subject_disclosures", 200): ("X-Granted-View",),
    ("sync_summaries", 200): ("ETag", "Cache-Control", "X-Granted-View"),
    ("sync_summaries", 304): ("ETag",),
    ("get_statistics", 200): ("Content-Disposition",),
    ("export_audit_log", 200): ("Content-Disposition",),
    ("list_vocabularies", 200): ("Content-Language", "Vary"),
    ("get_vocabulary", 200): ("Content-Language", "Vary"),
}


def _link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters, "description": description}


_REFERRAL = "$response.body#/id"
# OpenAPI links from a creation to the operations that read or act on what it created (the stateful
# tests follow them).
LINKS: dict[str, dict[str, Any]] = {
    "create_referral": {
        "get_referral": _link("get_referral", "Read the referral just created.", referral_id=_REFERRAL),
        "list_notes": _link("list_notes", "Its notes.", referral_id=_REFERRAL),
        "create_note": _link("create_note", "Add a note to it.", referral_id=_REFERRAL),
        "transition_referral": _link("transition_referral", "Move it on.", referral_id=_REFERRAL),
        "update_consent": _link("update_consent", "Record consent.", referral_id=_REFERRAL),
        "list_referral_legal_holds": _link("list_referral_legal_holds", "Its legal holds.", referral_id=_REFERRAL),
    },
    "create_note": {
        "list_notes": _link("list_notes", "The notes of the note's referral.",
                            referral_id="$response.body#/referral_id"),
    },
    "place_referral_legal_hold": {
        "lift_referral_legal_hold": _link("lift_referral_legal_hold", "Lift the hold just placed.",
                                          referral_id="$request.path.referral_id", hold_id="$response.body#/id"),
    },
    "place_legal_hold": {
        "lift_legal_hold": _link("lift_legal_hold", "Lift the hold just placed.", hold_id="$response.body#/id"),
    },
    "create_agency": {
        "create_client": _link("create_client", "Register a client of the new agency.") | {
            "requestBody": {"agency_id": "$response.body#/id", "name": "case system", "roles": ["referrer"]}},
    },
}

DEFAULT_DESCRIPTIONS = {
    400: "Bad request: a control character in a header, a missing or unknown `X-Purpose`, an invalid "
         "`Idempotency-Key` or cursor",
    401: "Missing, invalid or expired access token, or a disabled client",
    403: "Not permitted: a role this operation does not admit, or no agreement in force grants it "
         "(`agreement-expired`, `agreement-not-yet-effective`: the caller's agreement is past its review_by, "
         "or not yet effective)",
    404: "No such resource",
    409: "Conflict with the resource's current state",
    410: "The resource was erased",
    412: "`If-Match` does not match the current `ETag`",
    413: "The request body is larger than the service accepts",
    415: "The request body is not of a supported media type",
    422: "Invalid input (a control character in the path, query or body included): `errors` lists every "
         "invalid value, with the valid codes for unknown ones",
    428: "A precondition header (`If-Match`) is required",
    429: "Too many requests: wait `Retry-After` seconds",
    500: "Stored data failed its integrity check",
    503: "The database or disclosure log is unavailable; nothing was disclosed or changed. Retry after "
         "`Retry-After` seconds",
}
SLUGS = {400: ("bad-request", "Bad request"), 401: ("unauthorized", "Unauthorized"), 403: ("forbidden", "Forbidden"),
         404: ("not-found", "Not found"), 409: ("conflict", "Conflict"), 410: ("gone", "Gone"),
         412: ("precondition-failed", "Precondition failed"), 413: ("payload-too-large", "Payload too large"),
         415: ("unsupported-media-type", "Unsupported Media Type"), 422: ("validation-error", "Invalid input"),
         428: ("precondition-required", "Precondition required"), 429: ("too-many-requests", "Too many requests"),
         500: ("integrity-failure", "Stored data failed its integrity check"),
         503: ("service-unavailable", "Service unavailable")}


def headers(*names: str) -> dict[str, Any]:
    """Response headers for a decorator's ``responses``, referring to the shared definitions."""
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def extra(
    *, roles: Iterable[Role] | None = None, purpose_required: bool = False, case_data: bool = False,
    request_example: Any = None, **more: Any,
) -> dict[str, Any]:
    """A decorator's ``openapi_extra``: what the document cannot derive from the route's dependencies.

    ``roles``: roles checked in the service rather than by ``require_roles``; ``case_data``: the
    admin role is refused (app.access.refuse_admin); ``purpose_required``: ``X-Purpose`` must be sent.
    """
    out: dict[str, Any] = dict(more)
    if roles is not None:
        out["x-required-roles"] = sorted(r.value for r in roles)
    if case_data:
        out["x-case-data"] = True
    if purpose_required:
        out["x-purpose-required"] = True
    if request_example is not None:
        out["requestBody"] = {"content": {"application/json": {"example": request_example}}}
    return out


def install(app: FastAPI) -> None:
    """Serve the derived document instead of FastAPI's (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(
        title=app.title, version=app.version, openapi_version=app.openapi_version, description=app.description,
        routes=app.routes, tags=TAGS, separate_input_output_schemas=app.separate_input_output_schemas,
    )
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM
    schemas["ProblemError"] = ERROR_ITEM
    components["headers"] = copy.deepcopy(HEADERS)
    for name, schema in schemas.items():
        if name not in ("Problem", "ProblemError"):
            _forbid_control(schema, TEXT_NO_CONTROL)
    _standard_codes(schemas)
    routes = {r.operation_id: r for r in iter_route_contexts(app.routes)
              if isinstance(r.original_route, APIRoute) and r.include_in_schema}
    for path, item in spec["paths"].items():
        for operation in item.values():
            _complete(operation, routes[operation["operationId"]], path, schemas)
    return spec


# The referral body: its codes may be an agency's own (`code_system`), checked against the agency's mapping
# on the server; its exact per-caller schema is GET /v1/schemas/referral/{version} (app.standards.publish).
_AGENCY_CODED = "ReferralPost"
# Consent updates name standard codes only: app.referrals.service.update_consent applies the legal-basis rule.
_CONSENT_UPDATE = "ConsentUpdate"


def _standard_codes(schemas: dict[str, Any]) -> None:
    """Vocabulary fields outside the referral body take exactly the vocabulary's codes (`enum`), as the API does."""
    agency_coded = _referenced(schemas, _AGENCY_CODED)
    known = set(vocabularies())
    for name, schema in schemas.items():
        if name in agency_coded:
            continue
        for field, node in schema.get("properties", {}).items():
            if node.get("x-vocabulary") in known:
                publish.standard_codes(schema, field, node["x-vocabulary"])
    if _CONSENT_UPDATE in schemas:
        publish.require_legal_basis(schemas[_CONSENT_UPDATE], ["given"])


def _referenced(schemas: dict[str, Any], root: str) -> set[str]:
    """The component `root` and every component it refers to, however deep."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo += [ref.rsplit("/", 1)[-1] for ref in _refs(schemas[name])]
    return seen


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _complete(operation: dict[str, Any], route: RouteContext, path: str, schemas: dict[str, Any]) -> None:
    calls = set(_calls(route.dependant))
    secured = bool(calls & {current_principal, token_caller})
    roles = _roles(operation, calls, secured)
    codes = _error_codes(operation, route, calls, secured, roles)
    responses = operation["responses"]
    for code in sorted(codes):
        responses[str(code)] = _problem_response(code, responses.get(str(code), {}), path)
    rules = operation.get("x-server-side-rules")
    if rules:
        responses["422"]["description"] += ". Also checked by the service, beyond the schema: " + "; ".join(rules)
    operation_id = operation["operationId"]
    for media in operation.get("requestBody", {}).get("content", {}).values():
        if operation_id in REQUEST_EXAMPLES:
            media.setdefault("example", REQUEST_EXAMPLES[operation_id])
    success = min(responses, key=int)
    for media_type, media in responses[success].get("content", {}).items():
        if (operation_id, media_type) in MEDIA_EXAMPLES:
            media.setdefault("example", MEDIA_EXAMPLES[operation_id, media_type])
        elif operation_id in RESPONSE_EXAMPLES:
            media.setdefault("example", RESPONSE_EXAMPLES[operation_id])
    for code, response in responses.items():
        response.setdefault("headers", {}).update(headers("X-Request-ID", "CaseBridge-Training"))
        response["headers"].update(headers(*SUCCESS_HEADERS.get((operation_id, int(code)), ())))
        if int(code) < 400:
            _example_for(response, schemas)
    if operation_id in LINKS:
        responses[success]["links"] = LINKS[operation_id]
    purpose_required = operation.pop("x-purpose-required", False)
    for parameter in operation.get("parameters", []):
        _forbid_control(parameter["schema"], NO_CONTROL)
        if parameter["in"] == "header" and parameter["name"].lower() == "idempotency-key":
            _pattern(parameter["schema"], IDEMPOTENCY_KEY)
        if purpose_required and parameter["in"] == "header" and parameter["name"].lower() == "x-purpose":
            parameter["required"] = True
            parameter["description"] = ("Why you read this case data: a purpose an agreement in force opens "
                                        "to you (a 400 lists them). Required.")
    for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
        if "schema" in media:
            _forbid_control(media["schema"], NO_CONTROL if "form" in media_type else TEXT_NO_CONTROL)
    if secured:
        operation["security"] = [{SECURITY_SCHEME: []}]
    else:
        operation.pop("security", None)
    operation["description"] = (operation.get("description", "").rstrip() + "\n\n" + _roles_sentence(
        roles, secured, bool(operation.get("x-case-data")))).strip()
    operation["x-required-roles"] = roles


def _roles(operation: dict[str, Any], calls: set[Callable[..., Any]], secured: bool) -> list[str]:
    """The roles admitted: a require_roles dependency, a service-level check declared in the decorator,
    all but admin for case data, any role for other secured operations, none for public ones."""
    if not secured:
        return []
    admitted = set(ALL_ROLES)
    for call in calls:
        if call in ROLE_CHECKS:
            admitted &= ROLE_CHECKS[call]
    if "x-required-roles" in operation:
        admitted &= set(operation["x-required-roles"])
    if operation.get("x-case-data"):
        admitted.discard(Role.admin.value)
    return sorted(admitted)


def _roles_sentence(roles: list[str], secured: bool, case_data: bool) -> str:
    if not secured:
        return "**Roles:** public; no access token."
    if set(roles) == set(ALL_ROLES):
        return "**Roles:** any client with a valid access token."
    listed = ", ".join(f"`{r}`" for r in roles)
    listed = listed if len(roles) == 1 else f"one of {listed}"
    tail = " Which records and fields are returned is decided by the agreements in force." if case_data else ""
    return f"**Roles:** {listed}.{tail}"


def _error_codes(
    operation: dict[str, Any], route: RouteContext, calls: set[Callable[..., Any]], secured: bool, roles: list[str],
) -> set[int]:
    codes = {int(c) for c in operation["responses"] if c.isdigit() and int(c) >= 400}
    dependant = route.dependant
    if secured:
        codes.add(401)
        if set(roles) != set(ALL_ROLES) or operation.get("x-purpose-required"):
            codes.add(403)  # a purpose under an agreement that lapsed is refused with a 403
    if dependant.path_params:
        codes.add(404)
    # app.edges refuses a control character in any header with a 400, and in any path, query string or
    # body with a 422, before routing: every operation can answer both.
    codes |= {400, 422}
    if dependant.body_params:
        codes.add(413)
    if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
        codes.add(409)  # app.idempotency: the key reused for another request, or still in flight
    if secured or calls & {get_session, get_read_session, state_dependency}:
        codes.add(503)
    return codes


def _forbid_control(schema: dict[str, Any], pattern: str) -> None:
    """Give every free string in the schema the pattern that says what app.edges refuses."""
    if schema.get("x-pattern") == "birth-date":
        # app.standards.publish fills in this year; the document must not change daily: any real date,
        # and "not after today" is a server-side rule of the operation.
        del schema["x-pattern"]
        schema["pattern"] = formats.DATE
    if schema.get("type") == "string" and not {"enum", "const", "format"} & set(schema):
        if "pattern" not in schema:
            schema["pattern"] = pattern
        elif not _anchored(schema["pattern"]) and {"pattern": pattern} not in schema.get("allOf", []):
            schema.setdefault("allOf", []).append({"pattern": pattern})
    if isinstance(schema.get("additionalProperties"), dict) and "propertyNames" not in schema:
        schema["propertyNames"] = {"pattern": pattern}
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            _forbid_control(sub, pattern)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            _forbid_control(schema[key], pattern)
    for sub in schema.get("properties", {}).values():
        _forbid_control(sub, pattern)


def _anchored(pattern: str) -> bool:
    # A whole-value pattern (a code, a date, an address) already says which characters it takes.
    return pattern.startswith("^") and pattern.endswith("$")


def _pattern(schema: dict[str, Any], pattern: str) -> None:
    for sub in [schema, *schema.get("anyOf", [])]:
        if sub.get("type") == "string":
            sub["pattern"] = pattern


def _problem_response(code: int, declared: dict[str, Any], path: str) -> dict[str, Any]:
    slug, title = SLUGS.get(code, ("error", "Error"))
    description = declared.get("description") or DEFAULT_DESCRIPTIONS.get(code, "Error")
    if description == "Validation Error":  # FastAPI's default, for the body it never sends
        description = DEFAULT_DESCRIPTIONS[422]
    example: dict[str, Any] = {
        "type": PROBLEM_BASE + slug, "title": title, "status": code,
        "detail": description.split(":")[0].split(";")[0].rstrip(".") + ".",
        "instance": path, "request_id": "4f2c1d0e9b8a47d6a1c3e5f709b2d4c6",
    }
    if code == 422:
        example["errors"] = [{"location": "body", "path": "$.risk_level", "message": "Input should be 'low', "
                              "'medium' or 'high'", "type": "enum"}]
    response_headers = {**declared.get("headers", {}), **headers("X-Request-ID", "CaseBridge-Training")}
    if code == 401:
        response_headers.update(headers("WWW-Authenticate"))
    if code in (429, 503):
        response_headers.update(headers("Retry-After"))
    return {"description": description, "headers": response_headers,
            "content": {PROBLEM_JSON: {"schema": {"$ref": REF}, "example": example}}}


def _example_for(response: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A response example synthesised from its schema, where the decorator gave none."""
    for media in response.get("content", {}).values():
        if "example" in media or "examples" in media or "schema" not in media:
            continue
        value = synthesise(media["schema"], schemas)
        if value is not None:
            media["example"] = value


_FORMATS = {"date-time": "2026-01-15T09:30:00Z", "date": "2009-03-14", "email": "counsellor@school-north.example",
            "uri": "https://casebridge.example/", "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}


def synthesise(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:  # noqa: C901, PLR0911
    """A plausible value for a JSON Schema: its own example, default, first enum member, or built by type."""
    if depth > 24:
        return None
    if "$ref" in schema:
        return synthesise(schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas, depth + 1)
    for key in ("examples",):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    if "example" in schema:
        return schema["example"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return synthesise(options[0], schemas, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        values = {name: synthesise(sub, schemas, depth + 1) for name, sub in schema.get("properties", {}).items()}
        return {name: value for name, value in values.items() if value is not None}
    if kind == "array":
        item = synthesise(schema.get("items", {}), schemas, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "string":
        return _FORMATS.get(schema.get("format", ""), "string" if schema.get("minLength", 1) <= 6 else
                            "x" * int(schema["minLength"]))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    return None
