"""Emergency access rules: who may break the glass, on what, how often, for how long, and its review.

The agreement's `emergency:` section decides (policies/README.md, "Emergency access"): who may
ask is the emergency permit's audience (roles, sectors, relations to the referral, decided by
the engine); this module adds the guardrails that need the database or the request — excluded
statuses, a reason of substance, a daily cap per agency, flagged agencies — and the review
that revokes a grant and flags its agency.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access
from app.agencies.models import Agency
from app.auth.principal import Principal
from app.crypto.aead import DecryptionError
from app.crypto.envelope import DataKey, Envelope
from app.emergency import reasons, repository
from app.emergency.models import AgencyFlag, EmergencyGrant, EmergencyNotice
from app.emergency.schemas import FlagOut, GrantOut
from app.errors import AppError, Conflict, Forbidden, Gone, IntegrityFailure, InvalidInput, NotFound
from app.policy.decision import Decision, Record
from app.policy.engine import decide
from app.policy.matching import audience_failure
from app.policy.model import EmergencyGuardrails
from app.policy.policy_set import PolicySet
from app.policy.vocabulary import EMERGENCY_PURPOSE
from app.referrals.models import Referral
from app.referrals.snapshot import AnyReferral
from app.subjects import service as subjects
from app.subjects.models import Subject

REASON_CONTEXT = "emergency.reason"
FINDING_CONTEXT = "emergency.finding"
DAY = timedelta(hours=24)
ACCESS_NOTICE = "emergency_access"
REVOKED_NOTICE = "emergency_revoked"


class EmergencyRefused(Forbidden):
    """A guardrail of the emergency section refused the request; logged against the person."""

    def __init__(
        self, detail: str, *, slug: str, referral: AnyReferral, decision: Decision | None = None, **extensions: Any,
    ) -> None:
        if decision is not None:
            extensions["rule_ids"] = list(decision.rule_ids)
        super().__init__(detail, slug=slug, **extensions)
        self.owner_agency = referral.referring_agency
        self.subject_id = referral.subject_id
        self.decision = decision


class ReasonRefused(InvalidInput):
    """The reason fails the agreement's reason rule (the problem names the rule, never the text)."""

    def __init__(self, failures: list[reasons.Failure], referral: AnyReferral) -> None:
        first = failures[0]
        super().__init__(
            f"The reason is not one of substance: rule {first.rule} needs {first.message}.",
            rule=first.rule,
            errors=[{"path": "$.reason", "message": f.message, "type": f"reason_{f.rule}"} for f in failures],
        )
        self.owner_agency = referral.referring_agency
        self.subject_id = referral.subject_id


class LimitReached(AppError):
    """The agency received the most grants the agreement allows in 24 hours."""

    status, slug, title = 429, "emergency-limit-reached", "Emergency access limit reached"

    def __init__(self, limit: int, agreement_id: str, retry_after: int, referral: AnyReferral) -> None:
        super().__init__(
            f"Your agency has received {limit} emergency grants under {agreement_id} in the last 24 hours,"
            " the most its emergency section allows (max_per_agency_per_day).",
            headers={"Retry-After": str(retry_after)}, max_per_agency_per_day=limit, agreement=agreement_id,
        )
        self.owner_agency = referral.referring_agency
        self.subject_id = referral.subject_id


@dataclass(frozen=True, slots=True)
class Granted:
    grant: EmergencyGrant
    decision: Decision
    notice: EmergencyNotice


@dataclass(frozen=True, slots=True)
class Reviewed:
    grant: EmergencyGrant
    flag: AgencyFlag | None
    notice: EmergencyNotice | None


def decide_emergency(policies: PolicySet, principal: Principal, referral: AnyReferral, now: datetime) -> Decision:
    """The engine's answer for purpose `emergency`, with the caller's relations including `coordinator`."""
    relations = access.change_relations(policies, principal, referral)
    record = Record("referral", access.referral_attributes(referral))
    return decide(policies, access.caller(principal, relations), EMERGENCY_PURPOSE, record, None, now=now.date())


def active_grant(session: Session, referral_id: str, agency_id: str, now: datetime) -> EmergencyGrant | None:
    """A grant reads may use: neither expired nor revoked."""
    return repository.active_grant(session, referral_id, agency_id, now)


def _who_may_ask(policies: PolicySet, principal: Principal, referral: AnyReferral, now: datetime) -> str:
    """Why the emergency sections of the referral's network do not admit the caller, in words."""
    who = access.caller(principal, access.change_relations(policies, principal, referral))
    reasons_: list[str] = []
    for agreement in policies:
        permit = agreement.emergency
        if permit is None or referral.network_id not in agreement.networks or not agreement.in_force(now.date()):
            continue
        failure = audience_failure(permit.audience, who, empty_matches=False)
        reasons_.append(f"{agreement.id}: {failure}" if failure else f"{agreement.id}: a deny rule applies")
    return "; ".join(reasons_) or "no agreement in force of its network has an emergency section"


