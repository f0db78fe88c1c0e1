"""Every read and change of case data leaves its disclosure-log entry here, before anything leaves."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request

from app.access import Grant
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
from app.errors import AppError
from app.policy.decision import Decision
from app.state import AppState


@dataclass(frozen=True, slots=True)
class ReadContext:
    """Who asked, why, and under which request: the same for every record of one read."""

    principal: Principal
    purpose: str
    justification: str | None
    request_id: str | None

    def details(self, **extra: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "client_id": self.principal.client_id,
            "on_behalf_of": self.principal.act,
            "justification": self.justification,
            "request_id": self.request_id,
        }
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}


def decision_details(decision: Decision) -> dict[str, Any]:
    return {
        "rule_ids": list(decision.rule_ids),
        "view": decision.view,
        "agreement_version": decision.agreement_version,
        "agreement_hash": decision.agreement_hash,
        "legal_basis": decision.legal_basis,
        "special_category_condition": decision.special_category_condition,
        "retention": None if decision.retention is None else str(decision.retention),
    }


def read_event(
    ctx: ReadContext, grant: Grant, *, owner_agency: str, subject_id: str | None,
    record_ids: Mapping[str, Any], fields: Iterable[str], event_type: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> AuditEvent:
    decision = grant.decision
    return AuditEvent(
        event_type=event_type or grant.kind,
        actor_agency=owner_agency,
        recipient_agency=ctx.principal.agency_id,
        purpose=ctx.purpose,
        decision="permit",
        agreement_id=decision.agreement_id,
        rule_id=decision.rule_ids[0] if decision.rule_ids else None,
        subject_id=subject_id,
        details=ctx.details(
            record_ids=dict(record_ids), fields=sorted(fields), **decision_details(decision), **(extra or {})
        ),
    )


def paths_of(document: Mapping[str, Any]) -> set[str]:
    """The field paths a rendered referral carries (names only, for the log)."""
    found = {k for k in document if k != "subject"}
    subject = document.get("subject")
    if isinstance(subject, Mapping):
        found |= {f"subject.{k}" for k in subject}
    return found


def log_reads(state: AppState, session: Session, events: list[AuditEvent]) -> None:
    """Durable before this returns or, in a writing session, with the request's commit.

    A writing session appends in its own transaction, which commits before the response
    leaves (app.state.DbSession).  A read-only session ends its snapshot and the entries are
    committed now, with concurrent requests' entries (group commit).  Either way: fail closed.
    """
    state.audit.record_many(session, events, now=state.clock())


def commit_reads(state: AppState, events: list[AuditEvent]) -> None:
    """``log_reads`` for a thread that holds no transaction: durable on return, group-committed."""
    state.audit.commit(state.engine, events, now=state.clock())


async def log_reads_async(state: AppState, events: list[AuditEvent]) -> None:
    """``log_reads`` for a handler on the event loop, which holds no transaction: durable on return."""
    await state.audit.commit_async(state.engine, events, now=state.clock())


def denial_event(
    ctx: ReadContext, *, reason: str, decision: Decision | None, owner_agency: str | None,
    subject_id: str | None, record_ids: Mapping[str, Any],
) -> AuditEvent:
    details = ctx.details(record_ids=dict(record_ids), reason=reason,
                          **(decision_details(decision) if decision else {}))
    return AuditEvent(
        event_type=EventType.denial.value,
        actor_agency=owner_agency,
        recipient_agency=ctx.principal.agency_id,
        purpose=ctx.purpose or None,
        decision="deny",
        agreement_id=decision.agreement_id if decision else None,
        rule_id=decision.rule_ids[0] if decision and decision.rule_ids else None,
        subject_id=subject_id,
        details=details,
    )


def change_event(
    principal: Principal, event_type: EventType, *, subject_id: str | None, record_ids: Mapping[str, Any],
    request_id: str | None, recipient_agency: str | None = None, **extra: Any,
) -> AuditEvent:
    details = {"client_id": principal.client_id, "on_behalf_of": principal.act, "request_id": request_id,
               "record_ids": dict(record_ids), **extra}
    return AuditEvent(
        event_type=event_type.value,
        actor_agency=principal.agency_id,
        recipient_agency=recipient_agency,
        purpose=None,
        decision=None,
        agreement_id=None,
        rule_id=None,
        subject_id=subject_id,
        details={k: v for k, v in details.items() if v is not None},
    )


REFUSALS = frozenset({"access-denied", "purpose-required", "purpose-unknown", "unknown-view",
                      "agreement-expired", "agreement-not-yet-effective",
                      "admin-no-case-data", "transition-forbidden", "dimension-not-allowed",
                      "dimensions-invalid", "dimensions-required"})


class denials_logged:  # noqa: N801 - used as a context manager, reads like a phrase
    """Log any refusal raised inside the block as a denial, then let it propagate."""

    def __init__(
        self, state: AppState, session: Session | None, ctx: ReadContext, record_ids: Mapping[str, Any], *,
        extra_refusals: bool = False,
    ) -> None:
        self.state, self.session, self.ctx, self.record_ids = state, session, ctx, record_ids
        # Attempts that break a rule's form (e.g. emergency access without a reason) count too,
        # as do every 403 and 429 (an emergency guardrail: status, flag, daily cap) raised inside.
        self.refusals = REFUSALS | ({"validation-error", "emergency-grant-active"} if extra_refusals else set())
        self.refused_statuses = frozenset({403, 429}) if extra_refusals else frozenset()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        event = self._denial(exc)
        if event is not None:
            if self.session is None:
                log_refusal(self.state, event)
                return
            self.session.rollback()
            self.state.audit.record(self.session, event, now=self.state.clock())

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        """The same for a handler on the event loop (its snapshot, if any, ends first)."""
        event = self._denial(exc)
        if event is not None:
            if self.session is not None:
                self.session.rollback()
            await log_reads_async(self.state, [event])

    def _denial(self, exc: BaseException | None) -> AuditEvent | None:
        from app.errors import AppError

        if not isinstance(exc, AppError) or (
            exc.slug not in self.refusals and exc.status not in self.refused_statuses
        ):
            return None
        exc.denial_logged = True
        decision = getattr(exc, "decision", None)
        return denial_event(
            self.ctx, reason=exc.detail,
            decision=decision if isinstance(decision, Decision) else None,
            owner_agency=getattr(exc, "owner_agency", None),
            subject_id=getattr(exc, "subject_id", None),
            record_ids=self.record_ids,
        )


# -- every other refusal -------------------------------------------------------------------

_SAFE_PURPOSE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def is_refusal(exc: AppError) -> bool:
    """A 403 of any kind, or a 400 that refuses a read (no purpose, not open, unknown view ...)."""
    return exc.status == 403 or exc.slug in REFUSALS


def refusal_event(request: Request, exc: AppError) -> AuditEvent | None:
    """The denial entry for a refusal that no handler logged itself; None without a caller."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or getattr(exc, "denial_logged", False):
        return None
    route = request.scope.get("route")
    # Path parameters name records (ids); anything else a caller typed is left out of the log.
    record_ids = {k: v for k, v in request.path_params.items() if isinstance(v, str) and _SAFE_VALUE.match(v)}
    purpose = request.headers.get("X-Purpose")
    decision = getattr(exc, "decision", None)
    details = {
        "client_id": principal.client_id,
        "on_behalf_of": principal.act,
        "request_id": getattr(request.state, "request_id", None),
        "reason": exc.detail,
        "refusal": exc.slug,
        "status": exc.status,
        "operation": f"{request.method} {getattr(route, 'path', '?')}",
        "record_ids": record_ids,
        **(decision_details(decision) if isinstance(decision, Decision) else {}),
    }
    return AuditEvent(
        event_type=EventType.denial.value,
        actor_agency=getattr(exc, "owner_agency", None),
        recipient_agency=principal.agency_id,
        purpose=purpose if purpose and _SAFE_PURPOSE.match(purpose) else None,
        decision="deny",
        agreement_id=decision.agreement_id if isinstance(decision, Decision) else None,
        rule_id=decision.rule_ids[0] if isinstance(decision, Decision) and decision.rule_ids else None,
        subject_id=getattr(exc, "subject_id", None),
        details={k: v for k, v in details.items() if v is not None},
    )


def log_refusal(state: AppState, event: AuditEvent) -> None:
    """Commit a refusal's entry in a unit of work of its own (the request's was rolled back)."""
    with state.sessions() as session:
        state.audit.record(session, event, now=state.clock())
