"""Routes whose plainly valid requests skip FastAPI's per-request dependency solving.

A route is declared as usual (its signature is its OpenAPI and its contract). A router built
with ``route_class=LeanRoute`` serves it the declared way, unless its endpoint names a *lean
entry* with ``@lean(entry)``: then each request goes to the entry first. The entry reads what it
needs from the request and returns a response, or ``None`` when the request is anything but
plainly valid (a parameter too long or malformed). ``None`` sends the request the declared way,
so FastAPI's own validation and its 422 answer everything unusual. Both ways end in the same
handler body, so neither can skip a check the other makes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

LeanEntry = Callable[[Request], Awaitable[Response | None]]
_ENTRY = "__casebridge_lean_entry__"
E = TypeVar("E", bound=Callable[..., Any])


def lean(entry: LeanEntry) -> Callable[[E], E]:
    """Mark an endpoint as served first by ``entry`` (see the module's docstring)."""

    def mark(endpoint: E) -> E:
        setattr(endpoint, _ENTRY, entry)
        return endpoint

    return mark


def entry_of(endpoint: Callable[..., Any]) -> LeanEntry | None:
    entry: LeanEntry | None = getattr(endpoint, _ENTRY, None)
    return entry


class LeanRoute(APIRoute):
    """An APIRoute that tries its endpoint's lean entry, if it has one, before solving dependencies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()
        endpoint = self.endpoint
        if entry_of(endpoint) is None:
            return declared

        async def handler(request: Request) -> Response:
            entry = entry_of(endpoint)  # looked up per request: the tests compare both ways
            response = None if entry is None else await entry(request)
            return response if response is not None else await declared(request)

        return handler