def guardrails_of(policies: PolicySet, decision: Decision) -> EmergencyGuardrails:
    agreement = policies.get(decision.agreement_id or "")
    return agreement.emergency_guardrails if agreement is not None else EmergencyGuardrails()


def request_access(
    session: Session, envelope: Envelope, policies: PolicySet, principal: Principal, referral: Referral,
    reason: str, now: datetime,
) -> Granted:
    """Grant the emergency view, or raise the first guardrail that refuses (in the README's order)."""
    access.refuse_admin(principal)
    network = referral.network_id
    if not access.in_force_party(policies, principal.agency_id, network, now.date()):
        raise EmergencyRefused(
            f"Emergency access: your agency is not a party to an agreement in force of network {network!r}.",
            slug="emergency-not-party", referral=referral, network=network,
        )
    decision = decide_emergency(policies, principal, referral, now)
    if not decision.permit or decision.emergency_window is None:
        raise EmergencyRefused(
            f"Emergency access is not for you on this referral: {_who_may_ask(policies, principal, referral, now)}.",
            slug="emergency-not-eligible", referral=referral, decision=decision,
        )
    rules = guardrails_of(policies, decision)
    _check_flag(session, rules, principal, referral)
    if referral.status in rules.excluded_statuses:
        raise EmergencyRefused(
            f"Emergency access is excluded on a referral with status {referral.status!r}"
            f" ({decision.agreement_id} emergency.excluded_statuses).",
            slug="emergency-status-excluded", referral=referral, referral_status=referral.status,
            excluded_statuses=sorted(rules.excluded_statuses),
        )
    failures = reasons.check(reason, rules.reason)
    if failures:
        raise ReasonRefused(failures, referral)
    existing = active_grant(session, referral.id, principal.agency_id, now)
    if existing is not None:
        raise Conflict(
            f"Your agency already holds emergency access to this referral until {existing.expires_at.isoformat()}.",
            slug="emergency-grant-active", grant_id=existing.id,
        )
    _check_limit(session, rules, principal, decision.agreement_id or "", referral, now)
    return _grant(session, envelope, principal, referral, reason, decision, now)


def _check_flag(session: Session, rules: EmergencyGuardrails, principal: Principal, referral: Referral) -> None:
    if not rules.refuse_flagged:
        return
    flag = repository.open_flag(session, principal.agency_id, referral.network_id)
    if flag is not None:
        raise EmergencyRefused(
            "Your agency is flagged: an auditor found one of its emergency grants unjustified. It may not"
            " break the glass in this network until an auditor clears the flag.",
            slug="emergency-agency-flagged", referral=referral, flag_id=flag.id,
        )


def _check_limit(
    session: Session, rules: EmergencyGuardrails, principal: Principal, agreement_id: str, referral: Referral,
    now: datetime,
) -> None:
    # Lock the agency's row so concurrent requests count each other's grants (PostgreSQL).
    session.execute(select(Agency.id).where(Agency.id == principal.agency_id).with_for_update())
    recent = repository.granted_since(session, principal.agency_id, agreement_id, now - DAY)
    limit = rules.max_per_agency_per_day
    if len(recent) >= limit:
        frees_at = recent[len(recent) - limit] + DAY
        retry_after = max(1, int((frees_at - now).total_seconds()) + 1)
        raise LimitReached(limit, agreement_id, retry_after, referral)


def _grant(
    session: Session, envelope: Envelope, principal: Principal, referral: Referral, reason: str,
    decision: Decision, now: datetime,
) -> Granted:
    assert decision.emergency_window is not None
    grant_id = "emg_" + secrets.token_urlsafe(12)
    sealed = _key(session, envelope, referral).seal(reason.encode(), f"{REASON_CONTEXT}:{grant_id}")
    grant = EmergencyGrant(
        id=grant_id, referral_id=referral.id, agency_id=principal.agency_id, client_id=principal.client_id,
        person=principal.act, reason=sealed, agreement_id=decision.agreement_id or "",
        view=decision.view or "", fields=sorted(decision.fields), granted_at=now,
        expires_at=decision.emergency_window.add_to(now), reviewed_at=None,
    )
    session.add(grant)
    session.flush()
    notice = _notice(session, grant, referral, ACCESS_NOTICE, by_agency=principal.agency_id, now=now)
    return Granted(grant, decision, notice)


def _notice(
    session: Session, grant: EmergencyGrant, referral: Referral, kind: str, *, by_agency: str, now: datetime,
) -> EmergencyNotice:
    notice = EmergencyNotice(
        referral_id=referral.id, grant_id=grant.id, kind=kind, agency_id=grant.agency_id, by_agency=by_agency,
        status=referral.status, expires_at=grant.expires_at, at=now,
    )
    session.add(notice)
    session.flush()
    return notice


def _key(session: Session, envelope: Envelope, referral: Referral) -> DataKey:
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None
    return subjects.data_key(envelope, subject)


