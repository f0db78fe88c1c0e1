"""Which codes of conduct a person has yet to accept, and recording an acceptance.

A person owes the current version of the code of every network their agency is a member of (a
network whose file declares no code asks nothing). "Current" is the version number and the hash of
its texts together: a text changed without raising the version is accepted again too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.events import AuditEvent, EventType
from app.conduct.models import ConductAcceptance
from app.policy.model import Conduct
from app.state import AppState


@dataclass(frozen=True, slots=True)
class Owed:
    """A network's code the person has not accepted at its current version."""

    network_id: str
    network_name: str
    locales: tuple[str, ...]
    conduct: Conduct


class Outdated(Exception):
    """What the person was shown is no longer what is owed (a code changed meanwhile): show it again."""


def owed(state: AppState, session: Session, *, person_id: str, agency_id: str) -> list[Owed]:
    """The codes of the agency's networks the person has not accepted at their current version."""
    policies = state.policies.current
    codes = [(network_id, network) for network_id in policies.networks_of(agency_id)
             if (network := policies.network(network_id)) is not None and network.conduct is not None]
    if not codes:
        return []
    accepted = {tuple(row) for row in session.execute(
        select(ConductAcceptance.network_id, ConductAcceptance.version, ConductAcceptance.content_hash)
        .where(ConductAcceptance.person_id == person_id))}
    return [Owed(network_id, network.name, network.locales, network.conduct)
            for network_id, network in codes if network.conduct is not None
            and (network_id, network.conduct.version, network.conduct.content_hash) not in accepted]


def accept(state: AppState, *, person_id: str, agency_id: str, shown: Mapping[str, str], language: str) -> list[Owed]:
    """Record the person's acceptance of every code owed, each in the language shown, and log each.

    ``shown`` maps each network to the hash of the code the page showed; unless it is exactly what is
    owed now, nothing is recorded (``Outdated``).
    """
    now = state.clock()
    with state.sessions() as session, session.begin():
        due = owed(state, session, person_id=person_id, agency_id=agency_id)
        if {o.network_id: o.conduct.content_hash for o in due} != dict(shown):
            raise Outdated
        events = []
        for item in due:
            shown_in, _ = item.conduct.text_for(language, item.locales)
            session.add(ConductAcceptance(person_id=person_id, network_id=item.network_id,
                                          version=item.conduct.version, content_hash=item.conduct.content_hash,
                                          language=shown_in, accepted_at=now))
            events.append(AuditEvent(
                event_type=EventType.conduct_accepted.value, actor_agency=agency_id, recipient_agency=None,
                purpose=None, decision=None, agreement_id=None, rule_id=None, subject_id=None,
                details={"client_id": person_id, "on_behalf_of": person_id, "network": item.network_id,
                         "version": item.conduct.version, "content_hash": item.conduct.content_hash,
                         "language": shown_in}))
        state.audit.append_many(session, events, now=now)
    return due
