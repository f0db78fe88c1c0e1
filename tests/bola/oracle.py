"""An independent reading of the agreements: who may read which fields, and who may change what.

Written from policies/README.md and the YAML text alone, with `yaml.safe_load`; it imports
nothing from `app.policy`, so a bug in the engine cannot hide here too.  For reads it computes
an UPPER BOUND: the union of the views of every matching permit no deny cancels (the engine
picks one of them, never more).  For changes it encodes issue 11's rule: a party to an
agreement in force of the record's network, holding the relation the action needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

# policies/README.md, "Referral fields" (the vocabulary views are written in).
SUBJECT_FIELDS = frozenset({
    "subject.id", "subject.given_name", "subject.family_name", "subject.date_of_birth",
    "subject.gender", "subject.phone", "subject.email", "subject.address", "subject.identifiers",
    "subject.ethnicity", "subject.religion", "subject.language", "subject.age_band", "subject.district",
})
REFERRAL_FIELDS = frozenset({
    "id", "schema", "referring_agency", "referring_person", "concerns", "vulnerability_factors",
    "protective_factors", "risk_level", "urgency", "consent", "requested_services", "intervention_type",
    "narrative", "do_not_contact", "status", "status_history", "outcome", "assigned_agencies",
    "created_at", "updated_at", "code_system", "original_codes",
}) | SUBJECT_FIELDS
NOTE_CLASSIFICATIONS = ("shared", "restricted", "health", "police", "education", "social_care")
EMERGENCY = "emergency"
# Issue 11, "Emergency access with guardrails": the defaults when a section does not say.
EMERGENCY_DEFAULT_RELATIONS = ("owner", "referrer", "assigned", "coordinator")
EMERGENCY_DEFAULT_EXCLUDED = ("closed", "withdrawn")

SUBJECT_ACCESS = "subject_access"  # policies/README.md, "Subject-access reports"
NOTE_WRITER_ROLES = frozenset({"referrer", "caseworker", "coordinator"})  # "Who may change what"

# Issue 11, "Writes decided like reads" (policies/README.md table): the relation each change needs.
COORDINATOR_TARGETS = frozenset({"triaged", "accepted", "declined", "assigned", "closed", "transferred"})

# The case conference (policies/README.md, `when: {invited: …}` and the network's protocol; the routes'
# own descriptions in openapi.yaml): reads through a meeting state this purpose; the chair (the protocol's
# `meetings.chair`, by default the coordinator, calling with the coordinator role) schedules, edits the
# agenda, minutes and closes; an action is set by the chair, the referring agency or an assigned agency,
# its status changed by its owner agency or the chair, and cancelled by the chair alone.
CONFERENCE = "case_conference"
ACTION_SETTERS = frozenset({"owner", "referrer", "assigned"})
CHAIR_ONLY_ACTION_STATUSES = frozenset({"cancelled"})


@dataclass(frozen=True, slots=True)
class Caller:
    client_id: str
    agency: str
    sector: str
    roles: frozenset[str]
    # The courses the acting person holds (README: `requires: {training: …}`); None: every course, as the
    # demo's clients and people hold the one the demo requires.
    trained: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Rec:
    """A referral as the oracle sees it: the attributes agreements test."""

    id: str
    network: str
    owner: str
    status: str
    consent: str
    risk_level: str
    assigned: frozenset[str] = frozenset()
    subject_id: str = ""
    urgency: str = ""
    intervention_type: str | None = None
    concerns: frozenset[str] = frozenset()
    # Read through a meeting's agenda item the caller's agency is invited to, the meeting open.
    invited: bool = False

    def attributes(self) -> dict[str, str | frozenset[str] | bool]:
        found: dict[str, str | frozenset[str] | bool] = {
            "consent": self.consent, "status": self.status, "risk_level": self.risk_level,
            "urgency": self.urgency, "concerns": self.concerns, "invited": self.invited,
        }
        if self.intervention_type is not None:
            found["intervention_type"] = self.intervention_type
        return found


@dataclass(slots=True)
class AgendaItem:
    """An agenda item as the matrix scheduled it: its referral and the agencies invited to it."""

    number: int
    referral_id: str
    invited: frozenset[str]


@dataclass(slots=True)
class Meeting:
    """A case-conference meeting as the matrix made it (what it sent, not what the service says)."""

    id: str
    network: str
    open: bool = True
    items: dict[int, AgendaItem] = field(default_factory=dict)


@dataclass(slots=True)
class Action:
    id: str
    referral_id: str
    network: str
    owner: str
    status: str = "open"


@dataclass(frozen=True, slots=True)
class Agreement:
    id: str
    networks: frozenset[str]
    parties: frozenset[str]
    effective_from: date
    review_by: date
    purposes: frozenset[str]
    views: Mapping[str, Any]
    rules: tuple[Mapping[str, Any], ...]
    denies: tuple[Mapping[str, Any], ...]
    emergency: Mapping[str, Any] | None
    requires: frozenset[str] = frozenset()  # courses every recipient of every permit needs

    def in_force(self, today: date) -> bool:
        return self.effective_from <= today < self.review_by


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    coordinator: str | None
    members: frozenset[str]
    # The protocol's `reassessment_by`; a file that says nothing gets the documented default.
    reassessment_by: frozenset[str] = frozenset({"coordinator", "owner"})
    # The protocol's `meetings.chair`; a file that says nothing: the coordinator (policies/README.md).
    chair: str | None = None


@dataclass
class Oracle:
    agreements: list[Agreement]
    networks: dict[str, Network]
    today: date
    _view_cache: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path, today: date) -> Oracle:
        agreements = []
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            doc = yaml.safe_load(path.read_text())
            if not isinstance(doc, dict) or "agreement" not in doc:
                continue
            networks = doc.get("networks") or [doc.get("network") or doc["agreement"]]
            agreements.append(Agreement(
                id=doc["agreement"],
                networks=frozenset(networks),
                parties=frozenset(doc.get("parties") or ()),
                effective_from=_date(doc["effective_from"]),
                review_by=_date(doc["review_by"]),
                purposes=frozenset(doc.get("purposes") or {}),
                views=doc.get("views") or {},
                rules=tuple(doc.get("rules") or ()),
                denies=tuple(doc.get("deny") or ()),
                emergency=doc.get("emergency"),
                requires=_courses(doc.get("requires")),
            ))
        networks = {}
        for path in sorted((folder / "networks").glob("*.y*ml")):
            doc = yaml.safe_load(path.read_text())
            protocol = doc.get("protocol") or {}
            meetings = protocol.get("meetings") or {}
            networks[doc["network"]] = Network(doc["network"], doc.get("coordinator"),
                                               frozenset(doc.get("members") or ()),
                                               frozenset(protocol.get("reassessment_by") or {"coordinator", "owner"}),
                                               meetings.get("chair") or doc.get("coordinator"))
        return cls(agreements, networks, today)

    # -- the plain vocabulary ------------------------------------------------------------

    def in_force_for(self, caller: Caller, network: str | None = None) -> list[Agreement]:
        """Agreements in force to which the caller's agency is a party (deciding `network`)."""
        return [
            a for a in self.agreements
            if a.in_force(self.today) and caller.agency in a.parties
            and (network is None or network in a.networks)
        ]

    def purposes(self, caller: Caller) -> frozenset[str]:
        """Every purpose declared by an agreement in force the caller is a party to."""
        found: set[str] = set()
        for agreement in self.in_force_for(caller):
            found |= agreement.purposes
        return frozenset(found)

    def all_purposes(self) -> list[str]:
        return sorted({p for a in self.agreements for p in a.purposes})

    def relations(self, caller: Caller, rec: Rec) -> frozenset[str]:
        found = set()
        if caller.agency == rec.owner:
            found |= {"owner", "referrer"}
        if caller.agency in rec.assigned:
            found.add("assigned")
        return frozenset(found)

    def note_relations(self, caller: Caller, rec: Rec, author: str) -> frozenset[str]:
        """For a note, `owner` is the agency that wrote it ("An agency reads the notes it wrote")."""
        found = set(self.relations(caller, rec) - {"owner"})
        if caller.agency == author:
            found.add("owner")
        return frozenset(found)

    def is_coordinator(self, caller: Caller, network: str) -> bool:
        declared = self.networks.get(network)
        return declared is not None and declared.coordinator == caller.agency and "coordinator" in caller.roles

    def party_in_force(self, caller: Caller, network: str) -> bool:
        return bool(self.in_force_for(caller, network))

    # -- views -----------------------------------------------------------------------------

    def view_kind(self, agreement: Agreement, name: str) -> str:
        spec = agreement.views.get(name)
        if isinstance(spec, dict) and "notes" in spec:
            return "note"
        if isinstance(spec, dict) and "aggregate" in spec:
            return "statistics"
        return "referral"

    def referral_fields(self, agreement: Agreement, name: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        key = (agreement.id, name)
        if key in self._view_cache:
            return self._view_cache[key]
        if name in seen:
            return frozenset()
        spec = agreement.views.get(name)
        if isinstance(spec, list):
            result = _expand(spec)
        elif isinstance(spec, dict) and not ({"notes", "aggregate"} & set(spec)):
            result = frozenset()
            for included in spec.get("include") or ():
                result |= self.referral_fields(agreement, included, seen | {name})
            result |= _expand(spec.get("fields") or ())
            result -= _expand(spec.get("exclude") or ())
        else:
            result = frozenset()
        self._view_cache[key] = result
        return result

    def classifications(self, agreement: Agreement, name: str) -> frozenset[str]:
        spec = agreement.views.get(name)
        if isinstance(spec, dict) and "notes" in spec:
            return frozenset((spec["notes"] or {}).get("classification") or ())
        return frozenset()

    def dimensions(self, agreement: Agreement, name: str) -> frozenset[str]:
        spec = agreement.views.get(name)
        if isinstance(spec, dict) and "aggregate" in spec:
            return frozenset(spec["aggregate"] or ())
        return frozenset()

    def _deny_items(self, agreement: Agreement, deny: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
        """(referral fields, note classifications) a deny covers."""
        view = deny.get("view")
        if isinstance(view, str):
            return self.referral_fields(agreement, view), self.classifications(agreement, view)
        if isinstance(view, list):
            return _expand(view), frozenset()
        if isinstance(view, dict) and "notes" in view:
            return frozenset(), frozenset((view["notes"] or {}).get("classification") or ())
        if isinstance(view, dict):
            fields = frozenset[str]()
            for included in view.get("include") or ():
                fields |= self.referral_fields(agreement, included)
            fields |= _expand(view.get("fields") or ())
            fields -= _expand(view.get("exclude") or ())
            return fields, frozenset()
        return frozenset(), frozenset()

    # -- matching --------------------------------------------------------------------------

    @staticmethod
    def audience(to: Mapping[str, Any] | None, caller: Caller, relations: frozenset[str], *, deny: bool) -> bool:
        if not to:
            return deny  # a permit with no `to` keys matches no one; a deny with none, everyone
        for key, wanted in to.items():
            values = {wanted} if isinstance(wanted, str) else set(wanted or ())
            if key == "agencies" and caller.agency not in values:
                return False
            if key == "sectors" and caller.sector not in values:
                return False
            if key == "roles" and not (caller.roles & values):
                return False
            if key == "relation" and not (relations & values):
                return False
        return True

    @staticmethod
    def conditions(when: Mapping[str, Any] | None, attributes: Mapping[str, Any], *, deny: bool) -> bool:
        for key, allowed in (when or {}).items():
            value = attributes.get(key)
            if isinstance(allowed, bool):  # `invited: true|false`: holds when the read's matches
                if value is None:
                    if deny:
                        continue
                    return False
                if value is not allowed:
                    return False
                continue
            if not value:  # missing, or no concerns at all
                if deny:
                    continue  # a missing attribute satisfies a deny
                return False
            # A referral's concerns are several: one listed is enough.
            values = {value} if isinstance(value, str) else set(value)
            if not values & set(allowed or ()):
                return False
        return True

    def _permits(
        self, caller: Caller, network: str, relations: frozenset[str], purpose: str | None,
        attributes: Mapping[str, Any], kind: str,
    ) -> list[tuple[Agreement, Mapping[str, Any]]]:
        if not purpose or "admin" in caller.roles:  # README: admin never reads case data
            return []
        found = []
        for agreement in self.in_force_for(caller, network):
            for rule in agreement.rules:
                if (self.view_kind(agreement, rule["view"]) == kind
                        and purpose in (rule.get("purposes") or ())
                        and self.audience(rule.get("to"), caller, relations, deny=False)
                        and self.conditions(rule.get("when"), attributes, deny=False)
                        and self.trained(caller, agreement.requires | _courses(rule.get("requires")))):
                    found.append((agreement, rule))
        return found

    @staticmethod
    def trained(caller: Caller, courses: frozenset[str]) -> bool:
        """README: a permit requiring a course the caller does not hold, current, grants nothing."""
        return caller.trained is None or courses <= caller.trained

    def _denies(
        self, caller: Caller, network: str, relations: frozenset[str], purpose: str | None,
        attributes: Mapping[str, Any],
    ) -> list[tuple[frozenset[str], frozenset[str]]]:
        found = []
        for agreement in self.in_force_for(caller, network):
            for deny in agreement.denies:
                purposes = deny.get("purposes")
                if purposes is not None and purpose not in purposes:
                    continue
                if not self.audience(deny.get("to"), caller, relations, deny=True):
                    continue
                if not self.conditions(deny.get("when"), attributes, deny=True):
                    continue
                found.append(self._deny_items(agreement, deny))
        return found

    # -- reads -----------------------------------------------------------------------------

    def referral_bound(self, caller: Caller, rec: Rec, purpose: str | None) -> frozenset[str]:
        """Every field some matching, uncancelled permit grants this caller on this record."""
        return self.bound_for(caller, rec.network, self.relations(caller, rec), rec.attributes(), purpose)

    def bound_for(
        self, caller: Caller, network: str, relations: frozenset[str], attributes: Mapping[str, Any],
        purpose: str | None,
    ) -> frozenset[str]:
        denied = self._denies(caller, network, relations, purpose, attributes)
        bound: set[str] = set()
        for agreement, rule in self._permits(caller, network, relations, purpose, attributes, "referral"):
            fields = self.referral_fields(agreement, rule["view"])
            if any(fields & d_fields for d_fields, _ in denied):
                continue
            bound |= fields
        return frozenset(bound)

    def emergency_bound(self, caller: Caller, rec: Rec) -> frozenset[str]:
        """The emergency section's view of the record's network (only under an active grant)."""
        bound: set[str] = set()
        if "admin" in caller.roles:
            return frozenset()
        for agreement in self.in_force_for(caller, rec.network):
            if agreement.emergency and agreement.emergency.get("view") and self.trained(caller, agreement.requires):
                bound |= self.referral_fields(agreement, agreement.emergency["view"])
        return frozenset(bound)

    def note_granted(self, caller: Caller, rec: Rec, author: str, classification: str, purpose: str | None) -> bool:
        attributes = {**rec.attributes(), "classification": classification}
        return self.note_granted_for(caller, rec.network, self.note_relations(caller, rec, author), attributes,
                                     purpose)

    def note_granted_for(
        self, caller: Caller, network: str, relations: frozenset[str], attributes: Mapping[str, Any],
        purpose: str | None,
    ) -> bool:
        classification = attributes.get("classification", "")
        denied = self._denies(caller, network, relations, purpose, attributes)
        if any(classification in d_classes for _, d_classes in denied):
            return False
        return any(
            classification in self.classifications(agreement, rule["view"])
            for agreement, rule in self._permits(caller, network, relations, purpose, attributes, "note")
        )

    def statistics_permits(
        self, caller: Caller, purpose: str | None, network: str | None = None
    ) -> list[tuple[Agreement, str]]:
        """(agreement, view name) of every statistics permit open to the caller for the purpose
        (of the network's figures, when one is named)."""
        if "admin" in caller.roles:
            return []
        return [
            (agreement, rule["view"])
            for agreement in self.in_force_for(caller, network)
            for rule in agreement.rules
            if self.view_kind(agreement, rule["view"]) == "statistics"
            and purpose in (rule.get("purposes") or ())
            and self.audience(rule.get("to"), caller, frozenset(), deny=False)
            and self.conditions(rule.get("when"), {}, deny=False)
        ]

    def statistics_bound(self, caller: Caller, purpose: str | None) -> tuple[frozenset[str], frozenset[str]]:
        """(dimensions, networks) of every statistics permit open to the caller for the purpose."""
        dims: set[str] = set()
        networks: set[str] = set()
        for agreement, view in self.statistics_permits(caller, purpose):
            dims |= self.dimensions(agreement, view)
            networks |= agreement.networks
        return frozenset(dims), frozenset(networks)

    # -- changes ---------------------------------------------------------------------------

    def _change(self, caller: Caller, rec: Rec, needs: Iterable[str]) -> bool:
        if "admin" in caller.roles or not self.party_in_force(caller, rec.network):
            return False
        held = set(self.relations(caller, rec))
        if self.is_coordinator(caller, rec.network):
            held.add("coordinator")
        if "referrer" not in caller.roles:
            held.discard("referrer")  # the referrer relation acts through the referrer role
        if "caseworker" not in caller.roles:
            held.discard("assigned_caseworker")
        elif "assigned" in held:
            held.add("assigned_caseworker")
        return bool(held & set(needs))

    def may_transition(self, caller: Caller, rec: Rec, target: str) -> bool:
        if target in COORDINATOR_TARGETS:
            return self._change(caller, rec, {"coordinator"})
        if target == "in_intervention":
            return self._change(caller, rec, {"assigned_caseworker"})
        if target == "withdrawn":
            return self._change(caller, rec, {"referrer"})
        return False

    def may_consent(self, caller: Caller, rec: Rec) -> bool:
        return self._change(caller, rec, {"referrer", "coordinator"})

    def may_reassess(self, caller: Caller, rec: Rec) -> bool:
        """The relations the network's protocol names, each acting through its role (README)."""
        network = self.networks.get(rec.network)
        named = network.reassessment_by if network is not None else frozenset({"coordinator", "owner"})
        if "admin" in caller.roles or not self.party_in_force(caller, rec.network):
            return False
        held = set()
        if self.is_coordinator(caller, rec.network):
            held.add("coordinator")
        if "referrer" in caller.roles:
            held |= self.relations(caller, rec) & {"owner", "referrer"}
        if "caseworker" in caller.roles:
            held |= self.relations(caller, rec) & {"assigned"}
        return bool(held & named)

    def may_note(self, caller: Caller, rec: Rec) -> bool:
        if not caller.roles & NOTE_WRITER_ROLES:
            return False
        return self._change(caller, rec, {"owner", "assigned", "coordinator"})

    def may_hold(self, caller: Caller, rec: Rec) -> bool:
        """Place, lift or list the legal holds of a referral: the network's coordinator."""
        return self._change(caller, rec, {"coordinator"})

    def may_erase(self, caller: Caller, recs: Iterable[Rec]) -> bool:
        """Strictest reading: the coordinator of every network holding a referral about the person."""
        recs = list(recs)
        return bool(recs) and all(self._change(caller, r, {"coordinator"}) for r in recs)

    def network_agencies(self, network: str) -> frozenset[str]:
        """A network's members: declared, its coordinator, and the parties of its agreements."""
        declared = self.networks.get(network)
        found = set(declared.members) if declared else set()
        if declared and declared.coordinator:
            found.add(declared.coordinator)
        for agreement in self.agreements:
            if network in agreement.networks and len(agreement.networks) == 1:
                found |= agreement.parties
        return frozenset(found)

    def may_report_subject(self, caller: Caller, recs: Iterable[Rec], purpose: str | None) -> bool:
        """A subject-access report is a read about the person, for the purpose `subject_access`:
        every referral about the person must be granted to the caller for it."""
        recs = list(recs)
        return purpose == SUBJECT_ACCESS and bool(recs) and all(
            self.referral_bound(caller, r, purpose) for r in recs
        )

    def may_review(self, caller: Caller, rec: Rec) -> bool:
        """Emergency grants are listed, reviewed and flags cleared by auditors party to the network."""
        return "auditor" in caller.roles and self.party_in_force(caller, rec.network)

    def may_emergency(self, caller: Caller, rec: Rec) -> bool:
        """Break the glass: the emergency section of an agreement in force of the record's network."""
        if "admin" in caller.roles:
            return False
        for agreement in self.in_force_for(caller, rec.network):
            section = agreement.emergency
            if not section:
                continue
            if section.get("roles") and not (caller.roles & set(section["roles"])):
                continue
            if section.get("sectors") and caller.sector not in section["sectors"]:
                continue
            relations = set(self.relations(caller, rec))
            if self.is_coordinator(caller, rec.network):
                relations.add("coordinator")
            wanted = section.get("relations") or EMERGENCY_DEFAULT_RELATIONS
            if not relations & set(wanted):
                continue
            excluded = section.get("exclude_statuses") or section.get("excluded_statuses") \
                or EMERGENCY_DEFAULT_EXCLUDED
            if rec.status in excluded:
                continue
            return True
        return False

    # -- the case conference ------------------------------------------------------------------

    def is_chair(self, caller: Caller, network: str) -> bool:
        """The network's chair agency, calling with the coordinator role, a party to an agreement in force."""
        declared = self.networks.get(network)
        return (
            declared is not None and declared.chair is not None and declared.chair == caller.agency
            and "coordinator" in caller.roles and "admin" not in caller.roles and self.party_in_force(caller, network)
        )

    def sits_at(self, caller: Caller, meeting: Meeting, item: AgendaItem) -> bool:
        """At this item: the chair, or an agency invited to it (a party to an agreement in force)."""
        if "admin" in caller.roles:
            return False
        return self.is_chair(caller, meeting.network) or (
            caller.agency in item.invited and self.party_in_force(caller, meeting.network)
        )

    def seated(self, caller: Caller, meeting: Meeting) -> bool:
        """At the meeting at all: its chair, or invited to one of its items."""
        return self.is_chair(caller, meeting.network) or any(
            self.sits_at(caller, meeting, item) for item in meeting.items.values()
        )

    def agenda_bound(self, caller: Caller, meeting: Meeting, item: AgendaItem, rec: Rec,
                     purpose: str | None) -> frozenset[str]:
        """What a read of the item's referral through the meeting may carry: the caller's grants for
        `case_conference`, the record `invited` while the meeting is open; nothing for anyone not at
        the item or for any other purpose."""
        if purpose != CONFERENCE or not self.sits_at(caller, meeting, item):
            return frozenset()
        return self.referral_bound(caller, replace(rec, invited=meeting.open), purpose)

    def meetings_listed(self, caller: Caller, network: str, meetings: Iterable[Meeting]) -> frozenset[str] | None:
        """The meetings of the network the caller may see listed (no agenda, nothing of the cases):
        every one for the chair, else those it is invited to an item of; None: the list is refused
        (not a party to an agreement in force of the network, or an operator)."""
        if "admin" in caller.roles or not self.party_in_force(caller, network):
            return None
        chair = self.is_chair(caller, network)
        return frozenset(
            m.id for m in meetings
            if m.network == network and (chair or any(caller.agency in i.invited for i in m.items.values()))
        )

    def may_chair(self, caller: Caller, network: str) -> bool:
        """Schedule, edit the agenda, record attendance and minutes, close: the chair alone."""
        return self.is_chair(caller, network)

    def agency_in_force(self, agency: str, network: str) -> bool:
        return any(a.in_force(self.today) and agency in a.parties and network in a.networks for a in self.agreements)

    def member_in_force(self, agency: str, network: str) -> bool:
        """Who may be invited to an item or own an action: a declared member, party to an agreement in force."""
        declared = self.networks.get(network)
        return declared is not None and agency in declared.members and self.agency_in_force(agency, network)

    def agenda_holds(self, network: str, recs: Iterable[Rec], invited: Iterable[str]) -> bool:
        """An agenda holds the network's own referrals only, and invites its members only: anything
        else would open a case to another network (or to an agency outside every agreement)."""
        return all(r.network == network for r in recs) and all(self.member_in_force(a, network) for a in invited)

    def may_set_action(self, caller: Caller, rec: Rec) -> bool:
        return self.is_chair(caller, rec.network) or self._change(caller, rec, ACTION_SETTERS)

    def may_set_action_status(self, caller: Caller, action: Action, status: str) -> bool:
        if "admin" in caller.roles:
            return False
        chair = self.is_chair(caller, action.network)
        if status in CHAIR_ONLY_ACTION_STATUSES:
            return chair
        return chair or (caller.agency == action.owner and self.party_in_force(caller, action.network))

    def action_readable(self, caller: Caller, rec: Rec, action: Action, purpose: str | None) -> bool:
        """A referral's actions: all of them with a view that includes `actions`; else, with any
        grant of the referral for the purpose, the ones the caller's agency owns."""
        bound = self.referral_bound(caller, rec, purpose)
        return "actions" in bound or (bool(bound) and action.owner == caller.agency)

    def may_create(self, caller: Caller, network: str | None = None) -> bool:
        """A referrer, into a network it belongs to with an agreement in force it is party to
        (`network` None: the network is left to the service to choose among the caller's own)."""
        if "referrer" not in caller.roles or "admin" in caller.roles:
            return False
        return any(
            caller.agency in self.network_agencies(n) and self.party_in_force(caller, n)
            for n in self.networks if network in (None, n)
        )


def _courses(requires: Mapping[str, Any] | None) -> frozenset[str]:
    return frozenset((requires or {}).get("training") or ())


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _expand(items: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for item in items:
        if item == "subject.*":
            out |= SUBJECT_FIELDS
        else:
            out.add(item)
    return frozenset(out)
