"""Which loaded agreement versions are signed: the database's record, asked by the PolicyStore.

Every version a file holds is recorded (with its text) the first time it is loaded, as proposed.
A proposed version decides nothing; while it waits, the last signed version of the same agreement
stays in force, rebuilt from its stored text when the file already holds the newer one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.agreements.models import IN_FORCE, PROPOSED, AgreementSignature, AgreementVersion
from app.db import transaction
from app.policy.model import Agreement
from app.policy.policy_set import PolicySet, Proposed
from app.policy.store import Gated, Parse

log = logging.getLogger("casebridge.policy")

Signed = dict[tuple[str, int, str], set[tuple[str, str]]]


def missing_signatures(agreement: Agreement, signed: set[tuple[str, str]]) -> tuple[str, ...]:
    """Who has yet to sign: the named signatories ("agency/person"), else the parties (agencies)."""
    if agreement.signatories:
        return tuple(f"{a}/{p}" for a, p in agreement.signatories if (a, p) not in signed)
    agencies = {a for a, _ in signed}
    return tuple(p for p in agreement.parties if p not in agencies)


def signatures_of(session: Session, agreement_id: str | None = None) -> Signed:
    """(agreement, version, content hash) -> the (agency, person) pairs that signed that text."""
    query = select(AgreementSignature.agreement_id, AgreementSignature.version, AgreementSignature.content_hash,
                   AgreementSignature.agency_id, AgreementSignature.person_id)
    if agreement_id is not None:
        query = query.where(AgreementSignature.agreement_id == agreement_id)
    found: Signed = defaultdict(set)
    for row in session.execute(query):
        found[(row[0], row[1], row[2])].add((row[3], row[4]))
    return found


class SignatureLedger:
    """The PolicyStore's signature gate, backed by agreement_versions and agreement_signatures."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._sessions = sessions
        self.clock = clock

    def fingerprint(self) -> tuple[int, int]:
        """Cheap to poll: changes whenever any process records a signature."""
        with self._sessions() as session:
            count, last = session.execute(
                select(func.count(), func.coalesce(func.max(AgreementSignature.id), 0))
            ).one()
        return int(count), int(last)

    def gate(self, loaded: PolicySet, texts: Mapping[str, bytes], parse: Parse, session: Session | None) -> Gated:
        for attempt in (1, 2):
            try:
                with self._session(session) as own:
                    return self._gate(own, loaded, texts, parse)
            except IntegrityError:
                # Another process recorded the same new version first: read it again.
                if session is not None or attempt == 2:
                    raise
            except SQLAlchemyError as exc:
                if session is not None:
                    raise
                # Deny by default: e.g. a database not yet migrated (`db upgrade` builds the state first).
                log.warning("agreement ledger unreadable: no agreement is in force",
                            extra={"error_type": type(exc).__name__})
                return Gated([], [], ["the signature ledger could not be read: no agreement is in force"])
        raise AssertionError("unreachable")

    @contextmanager
    def _session(self, given: Session | None) -> Iterator[Session]:
        if given is not None:
            yield given
            return
        with transaction(self._sessions) as own:
            yield own

    def _gate(self, session: Session, loaded: PolicySet, texts: Mapping[str, bytes], parse: Parse) -> Gated:
        rows = {(r.agreement_id, r.version): r for r in session.scalars(select(AgreementVersion))}
        signed = signatures_of(session)
        in_force: list[Agreement] = []
        proposed: list[Proposed] = []
        warnings: list[str] = []
        for agreement in loaded:
            row = rows.get((agreement.id, agreement.version))
            text = texts[agreement.id].decode("utf-8")
            if row is None:
                row = AgreementVersion(
                    agreement_id=agreement.id, version=agreement.version, content_hash=agreement.content_hash,
                    source_text=text, source=agreement.source[-500:], state=PROPOSED, first_loaded_at=self.clock(),
                )
                session.add(row)
                session.flush()
                rows[(agreement.id, agreement.version)] = row
            elif row.content_hash != agreement.content_hash and row.state == PROPOSED:
                # Edited before it was signed: the signatures of the earlier text no longer count.
                row.content_hash, row.source_text, row.source = agreement.content_hash, text, agreement.source[-500:]
            elif row.content_hash != agreement.content_hash:
                warnings.append(
                    f"{agreement.source}: version {agreement.version} of {agreement.id} changed after it was"
                    " signed; the signed text stays in force (a change needs a new version number)"
                )
            if row.state == IN_FORCE:
                kept = agreement if row.content_hash == agreement.content_hash else parse(
                    row.source_text.encode("utf-8"), row.source)
                in_force.extend([kept] if kept is not None else [])
                continue
            if row.state == PROPOSED:
                missing = missing_signatures(agreement, signed.get((agreement.id, agreement.version,
                                                                    agreement.content_hash), set()))
                proposed.append(Proposed(agreement.id, agreement.version, agreement.party_set,
                                         agreement.networks, missing))
            else:
                warnings.append(f"{agreement.source}: version {agreement.version} of {agreement.id} was"
                                " superseded by a later signed version; the later one stays in force")
            signed_before = [r for r in rows.values() if r.agreement_id == agreement.id and r.state == IN_FORCE]
            if signed_before:
                last = max(signed_before, key=lambda r: r.version)
                previous = parse(last.source_text.encode("utf-8"), last.source)
                if previous is None:
                    warnings.append(f"version {last.version} of {agreement.id} no longer loads: nothing in force")
                else:
                    in_force.append(previous)
        return Gated(in_force, proposed, warnings)
