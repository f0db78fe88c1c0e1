"""Turn a validated agreement document into an Agreement, checking cross-references."""

from collections.abc import Iterable

from app.policy.decision import flag_value
from app.policy.documents import (
    AgreementDocument,
    AudienceDocument,
    ConditionsDocument,
    DenyDocument,
    EmergencyDocument,
    NotesViewDocument,
    PermitDocument,
    RequiresDocument,
)
from app.policy.duration import parse_duration, parse_retention
from app.policy.fields import ALL_DIMENSIONS, expand_field
from app.policy.issues import Issue, did_you_mean
from app.policy.model import (
    Agreement,
    Audience,
    Conditions,
    Deny,
    EmergencyGuardrails,
    Permit,
    ReasonRule,
    View,
)
from app.policy.overlap import deny_cancels
from app.policy.views import ViewResolver
from app.policy.vocabulary import EMERGENCY_PURPOSE, EMERGENCY_RULE_ID, FLAGS, RECORD_VALUES, RecordKind
from app.policy.yaml_nodes import Path, format_path

CONDITION_KEYS = ("consent", "status", "risk_level", "classification", "intervention_type", "urgency", "concerns")
NETWORK_CONDITION = "network"


def build_audience(document: AudienceDocument) -> Audience:
    relation = document.relation
    relations = [relation] if isinstance(relation, str) else relation
    return Audience(
        roles=_frozen(document.roles),
        sectors=_frozen(document.sectors),
        agencies=_frozen(document.agencies),
        relations=_frozen(relations),
    )


def build_conditions(document: ConditionsDocument | None) -> Conditions:
    if document is None:
        return ()
    given = ((key, getattr(document, key)) for key in CONDITION_KEYS)
    listed = tuple((key, frozenset(values)) for key, values in given if values is not None)
    flags = ((key, getattr(document, key)) for key in sorted(FLAGS))
    return listed + tuple((key, frozenset({flag_value(value)})) for key, value in flags if value is not None)


