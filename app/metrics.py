"""Prometheus metrics: HTTP and domain series, one registry, and what a scrape returns.

With several worker processes (``casebridge serve --workers N``) each process writes its
values to files in ``PROMETHEUS_MULTIPROC_DIR`` (a private directory made per server start,
app.serving) and a scrape, whichever worker answers it, sums every process's files: counters
never go backwards from one scrape to the next. Without that variable (one process, tests)
the values live in this process.

Labels are bounded: routes are templates, agreements are the configured ones, a purpose is
labelled only when an agreement judged it (else ``other``), and nothing names a subject or case.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app import __version__

if TYPE_CHECKING:
    from app.audit.events import AuditEvent

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
disable_created_metrics()  # type: ignore[no-untyped-call] # no *_created series: they double the output and no alert uses them
REGISTRY = CollectorRegistry(auto_describe=True)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

HTTP_REQUESTS = Counter(
    "casebridge_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "casebridge_http_request_duration_seconds", "HTTP request duration", ["method", "route"],
    registry=REGISTRY, buckets=_LATENCY_BUCKETS,
)
DISCLOSURES = Counter(
    "casebridge_disclosures_total", "Disclosure-log entries that permitted a disclosure",
    ["agreement", "purpose"], registry=REGISTRY,
)
DENIALS = Counter(
    "casebridge_denials_total", "Disclosure-log entries that refused a disclosure or request",
    ["agreement", "purpose"], registry=REGISTRY,
)
AUDIT_ENTRIES = Counter(
    "casebridge_audit_entries_total", "Disclosure-log entries appended", ["event_type"], registry=REGISTRY,
)
AUDIT_APPEND_SECONDS = Histogram(
    "casebridge_audit_append_seconds", "Time to append and commit one batch of log entries (group commit)",
    registry=REGISTRY, buckets=_LATENCY_BUCKETS,
)
AUDIT_BATCH_SIZE = Histogram(
    "casebridge_audit_append_batch_size", "Entries per committed batch (group commit)",
    registry=REGISTRY, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
_CHECKPOINT_SIGNED_NAME = "casebridge_audit_checkpoint_timestamp_seconds"
CHECKPOINT_SIGNED = Gauge(
    _CHECKPOINT_SIGNED_NAME, "When the newest signed checkpoint was signed (Unix time)",
    registry=REGISTRY, multiprocess_mode="max",
)
PURGED = Counter(
    "casebridge_retention_purged_total", "Records removed by the retention purge", ["kind"], registry=REGISTRY,
)
ERASURES = Counter("casebridge_erasures_total", "Subjects erased on request", registry=REGISTRY)
KEYRING_RELOADS = Counter(
    "casebridge_keyring_reloads_total", "Keyring file reloads", ["outcome"], registry=REGISTRY,
)
TOKEN_FAILURES = Counter(
    "casebridge_token_failures_total", "Token requests refused", ["reason"], registry=REGISTRY,
)
_TOKEN_REASONS = {400: "invalid_request", 401: "invalid_client", 413: "invalid_request", 422: "invalid_request",
                  429: "rate_limited"}
_NONE = "none"
_OTHER = "other"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)
    if route == "/v1/token" and status >= 400:
        TOKEN_FAILURES.labels(_TOKEN_REASONS.get(status, "error")).inc()


def count_audit_events(events: Iterable[AuditEvent]) -> None:
    """Entries as they are appended (a transaction rolled back after appending still counted them)."""
    for event in events:
        AUDIT_ENTRIES.labels(event.event_type).inc()
        if event.decision is None:
            continue
        agreement = event.agreement_id or _NONE
        # A purpose an agreement judged is one of the configured ones; any other is the caller's text.
        purpose = (event.purpose or _NONE) if event.agreement_id else _OTHER if event.purpose else _NONE
        (DISCLOSURES if event.decision == "permit" else DENIALS).labels(agreement, purpose).inc()


def observe_audit_batch(entries: int, seconds: float) -> None:
    AUDIT_APPEND_SECONDS.observe(seconds)
    AUDIT_BATCH_SIZE.observe(entries)


def checkpoint_signed(signed_at_unix: float) -> None:
    CHECKPOINT_SIGNED.set(signed_at_unix)


def purged(subjects: int, referrals: int, notes: int) -> None:
    for kind, count in (("subject", subjects), ("referral", referrals), ("note", notes)):
        if count:
            PURGED.labels(kind).inc(count)


def erased() -> None:
    ERASURES.inc()


def keyring_reloaded(ok: bool) -> None:
    KEYRING_RELOADS.labels("ok" if ok else "refused").inc()


class _Derived(Collector):
    """Build information, and the checkpoint's age from its timestamp, computed at scrape time."""

    def __init__(self, source: Collector) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("casebridge_build_info", "Build information (value 1)",
                                 labels=["version", "python"])
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
        for family in self.source.collect():
            yield family
            if family.name == _CHECKPOINT_SIGNED_NAME and family.samples:
                signed = max(s.value for s in family.samples)
                if signed > 0:
                    age = GaugeMetricFamily("casebridge_audit_checkpoint_age_seconds",
                                            "Seconds since the newest signed checkpoint was signed")
                    age.add_metric([], max(0.0, time.time() - signed))
                    yield age


def scrape() -> bytes:
    """The exposition text: every worker's values summed when there are several."""
    directory = multiprocess_dir()
    source: Collector = REGISTRY
    if directory:
        source = MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Derived(source))
    return generate_latest(registry)
