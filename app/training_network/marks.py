"""Training is marked where nothing can miss it: every reply to a training caller, every log entry about one.

Both are decided here, from the policies in force (app/policy/training.py), once per reply and once
per entry: the middleware sees every response the API sends, and the disclosure log asks
`training_event` of every entry it seals (app/audit/service.py), whatever endpoint or job made it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.events import AuditEvent
from app.policy.policy_set import PolicySet
from app.policy.training import is_training_agency, is_training_network

HEADER = "CaseBridge-Training"
"""On every reply to a caller whose agency belongs to a training network (value `true`)."""

_NETWORK_KEYS = ("network", "from_network", "to_network")


def training_event(policies: PolicySet, event: AuditEvent) -> bool:
    """Whether an entry concerns a training network: its actor or recipient is a training agency, or a
    network it names is a training network."""
    if any(is_training_agency(policies, agency) for agency in (event.actor_agency, event.recipient_agency)):
        return True
    return any(isinstance(event.details.get(key), str) and is_training_network(policies, event.details[key])
               for key in _NETWORK_KEYS)


class TrainingMarkMiddleware:
    """Adds `CaseBridge-Training: true` to a reply when the caller (the principal the token named) is of a
    training agency; the principal dependency leaves the caller in the request's state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def mark(message: Message) -> None:
            if message["type"] == "http.response.start":
                principal = scope.get("state", {}).get("principal")
                if principal is not None and is_training_agency(scope["app"].state.cb.policies.current,
                                                                principal.agency_id):
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (HEADER.lower().encode(), b"true")]}
            await send(message)

        await self.app(scope, receive, mark)