def _frozen(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


class AgreementBuilder:
    """Collects every issue in one pass so an author sees all problems at once."""

    def __init__(
        self,
        document: AgreementDocument,
        known_fields: frozenset[str],
        known_agencies: set[str] | frozenset[str] | None,
    ) -> None:
        self.doc = document
        self.known_fields = known_fields
        self.known_agencies = known_agencies
        self.issues: list[Issue] = []
        self._ids: dict[str, Path] = {}

    def error(self, path: Path, reason: str) -> None:
        self.issues.append(Issue(path, reason))

    def warn(self, path: Path, reason: str) -> None:
        self.issues.append(Issue(path, reason, "warning"))

    def build(self, content_hash: str, source: str) -> Agreement | None:
        doc = self.doc
        if doc.effective_from >= doc.review_by:
            self.error(
                ("review_by",),
                f"review_by {doc.review_by} must be after effective_from {doc.effective_from}",
            )
        self._check_parties()
        if EMERGENCY_PURPOSE in doc.purposes:
            self.error(
                ("purposes", EMERGENCY_PURPOSE),
                "purpose 'emergency' is reserved: declare an emergency section instead",
            )
        dimensions = self._allowed_dimensions()
        resolver = ViewResolver(doc.views, self.known_fields, doc.statistics, dimensions)
        views = resolver.resolve_all()
        self.issues.extend(resolver.issues)
        self._broken_views = resolver.broken
        permits = tuple(
            p for i, rule in enumerate(doc.rules) if (p := self._permit(i, rule, views)) is not None
        )
        denies = tuple(
            d for i, rule in enumerate(doc.deny) if (d := self._deny(i, rule, views)) is not None
        )
        emergency = self._emergency(doc.emergency, views) if doc.emergency else None
        guardrails = self._guardrails(doc.emergency)
        self._check_national(views)
        self._check_signatories()
        if any(issue.level == "error" for issue in self.issues):
            return None
        self._warn_cancelled(permits, denies)
        return Agreement(
            id=doc.agreement,
            version=doc.version,
            title=doc.title,
            effective_from=doc.effective_from,
            review_by=doc.review_by,
            controller_contact=doc.controller_contact,
            parties=tuple(doc.parties),
            purposes=dict(doc.purposes),
            views=views,
            permits=permits,
            denies=denies,
            emergency=emergency,
            statistics_min_cell=doc.statistics.min_cell,
            statistics_dimensions=dimensions,
            content_hash=content_hash,
            source=source,
            networks=self.networks,
            emergency_guardrails=guardrails,
            signatories=tuple((s.agency, s.person) for s in doc.signatories or ()),
        )

    def _check_signatories(self) -> None:
        """A signatory signs for a party, each party has one, and nobody is named twice."""
        named = self.doc.signatories or []
        seen: set[tuple[str, str]] = set()
        for i, signatory in enumerate(named):
            if signatory.agency not in self.doc.parties:
                self.error(("signatories", i, "agency"), f"signatory agency {signatory.agency!r} is not a party")
            elif (signatory.agency, signatory.person) in seen:
                self.error(("signatories", i, "person"), f"signatory {signatory.person!r} is named twice")
            seen.add((signatory.agency, signatory.person))
        unsigned = [p for p in self.doc.parties if named and p not in {s.agency for s in named}]
        if unsigned:
            self.error(("signatories",), f"no signatory for the parties {', '.join(unsigned)}")

    @property
    def networks(self) -> frozenset[str]:
        doc = self.doc
        if doc.networks:
            return frozenset(doc.networks)
        return frozenset({doc.network or doc.agreement})

    def _scoped(self, when: Conditions) -> Conditions:
        """Every rule decides only records of the agreement's own network(s)."""
        return (*when, (NETWORK_CONDITION, self.networks))

    def _check_national(self, views: dict[str, View]) -> None:
        doc = self.doc
        if doc.network is not None and doc.networks is not None:
            self.error(("networks",), "name either network or networks, not both")
        if doc.networks is None:
            return
        for name, view in views.items():
            if view.kind != "statistics":
                self.error(
                    ("views", name),
                    "an agreement across networks shares aggregates only: statistics views only",
                )
        if doc.emergency is not None:
            self.error(("emergency",), "an agreement across networks has no emergency section")

    def _check_parties(self) -> None:
        seen: set[str] = set()
        for index, party in enumerate(self.doc.parties):
            if party in seen:
                self.error(("parties", index), f"party {party!r} is listed twice")
            seen.add(party)
            if self.known_agencies is not None and party not in self.known_agencies:
                self.warn(
                    ("parties", index), f"unknown party {party!r}: no such agency is registered"
                )

    def _allowed_dimensions(self) -> frozenset[str]:
        listed = self.doc.statistics.dimensions
        if listed is None:
            return ALL_DIMENSIONS
        for index, dimension in enumerate(listed):
            if dimension not in ALL_DIMENSIONS:
                hint = did_you_mean(dimension, ALL_DIMENSIONS)
                self.error(
                    ("statistics", "dimensions", index),
                    f"unknown statistics dimension {dimension!r}{hint}",
                )
        return frozenset(listed) & ALL_DIMENSIONS

    def _claim_id(self, rule_id: str, at: Path) -> bool:
        if rule_id == EMERGENCY_RULE_ID:
            self.error(at, "rule id 'emergency' is reserved for the emergency section")
            return False
        if rule_id in self._ids:
            first = format_path(self._ids[rule_id][:-1])
            self.error(at, f"duplicated rule id {rule_id!r} (first used by {first})")
            return False
        self._ids[rule_id] = at
        return True

    def _purposes(self, purposes: list[str], at: Path, *, allow_emergency: bool) -> bool:
        ok = True
        declared = set(self.doc.purposes)
        for index, purpose in enumerate(purposes):
            if purpose == EMERGENCY_PURPOSE and allow_emergency and self.doc.emergency:
                continue
            if purpose == EMERGENCY_PURPOSE:
                reason = "purpose 'emergency' belongs to the emergency section, not to rules"
                self.error(at + (index,), reason)
                ok = False
            elif purpose not in declared:
                listed = ", ".join(sorted(declared))
                hint = did_you_mean(purpose, declared)
                self.error(
                    at + (index,),
                    f"undeclared purpose {purpose!r}{hint}: declared purposes are {listed}",
                )
                ok = False
        return ok

    def _view(self, name: str, views: dict[str, View], at: Path) -> View | None:
        if name in views:
            return views[name]
        if name not in self._broken_views:
            hint = did_you_mean(name, set(self.doc.views))
            self.error(at, f"unknown view {name!r}{hint}")
        return None

    def _permit(self, index: int, rule: PermitDocument, views: dict[str, View]) -> Permit | None:
        at: Path = ("rules", index)
        ok = self._claim_id(rule.id, at + ("id",))
        ok = self._purposes(rule.purposes, at + ("purposes",), allow_emergency=False) and ok
        view = self._view(rule.view, views, at + ("view",))
        if view is not None and view.special and rule.special_category_condition is None:
            special = ", ".join(sorted(view.special))
            self.error(
                at + ("view",),
                f"view {view.name} lets special-category data leave ({special}):"
                " rule needs a special_category_condition (GDPR Art. 9(2))",
            )
            ok = False
        when = build_conditions(rule.when)
        audience = build_audience(rule.to)
        if audience.agencies and not audience.agencies <= set(self.doc.parties):
            outside = ", ".join(sorted(audience.agencies - set(self.doc.parties)))
            self.warn(
                at + ("to", "agencies"),
                f"rule {rule.id} names agencies that are not parties: {outside}",
            )
        if not ok or view is None:
            return None
        return Permit(
            id=rule.id,
            agreement_id=self.doc.agreement,
            order=index,
            audience=audience,
            view=view,
            purposes=frozenset(rule.purposes),
            when=self._scoped(when),
            legal_basis=rule.legal_basis,
            special_category_condition=rule.special_category_condition,
            retention=parse_retention(rule.retention),
            requires_training=self._training(rule.requires),
        )

    def _training(self, rule: RequiresDocument | None) -> frozenset[str]:
        """The agreement's required courses and the rule's own."""
        courses = set(self.doc.requires.training) if self.doc.requires else set()
        return frozenset(courses | set(rule.training if rule else ()))

    def _deny(self, index: int, rule: DenyDocument, views: dict[str, View]) -> Deny | None:
        at: Path = ("deny", index)
        ok = self._claim_id(rule.id, at + ("id",))
        if rule.purposes is not None:
            ok = self._purposes(rule.purposes, at + ("purposes",), allow_emergency=True) and ok
        target = self._deny_target(rule, views, at + ("view",))
        if not ok or target is None:
            return None
        kind, items, label = target
        return Deny(
            id=rule.id,
            agreement_id=self.doc.agreement,
            order=index,
            audience=build_audience(rule.to),
            kind=kind,
            items=items,
            view_label=label,
            purposes=None if rule.purposes is None else frozenset(rule.purposes),
            when=self._scoped(build_conditions(rule.when)),
        )

    def _deny_target(
        self, rule: DenyDocument, views: dict[str, View], at: Path
    ) -> tuple[RecordKind, frozenset[str], str] | None:
        target = rule.view
        if isinstance(target, str):
            view = self._view(target, views, at)
            return None if view is None else (view.kind, view.items, view.name)
        if isinstance(target, NotesViewDocument):
            classes = frozenset(target.notes.classification)
            return "note", classes, "notes: " + ", ".join(sorted(classes))
        fields: set[str] = set()
        ok = True
        for index, pattern in enumerate(target):
            expanded = expand_field(pattern, self.known_fields)
            if not expanded:
                hint = did_you_mean(pattern, self.known_fields)
                self.error(at + (index,), f"unknown field {pattern!r}{hint}")
                ok = False
            fields |= expanded
        return (
            ("referral", frozenset(fields), "fields: " + ", ".join(sorted(fields))) if ok else None
        )

    def _emergency(self, section: EmergencyDocument, views: dict[str, View]) -> Permit | None:
        at: Path = ("emergency",)
        view = self._view(section.view, views, at + ("view",))
        if view is None:
            return None
        if view.kind == "statistics":
            self.error(at + ("view",), "the emergency view must be a referral or notes view")
            return None
        return Permit(
            id=EMERGENCY_RULE_ID,
            agreement_id=self.doc.agreement,
            order=len(self.doc.rules),
            audience=Audience(
                roles=_frozen(section.roles),
                sectors=_frozen(section.sectors),
                relations=frozenset(section.relations),
            ),
            view=view,
            purposes=frozenset({EMERGENCY_PURPOSE}),
            when=self._scoped(()),
            legal_basis=section.legal_basis,
            special_category_condition=section.special_category_condition if view.special else None,
            retention=parse_retention(section.retention),
            emergency_window=parse_duration(section.duration),
            requires_training=self._training(None),
        )

    def _guardrails(self, section: EmergencyDocument | None) -> EmergencyGuardrails:
        if section is None:
            return EmergencyGuardrails()
        known = RECORD_VALUES["status"]
        for index, status in enumerate(section.excluded_statuses):
            if status not in known:
                hint = did_you_mean(status, known)
                self.error(
                    ("emergency", "excluded_statuses", index),
                    f"unknown referral status {status!r}{hint}: statuses are {', '.join(sorted(known))}",
                )
        rule = section.reason
        return EmergencyGuardrails(
            excluded_statuses=frozenset(section.excluded_statuses),
            max_per_agency_per_day=section.max_per_agency_per_day,
            reason=ReasonRule(rule.min_length, rule.min_words, rule.max_char_share),
            refuse_flagged=section.refuse_flagged,
        )

    def _warn_cancelled(self, permits: tuple[Permit, ...], denies: tuple[Deny, ...]) -> None:
        for permit in permits:
            for deny in denies:
                if deny_cancels(deny, permit):
                    self.warn(
                        ("rules", permit.order, "id"),
                        f"permit {permit.id} never discloses anything: deny {deny.id} cancels it",
                    )
                    break
