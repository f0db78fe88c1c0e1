"""Liveness, readiness and Prometheus metrics endpoints."""

from __future__ import annotations

import asyncio
import hmac
import threading
from concurrent.futures import Future
from typing import Any
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from app import metrics as app_metrics
from app import migrate
from app.crypto.keyring import KeyringError
from app.db import READ_ONLY
from app.errors import problem
from app.state import State

router = APIRouter(tags=["health"])
# The migrations check: "ok" at head; "ahead-compatible" (also ready) when the database is ahead of
# this code by migrations marked compatible with it (a rolling upgrade, docs/upgrades.md); else
# "behind", "ahead-incompatible" or "unknown".
SCHEMA_CHECK = {"ahead": "ahead-compatible"}
READY = {"database": {"ok"}, "migrations": {"ok", "ahead-compatible"}, "keyring": {"ok"}}


class DatabaseProbe:
    """Runs the readiness query on a daemon thread of its own, one at a time per engine.

    Not the shared worker pool (a flood would queue readiness behind it) and not a new thread
    per call while one is still stuck (a hung database would pile them up): a caller that finds
    a check under way waits for that one.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._running: Future[tuple[str, str]] | None = None

    def start(self) -> Future[tuple[str, str]]:
        with self._lock:
            if self._running is None or self._running.done():
                self._running = Future()
                threading.Thread(target=self._run, args=(self._running,), name="casebridge-readyz",
                                 daemon=True).start()
            return self._running

    def _run(self, result: Future[tuple[str, str]]) -> None:
        try:
            with self._engine.connect() as connection:
                connection.execution_options(**{READ_ONLY: True})  # SQLite: no writer turn, no write lock
                connection.execute(text("SELECT 1"))
            schema = migrate.schema_state(self._engine).status
            result.set_result(("ok", SCHEMA_CHECK.get(schema, schema)))
        except SQLAlchemyError:
            result.set_result(("unreachable", "unknown"))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request, which answers 500
            result.set_exception(exc)


_probes: WeakKeyDictionary[Engine, DatabaseProbe] = WeakKeyDictionary()
_probes_lock = threading.Lock()


def _probe_for(engine: Engine) -> DatabaseProbe:
    with _probes_lock:
        probe = _probes.get(engine)
        if probe is None:
            probe = _probes[engine] = DatabaseProbe(engine)
        return probe


@router.get("/healthz", operation_id="get_health",
    summary="Liveness probe",
    description="Answers 200 while the process runs; touches neither database nor worker pool.",)
async def healthz() -> dict[str, str]:
    # async and nothing to do: answered on the event loop, never queued behind the worker threads.
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="get_readiness",
    summary="Readiness probe",
    description=(
        "200 when the database is reachable, its migrations are at this code's head (or ahead by migrations "
        "marked compatible with it: `ahead-compatible`, a rolling upgrade) and the keyring is loaded; else 503 "
        "with each check's state."
    ),
    responses={503: {"description": "Not ready"}},
)
async def readyz(request: Request, state: State) -> Any:
    # The database is asked on a thread of its own (DatabaseProbe), so a saturated worker pool
    # cannot stall readiness; a database that does not answer in time is reported, not waited on.
    checks: dict[str, str] = {}
    try:
        pending = asyncio.wrap_future(_probe_for(state.engine).start())
        checks["database"], checks["migrations"] = await asyncio.wait_for(
            asyncio.shield(pending), state.settings.readiness_timeout_seconds
        )
    except TimeoutError:
        checks["database"], checks["migrations"] = "timeout", "unknown"
    try:
        checks["keyring"] = "ok" if not state.keyring.missing_kinds() else "incomplete"
    except KeyringError:
        checks["keyring"] = "missing"
    if all(v in READY[k] for k, v in checks.items()):
        return JSONResponse({"status": "ready", "checks": checks})
    failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v not in READY[k])
    return problem(503, "Not ready", f"Not ready ({failing}).", request=request, checks=checks)


@router.get("/metrics", operation_id="get_metrics",
    summary="Prometheus metrics",
    description=(
        "HTTP, disclosure-log, retention, keyring and token metrics and build information in the Prometheus "
        "text format, summed over the server's worker processes. With `CASEBRIDGE_METRICS_TOKEN` set it "
        "needs `Authorization: Bearer <token>`; in prod without one it is 404 (docs/observability.md)."
    ),
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
               401: {"description": "Missing or wrong metrics token"}, 404: {"description": "Off (prod, no token)"}},
            response_class=Response)
async def metrics(request: Request, state: State) -> Response:
    token = state.settings.metrics_token
    if token is None and not state.settings.is_dev:
        return problem(404, "Not Found", "Not Found", request=request)
    if token is not None and not _bearer_matches(request, token.get_secret_value()):
        return problem(401, "Unauthorized", "The metrics token is missing or wrong.", request=request,
                       headers={"WWW-Authenticate": 'Bearer realm="casebridge-metrics"'})
    return Response(app_metrics.scrape(), media_type=CONTENT_TYPE_LATEST)


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
