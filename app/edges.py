"""Control characters stop at the edge: before routing, any handler, the database or the log.

Why here, in the outermost ASGI middleware (app.observability.RequestContextMiddleware calls
``check_head`` and ``check_body``), and not in a shared constrained string type or a check in
each model: a type protects only the fields that remember to use it, and a route-level hook
only the routers that install it. Every request crosses the middleware, whatever route, model
or content type it reaches later, so a new route cannot forget the rule. PostgreSQL refuses NUL
in text (a 500 before this), the disclosure log refuses control characters in its clear columns
(a 503 before this), and no identifier, code or header we read has a use for them.

What is refused, and answered without touching anything:

- the percent-decoded path, the query string, and form fields (URL-encoded or multipart):
  every C0 control character and DEL (422);
- header values: every C0 control character and DEL (400). RFC 9110 already forbids all of
  them but HTAB; HTAB too is refused except in the few standard headers the service never
  reads and intermediaries write (``_TAB_TOLERATED``);
- JSON (and any other non-form) bodies: a string or key holding a C0 control character other
  than TAB, LF and CR (422). Raw control characters in a JSON string are already invalid JSON,
  so only escapes need finding (``\\u0000``-``\\u001f``, and ``\\b`` and ``\\f``, which
  json.dumps itself writes): one regex over the raw bytes, which counts the backslashes before
  each escape so that ``\\\\u0000`` (a literal backslash, then text) is not taken for a NUL.
  Bodies in UTF-16/32 (json.loads accepts them) are decoded first.

Costs on the hot path: one regex over the decoded path, one over the raw query bytes, one per
header value, and for a body a substring test (plus a regex only when a backslash occurs). The
body is read whole before the app runs, whatever the method or framing (bounded by
``max_body_bytes``; every route reads it whole anyway). Only a refused request pays for
parsing, to say where the character is: the problem's ``errors[]`` names the parameter, header
or JSON path, never the value.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from app.errors import PROBLEM_BASE, PROBLEM_JSON

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
"""Any C0 control character or DEL, in a decoded path, parameter or form field."""
_ENCODED_CONTROL: Final = re.compile(rb"%[01][0-9A-Fa-f]|%7[Ff]|[\x00-\x1f\x7f]")
"""The same, in percent-encoded bytes (a query string, a URL-encoded form), raw or escaped."""
_HEADER_CONTROL: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_CONTROL_OR_TAB: Final = re.compile(rb"[\x00-\x1f\x7f]")
_TAB_TOLERATED: Final = frozenset({b"user-agent", b"referer", b"via", b"forwarded", b"x-forwarded-for", b"cookie"})
"""Standard headers the service never reads, which proxies and browsers fill in: HTAB allowed."""
_JSON_ESCAPE = r"(\\+)(?:[bf]|u00(?:0[0-8BbCcEeFf]|1[0-9A-Fa-f]))"
"""A run of backslashes, then ``b``, ``f`` or ``u00XX`` of a C0 character but TAB, LF, CR: an escape
when the run is odd (``\\\\u0000`` is a literal backslash, then text). It starts with a literal, so
the scan jumps from backslash to backslash (ten times faster than a lookbehind at every byte)."""
_JSON_ESCAPE_BYTES: Final = re.compile(_JSON_ESCAPE.encode())
_JSON_ESCAPE_TEXT: Final = re.compile(_JSON_ESCAPE)
_TEXT_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
"""What a decoded JSON string may not hold: free text keeps its TAB, LF and CR."""
_MAX_ERRORS: Final = 20

NO_CONTROL: Final = "must not contain control characters"
NO_CONTROL_IN_TEXT: Final = "must not contain control characters other than tab, line feed and carriage return"
ERROR_TYPE: Final = "control_character"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused at the edge: 400 for a header, 422 for the path, query or body."""

    status: int
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def detail(self) -> str:
        first = self.errors[0] if self.errors else {"location": "request", "path": "$", "message": NO_CONTROL}
        return f"{first['location']} {first['path']}: {first['message']}; nothing was read or changed."


def _error(location: str, path: str, message: str = NO_CONTROL) -> dict[str, str]:
    return {"location": location, "path": path, "message": message, "type": ERROR_TYPE}


def _name_path(name: str) -> str:
    """`$.name` like the other 422s, or `$` when the name itself holds the character (never echoed)."""
    return "$" if _CONTROL.search(name) else f"$.{name}"


def _refusal(status: int, errors: Iterable[dict[str, str]], location: str) -> Refusal:
    found: list[dict[str, str]] = []
    for error in errors:
        if error not in found:
            found.append(error)
        if len(found) == _MAX_ERRORS:
            break
    return Refusal(status, found or [_error(location, "$")])


# -- the request line and headers -------------------------------------------------------------

def check_head(scope: Scope) -> Refusal | None:
    """Path, query string and headers; None when clean (the usual case, a few regex scans)."""
    path = scope.get("path", "")
    if _CONTROL.search(path):
        return _refusal(422, _path_errors(scope), "path")
    query: bytes = scope.get("query_string", b"")
    if query and _ENCODED_CONTROL.search(query):
        return _refusal(422, _encoded_errors(query, "query"), "query")
    headers = scope.get("headers", [])
    # One scan of every name and value (the usual case); header by header only when it finds one.
    if not _HEADER_CONTROL_OR_TAB.search(b" ".join(itertools.chain.from_iterable(headers))):
        return None
    bad_headers = [name for name, value in headers if _bad_header(name, value)]
    if bad_headers:
        return _refusal(400, (_error("header", _name_path(n.decode("latin-1").lower())) for n in bad_headers),
                        "header")
    return None


