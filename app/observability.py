"""Request ids, body limits, control characters refused, one JSON log line per request, and metrics."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import edges
from app.errors import PROBLEM_JSON

log = logging.getLogger("casebridge.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; only what callers put in `extra`, never exception text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("casebridge")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "casebridge_http_requests_total", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "casebridge_http_request_duration_seconds", "HTTP request duration", ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )


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
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
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
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(elapsed)
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


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.match(candidate) else None
    return None


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
