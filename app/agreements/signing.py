"""Signing an agreement version, and what its versions and signatures are: without HTTP.

The API, the console and the demo seed all sign through `sign`; the last required signature puts
the version in force (the one before it, if any, is superseded) and every process's PolicyStore
picks it up (this one at once, the others through their watcher).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.agreements.ledger import missing_signatures, signatures_of
from app.agreements.models import IN_FORCE, PROPOSED, SUPERSEDED, AgreementSignature, AgreementVersion
from app.audit.events import AuditEvent, EventType
from app.errors import Conflict, Forbidden, NotFound
from app.policy.model import Agreement
from app.state import AppState

# Who may sign for a party when the agreement names no signatories.
SIGNING_ROLES = frozenset({"coordinator", "signatory"})


@dataclass(frozen=True, slots=True)
class Signer:
    """A person of an agency: a console person, an API client's acting person, or the demo's signatory."""

    agency_id: str
    person_id: str
    roles: frozenset[str]
    via: str  # api | console | demo


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """One stored version: its state, signatures, and who has yet to sign (if proposed)."""

    row: AgreementVersion
    agreement: Agreement | None
    signatures: list[AgreementSignature]
    missing: tuple[str, ...]


def may_sign(agreement: Agreement, signer: Signer) -> str | None:
    """None if the signer may sign for their agency; else why not."""
    if signer.agency_id not in agreement.party_set:
        return f"{signer.agency_id} is not a party to agreement {agreement.id}"
    # The role always: an API client's `act` names its person, and a client of the party that only
    # reads (a partner's sync) must not sign as the named person by naming them.
    if not signer.roles & SIGNING_ROLES:
        return f"signing agreement {agreement.id} needs the coordinator or signatory role"
    if agreement.signatories and (signer.agency_id, signer.person_id) not in agreement.signatories:
        return f"{signer.person_id} is not a named signatory of agreement {agreement.id}"
    return None


def _signed_already(agreement: Agreement, signer: Signer, signed: set[tuple[str, str]]) -> bool:
    if agreement.signatories:
        return (signer.agency_id, signer.person_id) in signed
    return any(agency == signer.agency_id for agency, _ in signed)


def versions(session: Session, state: AppState, agreement_id: str) -> list[VersionStatus]:
    """Every stored version of an agreement, newest first; NotFound if none was ever loaded."""
    rows = list(session.scalars(
        select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id)
        .order_by(AgreementVersion.version.desc())
    ))
    if not rows:
        raise NotFound(f"No agreement {agreement_id!r} was loaded on this deployment.")
    signatures = list(session.scalars(
        select(AgreementSignature).where(AgreementSignature.agreement_id == agreement_id)
        .order_by(AgreementSignature.id)
    ))
    found = []
    for row in rows:
        agreement = state.policies.parse(row.source_text.encode("utf-8"), row.source)
        own = [s for s in signatures if s.version == row.version]
        signed = {(s.agency_id, s.person_id) for s in own if s.content_hash == row.content_hash}
        missing = missing_signatures(agreement, signed) if agreement and row.state == PROPOSED else ()
        found.append(VersionStatus(row, agreement, own, missing))
    return found


def version(session: Session, state: AppState, agreement_id: str, number: int) -> VersionStatus:
    for status in versions(session, state, agreement_id):
        if status.row.version == number:
            return status
    raise NotFound(f"Agreement {agreement_id!r} has no version {number}.")


def sign_for_every_party(
    session: Session, state: AppState, via: str, only: Collection[str] | None = None
) -> int:
    """Sign every loaded version still proposed (of the agreements `only` names, when given) for each
    signer it awaits; the number of signatures.

    For the demo and the test suite, whose shipped agreements are signed by a stand-in per party
    ("<agency>-signatory", or the person the agreement names); each signature is logged like any other.
    The demo passes its own agreements' ids: seeding it never signs a deployment's real agreements.
    """
    made = 0
    for waiting in state.policies.current.proposed:
        if only is not None and waiting.agreement_id not in only:
            continue
        agreement = state.policies.loaded.get(waiting.agreement_id)
        if agreement is None or agreement.version != waiting.version:
            continue
        for who in waiting.missing:
            agency, _, person = who.partition("/")
            signer = Signer(agency, person or f"{agency}-signatory", frozenset({"signatory"}), via)
            sign(session, state, agreement.id, agreement.version, agreement.content_hash, signer, refresh=False)
            made += 1
    if made:
        state.policies.refresh(session)
    return made


def sign(
    session: Session, state: AppState, agreement_id: str, number: int, content_hash: str, signer: Signer,
    *, refresh: bool = True,
) -> AgreementSignature:
    """Record the signer's signature of the version's text; the last one required puts it in force.

    This process's agreements in force are asked again when the caller's transaction commits;
    `refresh=False` leaves them as they were (a caller signing many refreshes once, in its transaction)."""
    row = session.scalars(
        select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id,
                                       AgreementVersion.version == number).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"Agreement {agreement_id!r} has no version {number}.")
    agreement = state.policies.parse(row.source_text.encode("utf-8"), row.source)
    if agreement is None:
        raise Conflict(f"Version {number} of {agreement_id} no longer loads; it cannot be signed.")
    refused = may_sign(agreement, signer)
    if refused is not None:
        raise Forbidden(f"You may not sign this version: {refused}.")
    if content_hash != row.content_hash:
        raise Conflict(f"Version {number} of {agreement_id} is not the text you signed: its content hash is"
                       f" {row.content_hash}. Read it again before signing.")
    if row.state != PROPOSED:
        raise Conflict(f"Version {number} of {agreement_id} is {row.state.replace('_', ' ')}: nothing to sign.")
    signed = signatures_of(session, agreement_id).get((agreement_id, number, row.content_hash), set())
    if _signed_already(agreement, signer, signed):
        raise Conflict(f"{signer.agency_id} has already signed version {number} of {agreement_id}.")
    now = state.clock()
    signature = AgreementSignature(agreement_id=agreement_id, version=number, content_hash=row.content_hash,
                                   agency_id=signer.agency_id, person_id=signer.person_id, signed_at=now,
                                   via=signer.via)
    session.add(signature)
    events = [_event(EventType.agreement_signed, signer.agency_id, agreement_id, {
        "agreement_version": number, "agreement_hash": row.content_hash, "person": signer.person_id,
        "via": signer.via,
    })]
    if not missing_signatures(agreement, signed | {(signer.agency_id, signer.person_id)}):
        superseded = list(session.scalars(select(AgreementVersion).where(
            AgreementVersion.agreement_id == agreement_id, AgreementVersion.state == IN_FORCE)))
        for older in superseded:
            older.state = SUPERSEDED
        row.state, row.activated_at = IN_FORCE, now
        events.append(_event(EventType.agreement_activated, signer.agency_id, agreement_id, {
            "agreement_version": number, "agreement_hash": row.content_hash,
            "superseded": [o.version for o in superseded],
        }))
    session.flush()
    state.audit.append_many(session, events, now=now)
    if refresh:
        # Only once the signature is durable: a version whose last signature fails to commit must never
        # have decided anything in this process (other processes learn of it through their watcher).
        event.listen(session, "after_commit", lambda _committed: state.policies.refresh(), once=True)
    return signature


def _event(kind: EventType, agency: str, agreement_id: str, details: dict[str, object]) -> AuditEvent:
    return AuditEvent(event_type=kind.value, actor_agency=agency, recipient_agency=None, purpose=None,
                      decision=None, agreement_id=agreement_id, rule_id=None, subject_id=None, details=details)
