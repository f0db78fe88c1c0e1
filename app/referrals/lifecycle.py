"""The referral lifecycle as a table: which status may follow which, and who may move it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    submitted = "submitted"
    triaged = "triaged"
    accepted = "accepted"
    declined = "declined"
    assigned = "assigned"
    in_intervention = "in_intervention"
    closed = "closed"
    withdrawn = "withdrawn"
    transferred = "transferred"


class Actor(StrEnum):
    coordinator = "coordinator"  # a client with the coordinator role
    referrer = "referrer"  # the referring agency, with the referrer role
    assigned = "assigned"  # an assigned agency, with the caseworker role


@dataclass(frozen=True, slots=True)
class Transition:
    source: Status
    target: Status
    actor: Actor


S, A = Status, Actor
TRANSITIONS: tuple[Transition, ...] = (
    Transition(S.submitted, S.triaged, A.coordinator),
    Transition(S.triaged, S.accepted, A.coordinator),
    Transition(S.triaged, S.declined, A.coordinator),
    Transition(S.accepted, S.assigned, A.coordinator),
    Transition(S.assigned, S.assigned, A.coordinator),  # re-assignment
    Transition(S.assigned, S.in_intervention, A.assigned),
    Transition(S.accepted, S.closed, A.coordinator),
    Transition(S.assigned, S.closed, A.coordinator),
    Transition(S.in_intervention, S.closed, A.coordinator),
    Transition(S.submitted, S.withdrawn, A.referrer),
    Transition(S.triaged, S.withdrawn, A.referrer),
    Transition(S.submitted, S.transferred, A.coordinator),
    Transition(S.triaged, S.transferred, A.coordinator),
    Transition(S.accepted, S.transferred, A.coordinator),
    Transition(S.assigned, S.transferred, A.coordinator),
    Transition(S.in_intervention, S.transferred, A.coordinator),
)
TERMINAL = frozenset({S.declined, S.closed, S.withdrawn, S.transferred})


def allowed_targets(source: Status) -> list[Status]:
    return sorted({t.target for t in TRANSITIONS if t.source is source})


def actors_for(source: Status, target: Status) -> frozenset[Actor]:
    return frozenset(t.actor for t in TRANSITIONS if t.source is source and t.target is target)


def targets_for(source: Status, actors: frozenset[Actor]) -> list[Status]:
    return sorted({t.target for t in TRANSITIONS if t.source is source and t.actor in actors})
