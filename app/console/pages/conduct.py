"""The code of conduct page: what a signed-in person accepts before the console shows any case data.

Every page but a few (app.console.router.page, ``before_conduct``) sends a person who owes a network's
code here. The page shows each code owed, in the person's language when the network has it (else the
network's first language it has), with one Accept button; accepting records each code's version and
hash (app.conduct.service) and an audit entry. Declining is signing out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import Response

from app.conduct import service
from app.console import i18n, web
from app.console.router import page
from app.console.web import PREFIX, Visit

router = APIRouter(include_in_schema=False)
FIELD = "code:"  # a form field per code shown: code:<network> = the hash of the texts shown


@dataclass(frozen=True, slots=True)
class Block:
    """One block of a code's text: a heading, a paragraph, or a list's items; each a run of (bold, text)."""

    kind: str  # heading | paragraph | ordered | bullets
    runs: tuple[tuple[tuple[bool, str], ...], ...]


_ITEM = re.compile(r"^(?:(\d+)\.|[-*])\s+")


def blocks(text: str) -> list[Block]:
    """The little Markdown a code is written in: ``#`` headings, paragraphs, numbered and bulleted lists, **bold**.

    Text only: the template escapes every run, so a code's file can put no markup on the page.
    """
    found: list[Block] = []
    lines: list[str] = []
    kind = "paragraph"

    def close() -> None:
        if lines:
            runs = tuple(_runs(line) for line in lines) if kind in ("ordered", "bullets") else (
                _runs(" ".join(lines)),)
            found.append(Block(kind, runs))
        lines.clear()

    for raw in text.splitlines():
        line = raw.strip()
        item = _ITEM.match(line)
        if not line:
            close()
            kind = "paragraph"
        elif line.startswith("#"):
            close()
            found.append(Block("heading", (_runs(line.lstrip("#").strip()),)))
            kind = "paragraph"
        elif item:
            wanted = "ordered" if item.group(1) else "bullets"
            if kind != wanted:
                close()
                kind = wanted
            lines.append(line[item.end():])
        elif kind != "paragraph" and lines:
            lines[-1] += " " + line  # an item's continuation line
        else:
            lines.append(line)
    close()
    return found


def _runs(text: str) -> tuple[tuple[bool, str], ...]:
    return tuple((index % 2 == 1, part) for index, part in enumerate(text.split("**")) if part)


def _owed(visit: Visit) -> list[service.Owed]:
    assert visit.person is not None
    with visit.state.read_sessions() as session:
        return service.owed(visit.state, session, person_id=visit.person.id, agency_id=visit.person.agency_id)


def _render(visit: Visit, owed: list[service.Owed], target: str, *, status_code: int = 200,
            error: str | None = None) -> Response:
    codes = []
    for item in owed:
        language, text = item.conduct.text_for(visit.language, item.locales)
        codes.append({"network": item.network_id, "name": item.network_name, "version": item.conduct.version,
                      "hash": item.conduct.content_hash, "language": language,
                      "direction": i18n.direction(language), "blocks": blocks(text)})
    return web.render(visit, "conduct.html", status_code=status_code, codes=codes, next=target, error=error)


@router.get(f"{PREFIX}/conduct")
@page(before_conduct=True)
async def conduct_form(visit: Visit) -> Response:
    visit.require()
    target = web.safe_next(visit.request.query_params.get("next"))
    owed = await to_thread.run_sync(_owed, visit)
    if not owed:
        return web.redirect(visit, target)
    return _render(visit, owed, target)


@router.post(f"{PREFIX}/conduct")
@page(before_conduct=True)
async def accept(visit: Visit) -> Response:
    person = visit.require()
    form = await visit.request.form()
    target = web.safe_next(str(form.get("next", "")))
    shown = {key.removeprefix(FIELD): str(value) for key, value in form.multi_items() if key.startswith(FIELD)}
    try:
        await to_thread.run_sync(lambda: service.accept(visit.state, person_id=person.id, agency_id=person.agency_id,
                                                        shown=shown, language=visit.language))
    except service.Outdated:
        owed = await to_thread.run_sync(_owed, visit)
        if not owed:
            return web.redirect(visit, target)
        return _render(visit, owed, target, status_code=409, error="changed")
    return web.redirect(visit, target)
