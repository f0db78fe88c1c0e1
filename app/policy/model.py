"""Compiled, immutable agreements: views, audiences, conditions, permits and denies."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from app.policy.documents import PROTOCOL_DEFAULTS, ProtocolDocument
from app.policy.duration import Duration, Retention, parse_duration
from app.policy.vocabulary import RecordKind

VIEW_KINDS: dict[str, RecordKind] = {
    "referral": "referral",
    "notes": "note",
    "statistics": "statistics",
}


def view_kind(name: str) -> RecordKind:
    """The record kind a view name applies to, from its prefix."""
    return VIEW_KINDS[name.split(".", 1)[0]]


@dataclass(frozen=True, slots=True)
class View:
    """What leaves: referral fields, note classifications or statistics dimensions."""

    name: str
    kind: RecordKind
    items: frozenset[str]
    special: frozenset[str] = frozenset()
    min_cell: int | None = None

    def covers(self, other: "View") -> bool:
        return self.kind == other.kind and self.items >= other.items


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a rule is for; None means the key is absent, an empty set matches no one."""

    roles: frozenset[str] | None = None
    sectors: frozenset[str] | None = None
    agencies: frozenset[str] | None = None
    relations: frozenset[str] | None = None

    @property
    def is_empty(self) -> bool:
        return (
            self.roles is None
            and self.sectors is None
            and self.agencies is None
            and self.relations is None
        )

    def keys(self) -> dict[str, frozenset[str]]:
        """The keys given, in the order they are checked."""
        pairs = (
            ("agencies", self.agencies),
            ("sectors", self.sectors),
            ("roles", self.roles),
            ("relation", self.relations),
        )
        return {key: values for key, values in pairs if values is not None}


Conditions = tuple[tuple[str, frozenset[str]], ...]


@dataclass(frozen=True, slots=True)
class Permit:
    """A rule that grants `view` to `audience` for `purposes` when `when` holds."""

    id: str
    agreement_id: str
    order: int
    audience: Audience
    view: View
    purposes: frozenset[str]
    when: Conditions
    legal_basis: str
    special_category_condition: str | None
    retention: Retention
    emergency_window: Duration | None = None
    # Courses every recipient must hold, current (the agreement's `requires` and the rule's own).
    requires_training: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Deny:
    """A rule that cancels any disclosure of `items` (of `kind`) to its audience."""

    id: str
    agreement_id: str
    order: int
    audience: Audience
    kind: RecordKind
    items: frozenset[str]
    view_label: str
    purposes: frozenset[str] | None
    when: Conditions


@dataclass(frozen=True, slots=True)
class ReasonRule:
    """What an emergency reason needs to be one of substance."""

    min_length: int = 40
    min_words: int = 6
    max_char_share: float = 0.25


@dataclass(frozen=True, slots=True)
class EmergencyGuardrails:
    """The emergency section's limits on asking (who may ask is the emergency permit's audience)."""

    excluded_statuses: frozenset[str] = frozenset({"closed", "withdrawn"})
    max_per_agency_per_day: int = 3
    reason: ReasonRule = ReasonRule()
    refuse_flagged: bool = True


@dataclass(frozen=True, slots=True)
class Agreement:
    """One agreement version as loaded from a file."""

    id: str
    version: int
    title: str
    effective_from: date
    review_by: date
    controller_contact: str
    parties: tuple[str, ...]
    purposes: Mapping[str, str]
    views: Mapping[str, View]
    permits: tuple[Permit, ...]
    denies: tuple[Deny, ...]
    emergency: Permit | None
    statistics_min_cell: int
    statistics_dimensions: frozenset[str]
    content_hash: str
    source: str
    # The networks whose records it decides; empty only for agreements built in code (tests).
    networks: frozenset[str] = frozenset()
    # Set with `emergency`; the defaults of the emergency section when built in code.
    emergency_guardrails: EmergencyGuardrails = EmergencyGuardrails()
    # (agency, person) pairs whose signatures put it in force; empty: any signer of every party.
    signatories: tuple[tuple[str, str], ...] = ()
    party_set: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "party_set", frozenset(self.parties))

    def in_force(self, now: date) -> bool:
        return self.effective_from <= now < self.review_by

    @property
    def all_permits(self) -> tuple[Permit, ...]:
        """Permits in declaration order, the emergency permit last."""
        return self.permits + ((self.emergency,) if self.emergency else ())

    def declares(self, purpose: str) -> bool:
        return purpose in self.purposes or (
            self.emergency is not None and purpose in self.emergency.purposes
        )

    def rule_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.all_permits) + tuple(d.id for d in self.denies)


