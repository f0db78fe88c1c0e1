"""The record of processing activities (GDPR Art. 30(1)), laid out to print, for coordinators and auditors (DPOs).

- ``/console/audit/processing``: ``app.policy.ropa`` for the agreements and networks in force and this
  service's settings: per network, the controller and DPO, purposes, data subjects and personal data,
  recipients, transfers, time limits and security measures; then each agreement. No case data: it is
  generated from the policy files and the configuration, so the admin-free roles that answer for the
  record (the coordinator, the auditor as data-protection officer) may both read it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.console import web
from app.console.pages.agreements import agency_names
from app.console.router import page
from app.console.web import N_, PREFIX, Visit
from app.policy.ropa import ropa

router = APIRouter(include_in_schema=False)
SUBJECT_LABELS: dict[str, str] = {
    "referred_persons": N_("People referred to the network, the subjects of its cases"),
    "third_parties": N_("People named in narratives, notes and minutes: family, peers, others"),
    "agency_staff": N_("Staff of the member agencies who use the service, and the people API clients act for"),
}
MISSING_LABELS: dict[str, str] = {
    "controller": N_("the controller"), "dpo": N_("the data-protection officer"),
    "transfers": N_("transfers (none, or which)"), "purposes": N_("an agreement with purposes"),
}


@router.get(f"{PREFIX}/audit/processing")
@page("coordinator", "auditor")
async def processing(visit: Visit) -> Response:
    record = ropa(visit.state.policies.current, visit.state.settings)
    return web.render(visit, "ropa/record.html", record=record, agencies=await agency_names(visit),
                      subject_labels={k: visit.gettext(v) for k, v in SUBJECT_LABELS.items()},
                      missing_labels={k: visit.gettext(v) for k, v in MISSING_LABELS.items()},
                      printed_at=visit.state.clock())