def _open(
    session: Session, envelope: Envelope, grant: EmergencyGrant, sealed: bytes | None, context: str,
) -> str | None:
    if sealed is None:
        return None
    referral = session.get(Referral, grant.referral_id)
    subject = session.get(Subject, referral.subject_id) if referral else None
    if subject is None:
        return None
    try:
        key = subjects.data_key(envelope, subject)
    except Gone:  # an erased person's text is gone with the key
        return None
    try:
        return key.open(sealed, f"{context}:{grant.id}").decode()
    except DecryptionError:  # a moved or altered ciphertext is a fault, not an absence
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None


def render(
    session: Session, envelope: Envelope, grant: EmergencyGrant, now: datetime, *, with_text: bool,
    flag_id: str | None = None,
) -> GrantOut:
    """A grant as its holder (no free text) or an auditor (reason and finding note) sees it."""
    return GrantOut(
        id=grant.id, referral_id=grant.referral_id, agency_id=grant.agency_id, client_id=grant.client_id,
        person=grant.person, view=grant.view, fields=list(grant.fields), granted_at=grant.granted_at,
        expires_at=grant.expires_at, active=grant.expires_at > now and grant.revoked_at is None,
        reviewed_at=grant.reviewed_at, reviewed_by=grant.reviewed_by, finding=grant.finding,
        revoked_at=grant.revoked_at, revoked_by=grant.revoked_by, flag_id=flag_id,
        reason=_open(session, envelope, grant, grant.reason, REASON_CONTEXT) if with_text else None,
        finding_note=_open(session, envelope, grant, grant.finding_note, FINDING_CONTEXT) if with_text else None,
    )


def list_grants(
    session: Session, networks: Sequence[str], reviewed: bool | None, after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[EmergencyGrant]:
    return repository.grants(session, networks, reviewed, after, limit)


def flags_by_grant(session: Session, grants: Sequence[EmergencyGrant]) -> dict[str, str]:
    return repository.flags_by_grant(session, [g.id for g in grants])


def review(
    session: Session, envelope: Envelope, policies: PolicySet, principal: Principal, grant_id: str, finding: str,
    note: str | None, now: datetime,
) -> Reviewed:
    """Record the finding; `unjustified` revokes the grant at once and flags its agency in the network."""
    grant = session.get(EmergencyGrant, grant_id)
    if grant is None:
        raise NotFound("No such emergency grant.")
    referral = session.get(Referral, grant.referral_id)
    assert referral is not None
    network = referral.network_id
    if not access.in_force_party(policies, principal.agency_id, network, now.date()):
        raise access.ChangeDenied(
            f"Review: your agency is not a party to an agreement in force of network {network!r}.",
            owner_agency=referral.referring_agency, subject_id=referral.subject_id, network=network,
        )
    if grant.reviewed_at is not None:
        raise Conflict("This grant was already reviewed.", slug="already-reviewed")
    grant.reviewed_at, grant.reviewed_by, grant.finding = now, principal.client_id, finding
    if note is not None:
        grant.finding_note = _key(session, envelope, referral).seal(note.encode(), f"{FINDING_CONTEXT}:{grant.id}")
    if finding != "unjustified":
        session.flush()
        return Reviewed(grant, None, None)
    grant.revoked_at, grant.revoked_by = now, principal.client_id
    flag = AgencyFlag(
        id="flg_" + secrets.token_urlsafe(12), agency_id=grant.agency_id, network_id=network, grant_id=grant.id,
        flagged_at=now, flagged_by=principal.client_id,
    )
    session.add(flag)
    session.flush()
    notice = _notice(session, grant, referral, REVOKED_NOTICE, by_agency=principal.agency_id, now=now)
    return Reviewed(grant, flag, notice)


def list_flags(
    session: Session, networks: Sequence[str], active: bool | None, after: tuple[datetime, str] | None, limit: int,
) -> Sequence[AgencyFlag]:
    return repository.flags(session, networks, active, after, limit)


def clear_flag(
    session: Session, policies: PolicySet, principal: Principal, flag_id: str, now: datetime,
) -> AgencyFlag:
    flag = session.get(AgencyFlag, flag_id)
    if flag is None:
        raise NotFound("No such flag.")
    if not access.in_force_party(policies, principal.agency_id, flag.network_id, now.date()):
        raise access.ChangeDenied(
            f"Clearing a flag: your agency is not a party to an agreement in force of network {flag.network_id!r}.",
            network=flag.network_id,
        )
    if flag.cleared_at is not None:
        raise Conflict("This flag was already cleared.", slug="already-cleared")
    flag.cleared_at, flag.cleared_by = now, principal.client_id
    session.flush()
    return flag


def render_flag(flag: AgencyFlag) -> FlagOut:
    return FlagOut(
        id=flag.id, agency_id=flag.agency_id, network_id=flag.network_id, grant_id=flag.grant_id,
        flagged_at=flag.flagged_at, flagged_by=flag.flagged_by, cleared_at=flag.cleared_at,
        cleared_by=flag.cleared_by, active=flag.cleared_at is None,
    )
