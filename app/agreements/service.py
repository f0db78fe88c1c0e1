"""Agreement listing, explanations and reloads, without HTTP."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app import access
from app.agreements import signing
from app.agreements.models import AgreementSignature
from app.agreements.schemas import (
    AgreementOut,
    AgreementVersionOut,
    ExplainIn,
    NetworkOut,
    ProposedOut,
    ReloadOut,
    SignatureOut,
)
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
from app.bootstrap import load_policies
from app.console.models import Person
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


def proposed(policies: PolicySet) -> list[ProposedOut]:
    return [ProposedOut(id=p.agreement_id, version=p.version, missing=list(p.missing)) for p in policies.proposed]


def signature_out(signature: AgreementSignature) -> SignatureOut:
    return SignatureOut(
        agreement_id=signature.agreement_id, version=signature.version, content_hash=signature.content_hash,
        agency=signature.agency_id, person=signature.person_id, signed_at=signature.signed_at,
        via=signature.via,
    )


def version_out(status: signing.VersionStatus) -> AgreementVersionOut:
    row, agreement = status.row, status.agreement
    return AgreementVersionOut(
        agreement_id=row.agreement_id, version=row.version, content_hash=row.content_hash,
        state=row.state,
        first_loaded_at=row.first_loaded_at, activated_at=row.activated_at,
        parties=list(agreement.parties) if agreement else [],
        signatories=[f"{a}/{p}" for a, p in agreement.signatories] if agreement else [],
        missing=list(status.missing), signatures=[signature_out(s) for s in status.signatures],
    )


def signer_of(session: Session, principal: Principal) -> signing.Signer:
    """An API caller signs as its acting person (the client itself when it acts for nobody).

    A console person is a client of the person's own id that only the console can get a token for:
    such a signature was made in the console.
    """
    via = "console" if session.get(Person, principal.client_id) is not None else "api"
    return signing.Signer(principal.agency_id, principal.act or principal.client_id, principal.roles, via)


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
        in_force = access.in_force_party(policies, principal.agency_id, referral.network_id, today)
        if involved and not in_force:  # say why: the agreement lapsed, or awaits signatures
            for lapse in access.not_in_force(policies, principal.agency_id, today, network_id=referral.network_id):
                raise Forbidden(f"Explaining this referral: {lapse.reason}.", slug=lapse.slug, **lapse.extensions)
        if not involved or not in_force:
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
    explanation = explain(
        policies, access.caller(principal, relations), data.purpose, record, data.view, now=today
    )
    return access.lapse_explained(policies, principal.agency_id, record, explanation)


def reload_report(result: LoadResult) -> ReloadOut:
    return ReloadOut(
        in_force=[f"{a.id}@v{a.version}" for a in result.policy_set],
        proposed=[f"{p.agreement_id}@v{p.version}" for p in result.policy_set.proposed],
        errors=[{"file": e.file, "line": e.line, "path": e.path, "reason": e.reason} for e in result.errors],
        warnings=list(result.warnings),
    )


def reload_and_log(
    state: AppState, trigger: str, principal: Principal | None = None, session: Session | None = None
) -> LoadResult:
    """Reload the agreements and record what is now in force (and what was refused) in the log."""
    result = load_policies(state.policies, state.settings, session)
    details = {
        "trigger": trigger,
        "client_id": principal.client_id if principal else None,
        "in_force": [{"id": a.id, "version": a.version, "hash": a.content_hash} for a in result.policy_set],
        "proposed": [{"id": p.agreement_id, "version": p.version, "awaiting": list(p.missing)}
                     for p in result.policy_set.proposed],
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
