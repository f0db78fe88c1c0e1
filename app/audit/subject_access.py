"""Who may read a subject-access report: the purpose `subject_access`, and the person's networks.

The report names every agency that received the person's data, with purposes and field
names: case data about the person.  It is read like a referral: the caller states the
purpose `subject_access`, which an agreement opens to it, and every referral about the
person must be one that agreement grants the caller for that purpose (so a network's
coordinator or auditor reads reports on its own network's people only).  A person with no
referral left (erased, purged, or never referred) belongs to no network: only the log's
auditors, who may query the whole log anyway, read what happened to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.errors import BadRequest, Forbidden
from app.policy.decision import Decision
from app.policy.policy_set import PolicySet
from app.referrals.models import Referral

SUBJECT_ACCESS = "subject_access"
REPORT_VIEW = "subject_access_report"
REPORT_FIELDS = ("recipients", "disclosures")


class ReportDenied(Forbidden):
    """A report on a person whose networks the caller has no say in; logged against the person."""

    slug = "access-denied"

    def __init__(self, detail: str, *, subject_id: str) -> None:
        super().__init__(detail)
        self.subject_id = subject_id


@dataclass(frozen=True, slots=True)
class ReportScope:
    """The grant under which the report leaves, and the referrals it was decided on."""

    grant: access.Grant
    referral_ids: list[str]


def authorize(
    session: Session, policies: PolicySet, principal: Principal, subject_id: str, purpose: str | None,
    today: date,
) -> ReportScope:
    # Opened by a rule for the caller's agency or role: no relation to a person stands for it.
    stated = access.require_purpose(policies, principal, purpose, today, relations=frozenset())
    if stated != SUBJECT_ACCESS:
        raise BadRequest(
            f"A subject-access report is read for purpose {SUBJECT_ACCESS!r}.", slug="purpose-unknown",
            purposes=[SUBJECT_ACCESS],
        )
    referrals = list(session.scalars(
        select(Referral).where(Referral.subject_id == subject_id).order_by(Referral.id)
    ))
    if not referrals:
        if "auditor" not in principal.roles:
            raise ReportDenied(
                "This person has no referral in a network you coordinate; the log's auditors answer for them.",
                subject_id=subject_id,
            )
        decision = Decision(True, "the log's auditor reports on a person with no referral left", "permitted",
                            view=REPORT_VIEW)
        return ReportScope(access.Grant(decision, "access"), [])
    grants = [access.referral_grant(policies, principal, r, stated, None, today) for r in referrals]
    return ReportScope(grants[0], [r.id for r in referrals])
