"""Liveness, readiness and Prometheus metrics endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import migrate
from app.crypto.keyring import KeyringError
from app.errors import problem
from app.state import State

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="get_health", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="get_readiness",
    summary="Database reachable, migrations at head, keyring loaded",
    responses={503: {"description": "Not ready"}},
)
def readyz(request: Request, state: State) -> Any:
    checks: dict[str, str] = {}
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if migrate.is_at_head(state.engine) else "behind"
    except SQLAlchemyError:
        checks["database"] = "unreachable"
        checks["migrations"] = "unknown"
    try:
        checks["keyring"] = "ok" if not state.keyring.missing_kinds() else "incomplete"
    except KeyringError:
        checks["keyring"] = "missing"
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    return problem(503, "Not ready", f"Not ready ({failing}).", request=request, checks=checks)


@router.get("/metrics", operation_id="get_metrics", summary="Prometheus metrics",
            response_class=Response)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
