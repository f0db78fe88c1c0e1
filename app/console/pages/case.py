"""A referral as the person may see it: the API's projection, nothing more (every role's case page)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.console import web
from app.console.pages.referrer import DONE
from app.console.router import page
from app.console.web import PREFIX, Visit

router = APIRouter(include_in_schema=False)
ANY_ROLE = ("referrer", "caseworker", "coordinator", "partner_reader", "auditor")


@router.get(f"{PREFIX}/referrals/{{referral_id}}")
@page(*ANY_ROLE, needs_purpose=True)
async def referral(visit: Visit, referral_id: str) -> Response:
    reply = await visit.api.get(f"/v1/referrals/{referral_id}", purpose=visit.purpose)
    if not reply.ok:
        return web.problem_page(visit, reply)
    done = DONE.get(visit.request.query_params.get("done", ""))
    if done is not None:  # the confirmation of the write that led here (the new-referral and note forms)
        visit.messages.append(("ok", visit.gettext(done)))
    return web.render(visit, "case/referral.html", referral=reply.body, view=reply.headers.get("x-granted-view", ""))
