"""Every read and change of case data leaves its disclosure-log entry here, before anything leaves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.access import Grant
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
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


async def log_reads_async(state: AppState, session: Session, events: list[AuditEvent]) -> None:
    """``log_reads`` for a handler on the event loop with a read-only session: durable on return."""
    await state.audit.record_many_async(session, events, now=state.clock())


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
    request_id: str | None, **extra: Any,
) -> AuditEvent:
    details = {"client_id": principal.client_id, "on_behalf_of": principal.act, "request_id": request_id,
               "record_ids": dict(record_ids), **extra}
    return AuditEvent(
        event_type=event_type.value,
        actor_agency=principal.agency_id,
        recipient_agency=None,
        purpose=None,
        decision=None,
        agreement_id=None,
        rule_id=None,
        subject_id=subject_id,
        details={k: v for k, v in details.items() if v is not None},
    )


REFUSALS = frozenset({"access-denied", "purpose-required", "purpose-unknown", "unknown-view",
                      "admin-no-case-data", "transition-forbidden", "dimension-not-allowed",
                      "dimensions-invalid", "dimensions-required"})


class denials_logged:  # noqa: N801 - used as a context manager, reads like a phrase
    """Log any refusal raised inside the block as a denial, then let it propagate."""

    def __init__(
        self, state: AppState, session: Session, ctx: ReadContext, record_ids: Mapping[str, Any], *,
        extra_refusals: bool = False,
    ) -> None:
        self.state, self.session, self.ctx, self.record_ids = state, session, ctx, record_ids
        # Attempts that break a rule's form (e.g. emergency access without a reason) count too.
        self.refusals = REFUSALS | ({"validation-error", "emergency-grant-active"} if extra_refusals else set())

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        event = self._denial(exc)
        if event is not None:
            self.session.rollback()
            self.state.audit.record(self.session, event, now=self.state.clock())

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        """The same for a handler on the event loop with a read-only session."""
        event = self._denial(exc)
        if event is not None:
            self.session.rollback()
            await self.state.audit.record_many_async(self.session, [event], now=self.state.clock())

    def _denial(self, exc: BaseException | None) -> AuditEvent | None:
        from app.access import AccessDenied
        from app.errors import AppError

        if not isinstance(exc, AppError) or exc.slug not in self.refusals:
            return None
        denied = exc if isinstance(exc, AccessDenied) else None
        return denial_event(
            self.ctx, reason=exc.detail,
            decision=denied.decision if denied else None,
            owner_agency=denied.owner_agency if denied else None,
            subject_id=denied.subject_id if denied else None,
            record_ids=self.record_ids,
        )
