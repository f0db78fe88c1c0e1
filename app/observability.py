"""Request ids, trace context, body limits, control characters refused, JSON logs, and metrics."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
import threading
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__, edges, metrics
from app.errors import PROBLEM_JSON

SERVICE = "casebridge"
log = logging.getLogger("casebridge.access")
lifecycle_log = logging.getLogger("casebridge.lifecycle")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# W3C Trace Context: version-traceid-parentid-flags, lowercase hex; version ff is invalid.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str  # this server's span for the request
    flags: str

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


_draining = threading.Event()
_request_id: ContextVar[str | None] = ContextVar("casebridge_request_id", default=None)
_trace: ContextVar[TraceContext | None] = ContextVar("casebridge_trace", default=None)


def start_draining() -> None:
    """From now on every response closes its connection (app.serving, on SIGTERM)."""
    _draining.set()


def current_request_id() -> str | None:
    """The id of the request being handled here (None outside a request)."""
    return _request_id.get()


def trace_context(header: str | None) -> TraceContext:
    """The incoming trace continued with a new span, or a new trace if the header is absent or invalid."""
    if header is not None:
        match = _TRACEPARENT.match(header.strip())
        if match is not None:
            version, trace_id, parent_id, flags, rest = match.groups()
            valid = (version != "ff" and (version != "00" or rest is None)
                     and trace_id != "0" * 32 and parent_id != "0" * 16)
            if valid:
                return TraceContext(trace_id, secrets.token_hex(8), flags)
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8), "00")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; only what callers put in `extra`, never exception text.

    Every line carries an RFC 3339 UTC time in milliseconds, the service and its version, and,
    while a request is handled, its request id and trace id (context variables).
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname.lower(),
            "service": SERVICE,
            "version": __version__,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id, trace = _request_id.get(), _trace.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if trace is not None:
            entry["trace_id"], entry["span_id"] = trace.trace_id, trace.span_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for our loggers and the server's (uvicorn's, which never logs a request)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("casebridge", "uvicorn"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def log_worker_started(database_url: str) -> None:
    lifecycle_log.info("worker started", extra={"pid": os.getpid(), "database": database_kind(database_url)})


def log_worker_stopped() -> None:
    lifecycle_log.info("worker stopped", extra={"pid": os.getpid()})


def database_kind(url: str) -> str:
    """``sqlite`` or ``postgresql``: the URL's backend, never its host, user or password."""
    return url.split(":", 1)[0].split("+", 1)[0]


class Metrics:
    """The HTTP series (app.metrics holds them, shared by every app in the process)."""

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        metrics.observe_request(method, route, status, seconds)


class BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    """Outermost layer: request id, size limit, control characters (app.edges), timing, access log, metrics."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        trace = trace_context(_header(scope, b"traceparent"))
        # Set, not reset: each request runs in a task of its own, and the unhandled-error line
        # (app.errors, logged outside this middleware) must still carry them.
        _request_id.set(request_id)
        _trace.set(trace)
        status = 500
        response_started = False
        overflow = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if overflow:
                # The app answered a body it could not read; answer 413 instead, once.
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    status = 413
                    await _send_problem(send, scope, request_id, self.max_body_bytes)
                return
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"x-request-id", b"traceparent")]
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"traceparent", trace.traceparent.encode()))
                if _draining.is_set():
                    headers = [(k, v) for k, v in headers if k.lower() != b"connection"]
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received, overflow
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    overflow = True
                    raise BodyTooLarge
            return message

        try:
            if _declared_length(scope) > self.max_body_bytes:
                overflow = True
                await send_wrapper({"type": "http.response.start", "status": 413})
            elif not await self._checked(scope, receive_wrapper, send_wrapper, request_id):
                status = 499  # the client closed the connection before its body arrived
        except BodyTooLarge:
            await send_wrapper({"type": "http.response.start", "status": 413})
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            self.metrics.observe(method, route, status, elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "request_id": request_id,
                    "client_id": scope["state"].get("client_id"),
                },
            )

    async def _checked(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> bool:
        """Refuse control characters (app.edges) before the app sees the request; else run it.

        The body is read whole here, whatever the method or framing (a request without one reads
        as empty at once), within the size limit ``receive`` enforces, and handed to the app as it
        came.  False: the client went away first.
        """
        refusal = edges.check_head(scope)
        if refusal is None:
            body = await edges.read_body(receive)
            if body is None:
                return False
            refusal = await edges.check_body(scope, body)
            receive = edges.replaying(body, receive)
        if refusal is not None:
            await edges.send_refusal(send, scope, request_id, refusal)
        else:
            await self.app(scope, receive, send)
        return True


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    candidate = _header(scope, b"x-request-id")
    return candidate if candidate is not None and _REQUEST_ID.match(candidate) else None


def _declared_length(scope: Scope) -> int:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths are not logged verbatim: they may carry identifiers.
    return str(path) if path else "<unmatched>"


async def _send_problem(send: Send, scope: Scope, request_id: str, limit: int) -> None:
    body = json.dumps({
        "type": "https://casebridge.example/problems/payload-too-large",
        "title": "Payload too large",
        "status": 413,
        "detail": f"The request body exceeds {limit} bytes.",
        "instance": scope.get("path", ""),
        "request_id": request_id,
    }).encode()
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})