def _bad_header(name: bytes, value: bytes) -> bool:
    pattern = _HEADER_CONTROL if name.lower() in _TAB_TOLERATED else _HEADER_CONTROL_OR_TAB
    return bool(pattern.search(value) or _HEADER_CONTROL_OR_TAB.search(name))


def _path_errors(scope: Scope) -> Iterator[dict[str, str]]:
    """Name the path parameters that hold the character, from the route template the path matches."""
    path = scope.get("path", "")
    for template in _templates(getattr(scope.get("app"), "routes", [])):
        match = _compiled(template).match(path)
        if match:
            for name, value in match.groupdict().items():
                if _CONTROL.search(value):
                    yield _error("path", _name_path(name))
            return
    yield _error("path", "$")


def _templates(routes: Iterable[Any]) -> Iterator[str]:
    """Every route's path template, included routers walked (FastAPI wraps them since 0.120)."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from _templates(candidates())
        elif isinstance(getattr(route, "path", None), str) and "{" in route.path:
            yield route.path


@lru_cache(maxsize=512)
def _compiled(template: str) -> re.Pattern[str]:
    return compile_path(template)[0]


def _encoded_errors(raw: bytes, location: str) -> Iterator[dict[str, str]]:
    """The names of the query parameters (or form fields) whose name or value holds the character."""
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
    except ValueError:
        pairs = []
    for name, value in pairs:
        if _CONTROL.search(name) or _CONTROL.search(value):
            yield _error(location, _name_path(name))


# -- the body ---------------------------------------------------------------------------------

def _media_type(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type
    return b""


async def check_body(scope: Scope, body: bytes) -> Refusal | None:
    """Form fields (URL-encoded or multipart) or a JSON body; None when clean."""
    media_type = _media_type(scope)
    if media_type == b"application/x-www-form-urlencoded":
        if not _ENCODED_CONTROL.search(body):
            return None
        return _refusal(422, _encoded_errors(body, "body"), "body")
    if media_type == b"multipart/form-data":
        errors = [e async for e in _multipart_errors(scope, body)]
        return _refusal(422, errors, "body") if errors else None
    return _check_json(body)


async def _multipart_errors(scope: Scope, body: bytes) -> AsyncIterator[dict[str, str]]:
    """Parse the parts (rare: no route takes files) and check every text field and field name."""

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(scope, replay).form() as form:
            for name, value in form.multi_items():
                if _CONTROL.search(name) or (not isinstance(value, UploadFile) and _CONTROL.search(value)):
                    yield _error("body", _name_path(name))
    except Exception:  # noqa: BLE001 - a malformed body is the app's to refuse, with the same parser
        return


def _check_json(body: bytes) -> Refusal | None:
    text: bytes | str = body
    if b"\x00" in body:  # UTF-16 or UTF-32, which json.loads also accepts: scan the decoded text
        try:
            text = body.decode(json.detect_encoding(body))
        except (UnicodeDecodeError, LookupError):
            return None  # not JSON in any encoding: the app refuses it
        if not _escapes_control(_JSON_ESCAPE_TEXT.finditer(text)):
            return None
    elif b"\\" not in body or not _escapes_control(_JSON_ESCAPE_BYTES.finditer(body)):
        return None
    return _refusal(422, _json_errors(text), "body")


def _escapes_control(found: Iterator[re.Match[bytes]] | Iterator[re.Match[str]]) -> bool:
    return any(len(match.group(1)) % 2 for match in found)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as all its pairs, duplicates included (a later key must not hide an earlier one)."""


def _json_errors(text: bytes | str) -> Iterator[dict[str, str]]:
    try:
        document = json.loads(text, object_pairs_hook=_Pairs)
    except ValueError:
        return  # the escape is there; where is unknowable in invalid JSON: `$`
    yield from _walk(document, "$")


def _walk(value: Any, path: str) -> Iterator[dict[str, str]]:
    if isinstance(value, str):
        if _TEXT_CONTROL.search(value):
            yield _error("body", path, NO_CONTROL_IN_TEXT)
    elif isinstance(value, _Pairs):
        for key, item in value:
            if _TEXT_CONTROL.search(key) or _CONTROL.search(key):
                yield _error("body", path, "a key " + NO_CONTROL_IN_TEXT)
            else:
                yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


# -- the answer -------------------------------------------------------------------------------

async def send_refusal(send: Send, scope: Scope, request_id: str, refusal: Refusal) -> None:
    """The RFC 9457 problem, like app.errors.problem renders it (the app is never entered)."""
    header = refusal.status == 400
    body = json.dumps({
        "type": PROBLEM_BASE + ("invalid-header" if header else "validation-error"),
        "title": "Invalid header" if header else "Invalid input",
        "status": refusal.status,
        "detail": refusal.detail,
        "instance": _safe_instance(scope),
        "request_id": request_id,
        "errors": refusal.errors,
    }).encode()
    await send({
        "type": "http.response.start",
        "status": refusal.status,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body})


def _safe_instance(scope: Scope) -> str:
    """The path, with any control character replaced: an instance must not carry one back."""
    return _CONTROL.sub("\ufffd", scope.get("path", ""))


async def read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then whatever the client sends next."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
