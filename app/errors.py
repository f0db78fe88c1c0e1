"""One error family for the whole service, rendered as RFC 9457 problem details."""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://casebridge.example/problems/"
log = logging.getLogger("casebridge.errors")


class AppError(Exception):
    """A domain error with an HTTP status; services raise it, one handler renders it."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        slug: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.denial_logged = False  # set once a refusal's denial entry is written (app.disclose)
        if slug is not None:
            self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "Missing or invalid credentials.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="casebridge"'})
        super().__init__(detail, **kw)


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(AppError):
    status, slug, title = 410, "gone", "Gone"


class PreconditionFailed(AppError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PreconditionRequired(AppError):
    status, slug, title = 428, "precondition-required", "Precondition required"


class TooManyRequests(AppError):
    """Over a rate limit; ``Retry-After`` (whole seconds) says when a retry can succeed."""

    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        headers = {**(kw.pop("headers", None) or {}), "Retry-After": str(max(1, retry_after))}
        super().__init__(detail, headers=headers, **kw)


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class InvalidInput(AppError):
    status, slug, title = 422, "validation-error", "Invalid input"


class IntegrityFailure(AppError):
    """Stored ciphertext failed authentication: tampered, moved, or its key is gone."""

    status, slug, title = 500, "integrity-failure", "Stored data failed its integrity check"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or _slug_for(status)),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _slug_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-")
    except ValueError:
        return "error"


def _json_path(loc: tuple[Any, ...]) -> str:
    path = "$"
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        item = {
            "location": loc[0] if loc and loc[0] in ("body", "query", "path", "header") else "body",
            "path": _json_path(loc),
            "message": err.get("msg", "invalid"),
            "type": err.get("type", "value_error"),
        }
        ctx = err.get("ctx") or {}
        if "valid_codes" in ctx:
            item["valid_codes"] = ctx["valid_codes"]
        out.append(item)
    return out


async def _log_refusal(request: Request, exc: AppError) -> None:
    """Every refusal, on every endpoint, leaves a denial in the disclosure log (here, once)."""
    from starlette.concurrency import run_in_threadpool

    from app import disclose

    if not disclose.is_refusal(exc):
        return
    event = disclose.refusal_event(request, exc)
    state = getattr(request.app.state, "cb", None)
    if event is None or state is None:
        return
    try:
        await run_in_threadpool(disclose.log_refusal, state, event)
    except Exception as failure:  # noqa: BLE001 - the refusal stands; the operator is told
        log.error("a refusal could not be logged", extra={"error_type": type(failure).__name__})


def _allowed_methods(request: Request) -> str:
    """Every method of every route on the path: Starlette's 405 names only the first route's (RFC 9110 §15.5.6)."""
    from fastapi.routing import iter_route_contexts

    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(request.url.path):
            methods |= set(route_methods)
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        await _log_refusal(request, exc)
        return problem(
            exc.status, exc.title, exc.detail, slug=exc.slug, request=request,
            headers=exc.headers or None, **exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        first = errors[0] if errors else {"path": "$", "message": "invalid"}
        return problem(
            422, "Invalid input", f"{first['path']}: {first['message']}",
            slug="validation-error", request=request, errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return problem(
            exc.status_code, HTTPStatus(exc.status_code).phrase, detail, request=request, headers=headers,
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
        # A locked or unreachable database, or an exhausted pool: transient, and nothing was sent.
        log.warning("database unavailable", extra={"error_type": type(exc).__name__})
        return problem(503, "Service unavailable", "The database is busy or unreachable; nothing was "
                       "disclosed or changed. Retry shortly.", slug="database-unavailable", request=request,
                       headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never echo the exception text: it may hold case data or secrets.
        log.error(
            "unhandled error",
            extra={"error_type": type(exc).__name__, "trace": traceback.format_tb(exc.__traceback__)},
        )
        # Answered outside the request middleware (Starlette's ServerErrorMiddleware): name the request here.
        request_id = getattr(request.state, "request_id", None)
        return problem(500, "Internal server error", "The request failed; nothing was disclosed.",
                       request=request, headers={"X-Request-ID": request_id} if request_id else None)
