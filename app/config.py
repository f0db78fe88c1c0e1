"""Settings from the environment (prefix CASEBRIDGE_), failing closed in production."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.shipped import shipped

PLACEHOLDERS = frozenset({"", "changeme", "change-me", "changethis", "secret", "placeholder", "xxx"})
REPO_ROOT = Path(__file__).resolve().parent.parent
# Where prod looks for agreements unless CASEBRIDGE_POLICIES_DIR says otherwise: the image ships it
# empty, so a production service loads only the agreements its operators put there (never the demo).
PROD_POLICIES_DIR = Path("/etc/casebridge/policies")


class Environment(StrEnum):
    dev = "dev"
    prod = "prod"


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says why and how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEBRIDGE_", extra="ignore")

    env: Environment = Environment.dev
    data_dir: Path = Path("var")
    database_url: str | None = None
    keyring_path: Path | None = None
    # A passphrase-free keyring file is the default; in production the path comes from the
    # secret store's mount. The environment may instead hold the whole keyring (JSON).
    keyring_json: SecretStr | None = None
    # dev: the shipped demo agreements; prod: PROD_POLICIES_DIR (see _policies_dir_by_env).
    policies_dir: Path = shipped("policies")
    # /docs, /redoc, /docs-static and /openapi.json: served in dev, off (404) in prod unless true.
    publish_api_docs: bool | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    issuer: str = "casebridge"
    audience: str = "casebridge-api"
    token_ttl_seconds: Annotated[int, Field(ge=60, le=86_400)] = 900
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    # POST /v1/token rate limits (app/auth/ratelimit.py): token buckets in each process's memory,
    # so with N worker processes the effective limit is N times these. An attempt is charged up
    # front and given back when a token is issued: only failed attempts use up the allowance.
    # Per client id (known or not): a client that fails 5 times in a row waits ~6 s per retry;
    # a caller cannot guess a 256-bit secret at any rate, so this bounds work, not luck. 0: off.
    token_client_per_minute: Annotated[float, Field(ge=0, le=100_000)] = 10.0
    token_client_burst: Annotated[int, Field(ge=1, le=100_000)] = 5
    # Per client address (the ASGI client host: behind a reverse proxy, run uvicorn with
    # --proxy-headers --forwarded-allow-ips=<proxy>, or every caller shares the proxy's bucket).
    # Higher than per client: several clients of one agency may share an address (NAT). 0: off.
    token_address_per_minute: Annotated[float, Field(ge=0, le=100_000)] = 30.0
    token_address_burst: Annotated[int, Field(ge=1, le=100_000)] = 15
    # Buckets held per limit before idle (full) ones, then the least recently used, are dropped:
    # bounds the memory a flood of made-up client ids can take (~200 bytes a bucket).
    token_limit_max_keys: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000
    # /readyz gives up on the database after this long (it answers 503, and never waits for the
    # request worker threads: its query runs on a thread of its own).
    readiness_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    auto_migrate: bool | None = None
    seed_demo: bool | None = None
    log_level: str = "INFO"
    # /metrics: with a token set, scrapes send `Authorization: Bearer <token>`; in prod without
    # one, /metrics answers 404 (docs/observability.md).
    metrics_token: SecretStr | None = None
    # On SIGTERM, how long in-flight requests and kept-alive connections get to finish before
    # the workers stop anyway (docs/observability.md).
    shutdown_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 20.0
    # How often each process looks for changed agreements in policies_dir (0: never).
    policy_reload_seconds: Annotated[float, Field(ge=0)] = 5.0
    # The disclosure log's name in its signed checkpoints (also the checkpoint key name).
    audit_origin: Annotated[str, Field(pattern=r"^[!-*,-~]{1,200}$")] = "casebridge.example/disclosure-log"
    # Sign a checkpoint this often while entries arrive (0: only on demand).
    checkpoint_interval_seconds: Annotated[float, Field(ge=0, le=3600)] = 1.0
    # Retention: how long a referral that never closes may be kept (ISO 8601, from creation).
    max_open_retention: str = "P10Y"
    # How often the purge runs (one process at a time across the deployment; 0: never).
    retention_interval_seconds: Annotated[float, Field(ge=0)] = 86_400.0
    # How often the network clocks raise what is due into the change feed (app/meetings/clocks.py;
    # one process at a time; 0: never, `casebridge clocks run` still does).
    clock_interval_seconds: Annotated[float, Field(ge=0)] = 3_600.0
    retention_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    # Append-only record of every erased or purged id, kept OUTSIDE the database so a restored
    # backup cannot bring anyone back; default <data_dir>/erasures.log. Put it on durable storage.
    erasure_ledger_path: Path | None = None
    # How often each process looks for a changed keyring file (0: only when a key id is unknown).
    keyring_reload_seconds: Annotated[float, Field(ge=0)] = 5.0
    # Worker threads per process for blocking work (request handlers, database); each may hold
    # one pooled connection, so the pools are sized from it.
    worker_threads: Annotated[int, Field(ge=1, le=256)] = 8
    # SQLite: how long a write waits for its turn (another process may be writing) before the
    # request answers 503 with Retry-After, having written nothing.
    sqlite_writer_wait_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    # The console (app/console, docs/console.md): sessions end after this long without a request, and
    # in any case this long after sign-in.
    console_idle_minutes: Annotated[int, Field(ge=1, le=1440)] = 30
    console_absolute_hours: Annotated[int, Field(ge=1, le=168)] = 10
    # Sign-in rate limits, per person id and per address, as POST /v1/token's (failures only).
    console_sign_in_per_minute: Annotated[float, Field(ge=0, le=100_000)] = 10.0
    console_sign_in_burst: Annotated[int, Field(ge=1, le=100_000)] = 10
    # Sign-in through the city's identity provider (OpenID Connect, authorization code + PKCE): the
    # issuer (its /.well-known/openid-configuration is read), this service's client id and secret
    # there, and the claims naming the agency and the roles (docs/console.md). Unset: passwords only.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_agency_claim: str = "agency"
    oidc_roles_claim: str = "roles"
    # Where the identity provider sends the browser back; default: this request's own origin.
    oidc_redirect_base: str | None = None
    # Benchmarks only (bench/load.py): GET /v1/referrals/{id} with `X-Bench-Bare: 1` skips purpose,
    # policy and the disclosure log, to measure what they cost. Refused in prod.
    bench_bare_reads: bool = False

    @field_validator("max_open_retention")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        from app.policy.duration import parse_duration

        if parse_duration(value).is_zero:
            raise ValueError("max_open_retention must be longer than zero")
        return value

    @model_validator(mode="before")
    @classmethod
    def _policies_dir_by_env(cls, data: Any) -> Any:
        """prod never falls back to the shipped demo agreements: its default is PROD_POLICIES_DIR."""
        if isinstance(data, dict) and not data.get("policies_dir") and str(data.get("env", "")) == "prod":
            return {**data, "policies_dir": PROD_POLICIES_DIR}
        return data

    @model_validator(mode="after")
    def _fail_closed_in_prod(self) -> Settings:
        if self.env is Environment.prod:
            problems = []
            if not self.database_url:
                problems.append("CASEBRIDGE_DATABASE_URL must be set explicitly")
            elif any(p in self.database_url.lower() for p in ("changeme", "change-me", "changethis", "placeholder")):
                problems.append("CASEBRIDGE_DATABASE_URL contains a placeholder")
            if self.keyring_path is None and self.keyring_json is None:
                problems.append("CASEBRIDGE_KEYRING_PATH (or CASEBRIDGE_KEYRING_JSON) must be set explicitly")
            if self.keyring_json is not None and self.keyring_json.get_secret_value().strip().lower() in PLACEHOLDERS:
                problems.append("CASEBRIDGE_KEYRING_JSON is a placeholder")
            if self.metrics_token is not None and len(self.metrics_token.get_secret_value().strip()) < 16:
                problems.append("CASEBRIDGE_METRICS_TOKEN must be at least 16 characters (a random value)")
            if self.seed_demo:
                problems.append("CASEBRIDGE_SEED_DEMO cannot be enabled in prod")
            if self.bench_bare_reads:
                problems.append("CASEBRIDGE_BENCH_BARE_READS cannot be enabled in prod")
            if problems:
                raise ConfigError("refusing to start in prod: " + "; ".join(problems))
        return self

    @property
    def is_dev(self) -> bool:
        return self.env is Environment.dev

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'casebridge.db').resolve()}"

    @cached_property
    def resolved_keyring_path(self) -> Path:
        return self.keyring_path or self.data_dir / "keyring.json"

    @cached_property
    def resolved_erasure_ledger_path(self) -> Path:
        return self.erasure_ledger_path or self.data_dir / "erasures.log"

    @property
    def should_migrate(self) -> bool:
        return self.is_dev if self.auto_migrate is None else self.auto_migrate

    @property
    def should_seed_demo(self) -> bool:
        return self.is_dev if self.seed_demo is None else self.seed_demo

    @property
    def should_publish_api_docs(self) -> bool:
        return self.is_dev if self.publish_api_docs is None else self.publish_api_docs


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (tests, CLI flags)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ConfigError:
        raise
    except ValueError as exc:
        if isinstance(exc.__cause__, ConfigError):
            raise exc.__cause__ from None
        cause = _config_error_in(exc)
        if cause is not None:
            raise cause from None
        raise ConfigError(f"invalid settings: {exc}") from None


def _config_error_in(exc: ValueError) -> ConfigError | None:
    for err in getattr(exc, "errors", lambda: [])():
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, ConfigError):
            return inner
    return None
