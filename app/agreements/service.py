"""Agreement listing, explanations and reloads, without HTTP."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app import access
from app.agreements.schemas import AgreementOut, ExplainIn, NetworkOut, ReloadOut
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
from app.bootstrap import load_policies
from app.db import transaction
from app.errors import Forbidden
from app.policy.decision import AttributeValue, Record, described_record, flag_value
from app.policy.explain import Explanation, explain
from app.policy.loader import LoadResult
from app.policy.policy_set import PolicySet
from app.referrals import service as referrals
from app.state import AppState


def in_force(policies: PolicySet, today: date) -> list[AgreementOut]:
    return [
        AgreementOut(
            id=a.id, version=a.version, title=a.title, content_hash=a.content_hash,
            effective_from=a.effective_from, review_by=a.review_by,
            in_force=a.effective_from <= today < a.review_by,
            controller_contact=a.controller_contact, parties=list(a.parties), purposes=dict(a.purposes),
            networks=sorted(a.networks),
        )
        for a in policies
    ]


def networks(policies: PolicySet) -> list[NetworkOut]:
    return [NetworkOut(**n.to_dict()) for n in policies.networks.values()]


def explain_for(
    session: Session, policies: PolicySet, principal: Principal, data: ExplainIn, today: date
) -> Explanation:
    """Why the caller may or may not see a record; a real one only if the caller is involved."""
    access.refuse_admin(principal)
    if data.referral_id is not None:
        referral = referrals.load(session, data.referral_id)
        relations = access.referral_relations(principal, referral)
        involved = relations or access.is_coordinator(policies, principal, referral.network_id)
        if not involved or not access.in_force_party(policies, principal.agency_id, referral.network_id, today):
            # Explaining a stranger's referral would disclose its status and consent.
            raise Forbidden("Explain a referral you are involved in, or describe one in `record`.")
        record = Record("referral", access.referral_attributes(referral))
    else:
        assert data.record is not None
        relations = frozenset(data.record.relations)
        attributes: dict[str, AttributeValue] = {
            k: frozenset(v) if isinstance(v, list) else flag_value(v) if isinstance(v, bool) else v
            for k, v in data.record.model_dump(exclude={"kind", "relations"}).items() if v is not None
        }
        # A described record is of the caller's network unless it names another.
        mine = policies.networks_of(principal.agency_id)
        if "network" not in attributes and mine:
            attributes["network"] = mine[0]
        record = described_record(data.record.kind, attributes)
    return explain(
        policies, access.caller(principal, relations), data.purpose, record, data.view, now=today
    )


def reload_report(result: LoadResult) -> ReloadOut:
    return ReloadOut(
        in_force=[f"{a.id}@v{a.version}" for a in result.policy_set],
        errors=[{"file": e.file, "line": e.line, "path": e.path, "reason": e.reason} for e in result.errors],
        warnings=list(result.warnings),
    )


def reload_and_log(
    state: AppState, trigger: str, principal: Principal | None = None, session: Session | None = None
) -> LoadResult:
    """Reload the agreements and record what is now in force (and what was refused) in the log."""
    result = load_policies(state.policies, state.settings)
    details = {
        "trigger": trigger,
        "client_id": principal.client_id if principal else None,
        "in_force": [{"id": a.id, "version": a.version, "hash": a.content_hash} for a in result.policy_set],
        "errors": [{"file": e.file, "line": e.line, "reason": e.reason} for e in result.errors],
        "warnings": list(result.warnings),
    }
    event = AuditEvent(
        event_type=EventType.agreement_load.value,
        actor_agency=principal.agency_id if principal else None,
        recipient_agency=None, purpose=None, decision=None, agreement_id=None, rule_id=None,
        subject_id=None, details={k: v for k, v in details.items() if v is not None},
    )
    if session is not None:  # a request's own unit of work (on SQLite, a second one would wait on it)
        state.audit.append(session, event, now=state.clock())
        return result
    with transaction(state.sessions) as own:
        state.audit.append(own, event, now=state.clock())
    return result
