"""The log entries of a new referral's link to a known person: ids only, never a value.

A referral that links to a known subject shows its referrer the shared `subject.id`, and with
it that the network already knows the person. That is a disclosure about the person, so it is
logged as a `link` entry under the person's blind index, with the new referrer as recipient:
the subject-access report lists it. A referral left unlinked because its identifiers named
several known people shows their subject ids as `link_conflicts`: one `link` entry per person.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
from app.disclose import change_event
from app.referrals.models import Referral

# Enough to find the person's other referrals from the entry; the count says if there were more.
MAX_LINKED_IDS = 200


def link_events(
    session: Session, principal: Principal, referral: Referral, request_id: str | None, *,
    new_subject: bool = False,
) -> list[AuditEvent]:
    """The entries a just-created referral's link leaves (none for a person new to the network)."""
    if new_subject and not referral.link_conflicts:
        return []  # created for this referral: no other referral to link to
    if referral.link_conflicts:
        return [
            _event(principal, candidate, request_id, outcome="conflict", fields=["link_conflicts"],
                   record_ids={"referral_id": referral.id, "subject_id": candidate})
            for candidate in referral.link_conflicts
        ]
    others = list(session.scalars(
        select(Referral.id).where(Referral.subject_id == referral.subject_id, Referral.id != referral.id)
        .order_by(Referral.created_at, Referral.id).limit(MAX_LINKED_IDS + 1)
    ))
    if not others:
        return []
    return [_event(
        principal, referral.subject_id, request_id, outcome="linked", fields=["subject.id"],
        record_ids={"referral_id": referral.id, "subject_id": referral.subject_id,
                    "linked_referral_ids": others[:MAX_LINKED_IDS]},
        more_linked=len(others) > MAX_LINKED_IDS or None,
    )]



def _event(
    principal: Principal, subject_id: str, request_id: str | None, *, outcome: str, fields: list[str],
    record_ids: dict[str, Any], **extra: Any,
) -> AuditEvent:
    # The linking agency learns that the person is known (the shared subject id): the
    # subject-access report lists it among the recipients.
    return change_event(principal, EventType.link, subject_id=subject_id, record_ids=record_ids,
                        request_id=request_id, recipient_agency=principal.agency_id, link=outcome,
                        fields=fields, **extra)
