"""The application factory: routers, error handlers, middleware, lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from anyio import to_thread
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from app import __version__, openapi
from app.agencies.router import router as admin_router
from app.agreements.router import router as agreements_router
from app.agreements.service import reload_and_log
from app.agreements.watcher import PolicyWatcher
from app.audit.checkpoints import Checkpointer
from app.audit.router import router as audit_router
from app.auth.router import router as auth_router
from app.bootstrap import start_service
from app.config import Settings, load_settings
from app.console import install as install_console
from app.crypto.reload import KeyringWatcher
from app.emergency.router import router as emergency_router
from app.erasure.router import router as erasure_router
from app.errors import install_error_handlers
from app.health.router import router as health_router
from app.meetings.clocks import ClockScheduler
from app.meetings.router import router as meetings_router
from app.notes.router import router as notes_router
from app.observability import (
    Metrics,
    RequestContextMiddleware,
    configure_logging,
    log_worker_started,
    log_worker_stopped,
)
from app.partners.router import router as partners_router
from app.referrals.router import router as referrals_router
from app.retention.router import router as legal_holds_router
from app.retention.scheduler import RetentionScheduler
from app.standards.router import router as standards_router
from app.statistics.router import router as statistics_router
from app.training.router import router as training_router
from app.training_network.marks import TrainingMarkMiddleware

DESCRIPTION = """\
CaseBridge shares case referrals and notes between the agencies of a multi-agency
prevention network, under information-sharing agreements enforced on every request,
with an encrypted, tamper-evident record of every disclosure.

Errors are RFC 9457 `application/problem+json` (schema `Problem`: `type`, `title`, `status`,
`detail`, `instance`, `request_id`, plus `errors[]` on 422s). Every response carries `X-Request-ID`.
Lists are pages `{"items": [...], "next_cursor": ...}`.

Authenticate with OAuth 2.0 client credentials: `POST /v1/token` with your `client_id` and
`client_secret`, then send `Authorization: Bearer <access_token>`. Each operation states the roles
it admits (`x-required-roles`); reads of case data state why in `X-Purpose`.
"""
DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"
DOCS_STATIC_URL = "/docs-static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = settings
        configure_logging(active.log_level)
        to_thread.current_default_thread_limiter().total_tokens = active.worker_threads
        # Migrates (dev), refuses a schema this code cannot serve, re-applies erasures, seeds (dev):
        # one process at a time where it matters (app.bootstrap).
        state = start_service(active)
        app.state.cb = state
        reload_and_log(state, "start")
        watcher = PolicyWatcher(state, active.policy_reload_seconds)
        watcher.start()
        checkpointer = Checkpointer(state.sessions, state.audit.signer, active.checkpoint_interval_seconds)
        checkpointer.start()
        keyring_watcher = (KeyringWatcher(state.keyring_file, active.keyring_reload_seconds)
                           if state.keyring_file is not None else None)
        if keyring_watcher is not None:
            keyring_watcher.start()
        scheduler = RetentionScheduler(state, active.retention_interval_seconds)
        scheduler.start()
        clocks = ClockScheduler(state, active.clock_interval_seconds)
        clocks.start()
        log_worker_started(state.settings.resolved_database_url)
        # Everything built so far (settings, policies, indexes, SQLAlchemy's mappers, the app) lives as
        # long as the worker: out of the collector's sight, a full collection no longer walks it.
        # Under load those walks were the disclosure's p99 (143 ms → 42 ms at 32 connections).  No
        # collection first: it costs ~80 ms per start, and the little garbage of a start can wait.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # collectable again: a process that starts apps in turn (the tests) frees each
            log_worker_stopped()
            scheduler.stop()
            clocks.stop()
            if keyring_watcher is not None:
                keyring_watcher.stop()
            checkpointer.stop()
            watcher.stop()
            state.loop_reads.close()
            state.engine.dispose()

    app = FastAPI(
        title="CaseBridge",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,
        redoc_url=None,
        # Off in prod unless CASEBRIDGE_PUBLISH_API_DOCS=true; `casebridge openapi` writes it either way.
        openapi_url="/openapi.json" if settings.should_publish_api_docs else None,
    )
    metrics = Metrics()
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(TrainingMarkMiddleware)  # inside the request context: it reads the caller it left
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics
    )
    routers = (health_router, auth_router, admin_router, standards_router, referrals_router, notes_router,
               agreements_router, audit_router, partners_router, statistics_router, emergency_router,
               erasure_router, legal_holds_router, meetings_router, training_router)
    for router in routers:
        app.include_router(router)
    install_console(app)
    openapi.install(app)
    if settings.should_publish_api_docs:
        _serve_docs(app)
    return app


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc from files packaged with fastapi-offline: the docs work with no internet."""
    app.mount(DOCS_STATIC_URL, StaticFiles(directory=DOCS_STATIC), name="docs-static")
    redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="CaseBridge API", oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{DOCS_STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
            init_oauth={"clientId": "", "usePkceWithAuthorizationCodeGrant": False},
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json", title="CaseBridge API", redoc_js_url=f"{DOCS_STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_STATIC_URL}/favicon.png", with_google_fonts=False,
        )


def _operation_id(route: APIRoute) -> str:
    # Every route names its operation_id explicitly; this is only the fallback.
    return route.operation_id or route.name