@dataclass(frozen=True, slots=True)
class Protocol:
    """How a network works its cases (its file's `protocol:`; each part left out takes its default)."""

    cadence: Duration
    chair: str | None  # the chairing agency; None: the coordinator
    triage_within: tuple[tuple[str, Duration], ...]  # by urgency
    assign_within: tuple[tuple[str, Duration], ...]
    reviews_after_closure: tuple[Duration, ...]
    repeat_window: Duration
    action_statuses: tuple[str, ...]
    reassessment_by: tuple[str, ...]

    def triage_deadline(self, urgency: str) -> Duration | None:
        return dict(self.triage_within).get(urgency)

    def assign_deadline(self, urgency: str) -> Duration | None:
        return dict(self.assign_within).get(urgency)

    def to_dict(self) -> dict[str, object]:
        return {
            "meetings": {"cadence": self.cadence.iso(), "chair": self.chair},
            "deadlines": {
                "triage": {urgency: d.iso() for urgency, d in self.triage_within},
                "assign": {urgency: d.iso() for urgency, d in self.assign_within},
            },
            "reviews_after_closure": [d.iso() for d in self.reviews_after_closure],
            "repeat_referral_window": self.repeat_window.iso(),
            "action_statuses": list(self.action_statuses),
            "reassessment_by": list(self.reassessment_by),
        }


def protocol_of(document: ProtocolDocument) -> Protocol:
    """A network file's `protocol:` (validated), as the model the clocks and meetings read."""
    return Protocol(
        cadence=parse_duration(document.meetings.cadence),
        chair=document.meetings.chair,
        # An urgency a file leaves out keeps its default deadline: every urgency has one.
        triage_within=_by_urgency(PROTOCOL_DEFAULTS["triage"], document.deadlines.triage),
        assign_within=_by_urgency(PROTOCOL_DEFAULTS["assign"], document.deadlines.assign),
        reviews_after_closure=tuple(parse_duration(d) for d in document.reviews_after_closure),
        repeat_window=parse_duration(document.repeat_referral_window),
        action_statuses=tuple(document.action_statuses),
        reassessment_by=tuple(document.reassessment_by),
    )


def _by_urgency(defaults: Mapping[str, str], declared: Mapping[str, str]) -> tuple[tuple[str, Duration], ...]:
    return tuple((urgency, parse_duration(text)) for urgency, text in {**defaults, **declared}.items())


DEFAULT_PROTOCOL = protocol_of(ProtocolDocument())
"""An implicit network's, and what each part a network file leaves out takes."""


@dataclass(frozen=True, slots=True)
class Contact:
    """A named party of the record of processing and how to reach it; `agency` for a joint controller."""

    name: str
    contact: str
    address: str | None = None
    agency: str | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer to a third country (`country`) or an international organisation (`country` None)."""

    recipient: str
    country: str | None
    safeguard: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Accountability:
    """A network file's controller, joint controllers, representative, DPO and transfers (Art. 30(1)(a), (e)).

    `transfers` None: the file does not say; an empty tuple: it says `none`.
    """

    controller: Contact | None = None
    joint_controllers: tuple[Contact, ...] = ()
    representative: Contact | None = None
    dpo: Contact | None = None
    transfers: tuple[Transfer, ...] | None = None


@dataclass(frozen=True, slots=True)
class Conduct:
    """A network's code of conduct at one version: its text by language, and the hash people accept.

    `content_hash` covers every language's text, so a changed text needs accepting again even if the
    file's version was not raised.
    """

    version: int
    texts: tuple[tuple[str, str], ...]  # (language, Markdown text), in the file's order
    content_hash: str

    def text_for(self, language: str, fallbacks: tuple[str, ...] = ()) -> tuple[str, str]:
        """(language, text): the language asked for, else the first fallback held, else the first text."""
        held = dict(self.texts)
        for candidate in (language, *fallbacks):
            if candidate in held:
                return candidate, held[candidate]
        return self.texts[0]


@dataclass(frozen=True, slots=True)
class Network:
    """A prevention network: its coordinator agency, members and agreements."""

    id: str
    name: str
    locales: tuple[str, ...]
    coordinator: str | None  # None: an implicit network (an agreement naming none declared)
    members: frozenset[str]
    agreements: tuple[str, ...]
    source: str | None
    protocol: Protocol = DEFAULT_PROTOCOL
    accountability: Accountability = Accountability()
    conduct: Conduct | None = None
    # Synthetic, for practice: nothing links, moves or discloses between it and a real network.
    training: bool = False

    @property
    def chair(self) -> str | None:
        return self.protocol.chair or self.coordinator

    def to_dict(self) -> dict[str, object]:
        protocol = self.protocol.to_dict()
        protocol["meetings"] = {**protocol["meetings"], "chair": self.chair}  # type: ignore[dict-item]
        return {
            "id": self.id,
            "name": self.name,
            "locales": list(self.locales),
            "coordinator": self.coordinator,
            "members": sorted(self.members),
            "agreements": list(self.agreements),
            "protocol": protocol,
            "training": self.training,
        }
