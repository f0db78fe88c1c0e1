"""The partner reader's pages: the summaries the agency may hold, and what it must now delete.

- ``/console/summaries``: ``GET /v1/summaries`` for the chosen purpose (only the summaries an agreement
  grants a partner reader, each one logged), a page at a time with the API's cursor; its ``withdrawn``
  list (on the first page) is the separate section "to delete".
- ``/console/summaries.csv``: the same rows as a spreadsheet, every page of the sync, through the API
  too (so each row handed out is in the disclosure log). A cell that a spreadsheet would read as a
  formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.console import web
from app.console.router import page
from app.console.web import PREFIX, Visit

router = APIRouter(include_in_schema=False)

PAGE_LIMIT = 50
CSV_LIMIT = 200
CSV_MAX_PAGES = 50
FIRST = ("id", "status", "subject.age_band", "subject.district", "concerns", "requested_services")
LAST = ("view", "retain_until")
VOCABULARY = {"status": "referral_status", "subject.age_band": "age_band", "concerns": "concern_category",
              "requested_services": "requested_service", "subject.gender": "gender", "risk_level": "risk_level",
              "urgency": "urgency"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def flatten(item: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A summary as one row: nested objects as dotted names (``subject.district``)."""
    row: dict[str, Any] = {}
    for name, value in item.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            row.update(flatten(value, f"{key}."))
        else:
            row[key] = value
    return row


def columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The known fields in a fixed order, any others the view adds in between, the sync's own last."""
    seen: set[str] = set()
    for row in rows:
        seen.update(row)
    middle = sorted(seen - set(FIRST) - set(LAST))
    return [c for c in FIRST if c in seen] + middle + [c for c in LAST if c in seen]


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(cell_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def neutralise(text: str) -> str:
    """A cell a spreadsheet would run as a formula becomes plain text (CSV injection)."""
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _body(reply: web.Reply) -> dict[str, Any]:
    return reply.body if isinstance(reply.body, dict) else {}


@router.get(f"{PREFIX}/summaries")
@page("partner_reader", needs_purpose=True)
async def summaries(visit: Visit) -> Response:
    cursor = visit.request.query_params.get("cursor") or None
    reply = await visit.api.get("/v1/summaries", purpose=visit.purpose,
                                params={"cursor": cursor, "limit": PAGE_LIMIT})
    if not reply.ok:
        return web.problem_page(visit, reply)
    body = _body(reply)
    rows = [flatten(i) for i in body.get("items", []) if isinstance(i, dict)]
    return web.render(visit, "partner/summaries.html", rows=rows, columns=columns(rows), vocabulary=VOCABULARY,
                      withdrawn=[str(w) for w in body.get("withdrawn") or []], next_cursor=body.get("next_cursor"),
                      synced_at=body.get("synced_at"), first_page=cursor is None)


@router.get(f"{PREFIX}/summaries.csv")
@page("partner_reader", needs_purpose=True)
async def summaries_csv(visit: Visit) -> Response:
    rows: list[dict[str, Any]] = []
    withdrawn: list[str] = []
    cursor: str | None = None
    for _ in range(CSV_MAX_PAGES):
        reply = await visit.api.get("/v1/summaries", purpose=visit.purpose,
                                    params={"cursor": cursor, "limit": CSV_LIMIT})
        if not reply.ok:
            return web.problem_page(visit, reply)
        body = _body(reply)
        rows += [flatten(i) for i in body.get("items", []) if isinstance(i, dict)]
        withdrawn += [str(w) for w in body.get("withdrawn") or []]
        cursor = body.get("next_cursor") or None
        if cursor is None:
            break
    names = columns(rows) or ["id"]  # nothing granted: the withdrawals still need their id column
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*names, "action"])
    for row in rows:
        writer.writerow([neutralise(cell_text(row.get(name))) for name in names] + ["keep"])
    for referral_id in sorted(set(withdrawn)):
        writer.writerow([neutralise(referral_id) if name == "id" else "" for name in names] + ["delete"])
    response = Response(content=out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="summaries.csv"'})
    return web.finish(visit, response)
