"""A policy set compiled for decisions: per set of parties, rule bit masks by purpose and kind."""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from datetime import date
from typing import Generic, TypeVar

from app.policy.decision import AttributeValue, Caller, Decision
from app.policy.model import Agreement, Audience, Conditions, Deny, Permit, View
from app.policy.vocabulary import RecordKind

# Decisions are interned by content (agreement, view, rules; or deny and view; or reason),
# per policy snapshot: two generations, so at most twice this many.
DECISION_MEMO_SIZE = 4_096

Getter = Callable[[str], AttributeValue | None]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A bounded map: when the newer generation is full it replaces the older one.

    Shared between threads without a lock: each step is one dict operation, and a race
    at worst drops an entry, so an answer is worked out again.
    """

    __slots__ = ("_new", "_old", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._new: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._new.get(key)
        if value is None and self._old:
            value = self._old.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._new) >= self._size:
            self._old = self._new
            self._new = {}
        self._new[key] = value

    def clear(self) -> None:
        self._new = {}
        self._old = {}

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


def audience_matches(audience: Audience, caller: Caller) -> bool:
    """AND across the keys given, OR within each; a rule with no keys is handled by callers."""
    return not (
        (audience.agencies is not None and caller.agency_id not in audience.agencies)
        or (audience.sectors is not None and caller.sector not in audience.sectors)
        or (audience.roles is not None and audience.roles.isdisjoint(caller.roles))
        or (audience.relations is not None and audience.relations.isdisjoint(caller.relations))
    )


class CompiledView:
    """A view of one agreement, with the denies (any agreement, same kind) that overlap it."""

    __slots__ = ("abit", "agreement", "deny_mask", "items", "kind", "name", "view")

    def __init__(self, view: View, agreement: Agreement, abit: int) -> None:
        self.view = view
        self.name = view.name
        self.kind = view.kind
        self.items = view.items
        self.agreement = agreement
        self.abit = abit
        self.deny_mask = 0


Views = dict[tuple[str, str], CompiledView]  # by agreement id and view name


class PermitEntry:
    """A permit with the view it shows, and the decisions it makes when it wins alone."""

    __slots__ = ("abit", "covers", "decision", "permit", "rank", "seq", "view")

    def __init__(self, permit: Permit, view: CompiledView, seq: int, views: Views) -> None:
        self.permit = permit
        self.view = view
        self.abit = view.abit
        self.seq = seq  # declaration order: agreement id, then rules, emergency last
        self.rank = 0  # of its view: most detailed first, then agreement id, then view name
        self.decision = permitted(view, (self,))
        # The views of its agreement (same kind) it may be projected onto, when asked for.
        agreement = view.agreement
        self.covers = {
            name: permitted(views[(agreement.id, name)], (self,))
            for name, other in agreement.views.items()
            if other.kind == view.kind and other.items <= view.items
        }


class DenyEntry:
    """A deny and its bit; bits follow agreement id then declaration (lowest bit is cited)."""

    __slots__ = ("agreement", "bit", "decision", "deny", "decisions")

    def __init__(self, deny: Deny, agreement: Agreement, bit: int, names: Iterable[str]) -> None:
        self.deny = deny
        self.agreement = agreement
        self.bit = bit
        self.decision = denied(agreement, deny, None)  # when no view was asked for
        # When one of `names` (the scope's views of its kind) was asked for.
        self.decisions = {name: denied(agreement, deny, name) for name in names}


class Bucket:
    """The rules of one (purpose, record kind) as bit masks.

    Bits below the scope's `shift` are its denies; the bits above are `permits`, most
    detailed view first. Shifted down, permit masks (`groups`, `showing`, `blocked_by`)
    count from bit 0. A rule's bit is filed under each value it names for an audience
    key, and under the key's default when it does not name the key; a caller's mask is
    the AND across keys.
    """

    __slots__ = (
        "agency",
        "blocked_by",
        "conditional",
        "conditions",
        "groups",
        "in_force",
        "needs_training",
        "no_agency",
        "no_relation",
        "no_role",
        "no_rule",
        "no_rules",
        "no_sector",
        "permits",
        "relation",
        "role",
        "sector",
        "showing",
        "training",
    )

    def __init__(self, days: int) -> None:
        self.agency: dict[str, int] = {}
        self.no_agency = 0
        self.sector: dict[str, int] = {}
        self.no_sector = 0
        self.role: dict[str, int] = {}
        self.no_role = 0
        self.relation: dict[str, int] = {}
        self.no_relation = 0
        self.in_force: list[int] = [0] * days  # the rules in force, by PolicyIndex.day()
        # Record conditions: (attribute, rules allowing each value, rules not asking about
        # it, rules satisfied when it is missing); `conditional`: rules with any.
        self.conditions: tuple[tuple[str, dict[str, int], int, int], ...] = ()
        self.conditional = 0
        self.permits: tuple[PermitEntry, ...] = ()
        self.groups: tuple[int, ...] = ()  # per permit: the permits showing the same view
        self.showing: dict[str, int] = {}  # notes: classification -> permits whose view has it
        self.blocked_by: tuple[int, ...] = ()  # per deny: the permits whose view it overlaps
        self.no_rule: Decision | None = None  # when no view was asked for
        self.no_rules: dict[str, Decision] = {}  # when a view of the scope was
        # Per required course, the permits (shifted down) needing it; `needs_training`: their union.
        self.training: tuple[tuple[str, int], ...] = ()
        self.needs_training = 0

    def lacking(self, trained: frozenset[str], permits: int) -> int:
        """The permits among `permits` needing a course not in `trained`."""
        lacking = 0
        for course, mask in self.training:
            if mask & permits and course not in trained:
                lacking |= mask
        return lacking & permits

    def matching(self, caller: Caller, day: int) -> int:
        """The rules whose whole audience has the caller, of agreements in force."""
        mask = self.agency.get(caller.agency_id, self.no_agency) & self.in_force[day]
        if mask:
            mask &= self.sector.get(caller.sector, self.no_sector)
        if mask:
            roles = self.no_role
            for role in caller.roles:
                roles |= self.role.get(role, 0)
            mask &= roles
        if mask:
            relations = self.no_relation
            for relation in caller.relations:
                relations |= self.relation.get(relation, 0)
            mask &= relations
        return mask

    def holding(self, mask: int, attributes: Getter) -> int:
        """The rules in `mask` whose record conditions hold (fail closed both ways).

        A missing attribute fails a permit's condition and satisfies a deny's.
        """
        if mask & self.conditional:
            # Every attribute, even one only unmatched rules ask about: cheaper than checking.
            for key, allowing, silent, missing in self.conditions:
                value = attributes(key)
                if value is None or not value:  # missing, or an empty set of values
                    mask &= missing
                elif isinstance(value, str):
                    mask &= allowing.get(value, silent)
                else:  # several values: a rule holds when any of them is allowed
                    anyone = 0
                    for one in value:
                        anyone |= allowing.get(one, silent)
                    mask &= anyone
        return mask


class Scope:
    """The agreements one set of parties shares, compiled together.

    Every agency of a scope is a party to each of its agreements, so a caller's agency
    picks one scope, and the rules of agreements it is no party to are never looked at.
    Deny bits follow agreement id then declaration within the scope; the lowest is cited.
    """

    def __init__(self, index: "PolicyIndex", agreements: tuple[Agreement, ...]) -> None:
        self.agreements = sum(index.bits[a.id] for a in agreements)
        self.views = _compile_views(agreements, index.bits)
        self.views_named = _views_by_name(agreements, self.views)
        self.names: dict[RecordKind, set[str]] = defaultdict(set)  # view names by kind
        for view in self.views.values():
            self.names[view.kind].add(view.name)
        ordered = [(agreement, deny) for agreement in agreements for deny in agreement.denies]
        self.denies = [
            DenyEntry(deny, agreement, 1 << i, self.names[deny.kind])
            for i, (agreement, deny) in enumerate(ordered)
        ]
        self.shift = len(self.denies)  # permit bits start above the deny bits
        self.deny_bits = (1 << self.shift) - 1
        self.note_denies: dict[str, int] = defaultdict(int)
        for entry in self.denies:
            if entry.deny.kind == "note":
                for classification in entry.deny.items:
                    self.note_denies[classification] |= entry.bit
            for view in self.views.values():
                if view.kind == entry.deny.kind and not entry.deny.items.isdisjoint(view.items):
                    view.deny_mask |= entry.bit
        self.buckets = self._file(index, agreements)
        self.empty = Bucket(len(index.in_force))  # its no_rule is left to the engine

    def bucket(self, purpose: str, kind: RecordKind) -> Bucket:
        by_kind = self.buckets.get(purpose)
        return by_kind.get(kind, self.empty) if by_kind else self.empty

    def _file(
        self, index: "PolicyIndex", agreements: tuple[Agreement, ...]
    ) -> dict[str, dict[RecordKind, Bucket]]:
        filings: dict[tuple[str, RecordKind], _Filing] = defaultdict(_Filing)
        purposes = {purpose for agreement in agreements for purpose in _declared(agreement)}
        for entry in self.denies:
            deny = entry.deny
            for purpose in purposes if deny.purposes is None else deny.purposes:
                filings[(purpose, deny.kind)].add_deny(entry)
        for permit in _permit_entries(agreements, self.views):
            for purpose in permit.permit.purposes:
                filings[(purpose, permit.view.kind)].add_permit(permit, self.shift)
        buckets: dict[str, dict[RecordKind, Bucket]] = defaultdict(dict)
        for (purpose, kind), filing in filings.items():
            bucket = buckets[purpose][kind] = filing.build(index, self, kind)
            bucket.no_rule = no_rule(kind, purpose, None)
            bucket.no_rules = {name: no_rule(kind, purpose, name) for name in self.names[kind]}
        return dict(buckets)


class PolicyIndex:
    """Scopes by party, agreements in force by day, and interned decisions."""

    def __init__(self, agreements: Iterable[Agreement]) -> None:
        self._agreements = tuple(sorted(agreements, key=lambda a: a.id))
        self._by_id = {a.id: a for a in self._agreements}
        self.bits = {a.id: 1 << i for i, a in enumerate(self._agreements)}
        self.declared: dict[str, int] = defaultdict(int)
        self.defines_view: dict[str, int] = defaultdict(int)
        party_of: dict[str, int] = defaultdict(int)
        for agreement in self._agreements:
            bit = self.bits[agreement.id]
            for party in agreement.party_set:
                party_of[party] |= bit
            for purpose in _declared(agreement):
                self.declared[purpose] |= bit
            for name in agreement.views:
                self.defines_view[name] |= bit
        # Every course some permit requires: none, and nobody's training needs loading.
        self.required_courses = frozenset(
            course for a in self._agreements for p in a.all_permits for course in p.requires_training
        )
        self.breaks = sorted({d for a in self._agreements for d in (a.effective_from, a.review_by)})
        # in_force[day]: the agreements in force from the day-th break on (0: before any).
        self.in_force = [0] + [
            sum(self.bits[a.id] for a in self._agreements if a.in_force(start))
            for start in self.breaks
        ]
        scopes = {
            mask: Scope(self, tuple(a for a in self._agreements if self.bits[a.id] & mask))
            for mask in set(party_of.values())
        }
        self.scopes = {party: scopes[mask] for party, mask in party_of.items()}
        self.nowhere = Scope(self, ())  # for agencies party to no agreement
        # Building a Decision costs more than deciding: each distinct one is made once.
        self.decisions: Memo[tuple[object, ...], Decision] = Memo(DECISION_MEMO_SIZE)
        # The purposes open to a caller on a day (`purposes_for`): asked on every read of case data.
        self.purposes: Memo[tuple[object, ...], tuple[str, ...]] = Memo(DECISION_MEMO_SIZE)

    def agreement(self, agreement_id: str) -> Agreement:
        return self._by_id[agreement_id]

    def scope(self, agency: str) -> Scope:
        return self.scopes.get(agency, self.nowhere)

    def day(self, now: date) -> int:
        """Which range between agreement start and review dates `now` falls in."""
        return bisect_right(self.breaks, now)

    def clear_caches(self) -> None:
        """Forget interned decisions (the compiled index, prebuilt decisions included, stays)."""
        self.decisions.clear()
        self.purposes.clear()


def _declared(agreement: Agreement) -> set[str]:
    """The purposes an agreement declares, its emergency purpose included."""
    emergency = agreement.emergency.purposes if agreement.emergency else frozenset()
    return {*agreement.purposes, *emergency}


def _permit_entries(agreements: tuple[Agreement, ...], views: Views) -> list[PermitEntry]:
    """Permits that name someone, most detailed view first, then declaration order."""
    entries = [
        PermitEntry(permit, views[(agreement.id, permit.view.name)], seq, views)
        for seq, (agreement, permit) in enumerate(
            (a, p) for a in agreements for p in a.all_permits if not p.audience.is_empty
        )
    ]
    shown = sorted({(-len(e.view.items), e.view.agreement.id, e.view.name) for e in entries})
    rank = {key: r for r, key in enumerate(shown)}
    for entry in entries:
        entry.rank = rank[(-len(entry.view.items), entry.view.agreement.id, entry.view.name)]
    return sorted(entries, key=lambda e: (e.rank, e.seq))


class _Filing:
    """The rules of one bucket as they are filed, each with its bit."""

    def __init__(self) -> None:
        self.rules: list[tuple[int, Audience, Agreement, Conditions, bool]] = []
        self.permits: list[PermitEntry] = []
        self.denies: list[DenyEntry] = []

    def add_deny(self, entry: DenyEntry) -> None:
        self.denies.append(entry)
        self.rules.append((entry.bit, entry.deny.audience, entry.agreement, entry.deny.when, True))

    def add_permit(self, entry: PermitEntry, shift: int) -> None:
        bit = 1 << (shift + len(self.permits))
        self.permits.append(entry)
        self.rules.append(
            (bit, entry.permit.audience, entry.view.agreement, entry.permit.when, False)
        )

    def build(self, index: PolicyIndex, scope: Scope, kind: RecordKind) -> Bucket:
        bucket = Bucket(len(index.in_force))
        self._file_audiences(bucket, index)
        self._file_conditions(bucket)
        bucket.permits = tuple(self.permits)
        courses: dict[str, int] = defaultdict(int)
        for j, entry in enumerate(self.permits):
            for course in entry.permit.requires_training:
                courses[course] |= 1 << j
        bucket.training = tuple(sorted(courses.items()))
        bucket.needs_training = sum(1 << j for j, e in enumerate(self.permits) if e.permit.requires_training)
        bucket.groups = tuple(
            sum(1 << j for j, other in enumerate(self.permits) if other.rank == entry.rank)
            for entry in self.permits
        )
        if kind == "note":
            for j, entry in enumerate(self.permits):
                for classification in entry.view.items:
                    bucket.showing[classification] = bucket.showing.get(classification, 0) | 1 << j
        else:
            bucket.blocked_by = tuple(
                sum(
                    1 << j
                    for j, entry in enumerate(self.permits)
                    if entry.view.deny_mask & deny.bit
                )
                for deny in scope.denies
            )
        return bucket

    def _file_audiences(self, bucket: Bucket, index: PolicyIndex) -> None:
        # Every agency of the scope is a party to each agreement: only named agencies differ.
        of_agreement: dict[str, int] = defaultdict(int)
        for bit, audience, agreement, _, _ in self.rules:
            of_agreement[agreement.id] |= bit
            bucket.no_agency |= _fold(audience.agencies, bit, bucket.agency)
            bucket.no_sector |= _fold(audience.sectors, bit, bucket.sector)
            bucket.no_role |= _fold(audience.roles, bit, bucket.role)
            bucket.no_relation |= _fold(audience.relations, bit, bucket.relation)
        for agency in bucket.agency:
            bucket.agency[agency] |= bucket.no_agency
        for sector in bucket.sector:
            bucket.sector[sector] |= bucket.no_sector
        # Agreements' rule masks are disjoint, so their sum is their union.
        bucket.in_force = [
            sum(
                mask
                for agreement_id, mask in of_agreement.items()
                if index.bits[agreement_id] & force
            )
            for force in index.in_force
        ]

    def _file_conditions(self, bucket: Bucket) -> None:
        keys = sorted({key for *_, when, _ in self.rules for key, _ in when})
        conditions = []
        for key in keys:
            allowing: dict[str, int] = defaultdict(int)
            silent = missing = 0
            for bit, _, _, when, is_deny in self.rules:
                allowed = dict(when).get(key)
                if allowed is None:
                    silent |= bit
                    continue
                bucket.conditional |= bit
                if is_deny:
                    missing |= bit
                for value in allowed:
                    allowing[value] |= bit
            allowing_or_silent = {v: m | silent for v, m in allowing.items()}
            conditions.append((key, allowing_or_silent, silent, missing | silent))
        bucket.conditions = tuple(conditions)


def _fold(values: frozenset[str] | None, bit: int, by: dict[str, int]) -> int:
    """File `bit` under each value; return it when the key is not named (its default)."""
    if values is None:
        return bit
    for value in values:
        by[value] = by.get(value, 0) | bit
    return 0


def _compile_views(agreements: tuple[Agreement, ...], bits: dict[str, int]) -> Views:
    views: Views = {}
    for agreement in agreements:
        named = dict(agreement.views)
        for permit in agreement.all_permits:
            named.setdefault(permit.view.name, permit.view)
        for name, view in named.items():
            views[(agreement.id, name)] = CompiledView(view, agreement, bits[agreement.id])
    return views


def _views_by_name(
    agreements: tuple[Agreement, ...], views: Views
) -> dict[str, tuple[CompiledView, ...]]:
    """Views by name, most detailed first then agreement id (how requested views are tried)."""
    named: dict[str, list[CompiledView]] = defaultdict(list)
    for agreement in agreements:
        for name in agreement.views:
            named[name].append(views[(agreement.id, name)])
    return {
        name: tuple(sorted(found, key=lambda v: (-len(v.items), v.agreement.id)))
        for name, found in named.items()
    }


def permitted(shown: CompiledView, rules: tuple[PermitEntry, ...]) -> Decision:
    first = rules[0].permit
    rule_ids = tuple(entry.permit.id for entry in rules)
    agreement = shown.agreement
    return Decision(
        permit=True,
        reason=f"permitted by rule {', '.join(rule_ids)}",
        reason_code="permitted",
        view=shown.name,
        fields=shown.items,
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_hash=agreement.content_hash,
        rule_ids=rule_ids,
        legal_basis=first.legal_basis,
        special_category_condition=first.special_category_condition,
        retention=first.retention,
        min_cell=shown.view.min_cell,
        emergency_window=first.emergency_window,
    )


def denied(agreement: Agreement, deny: Deny, view: str | None) -> Decision:
    return Decision(
        permit=False,
        reason=f"denied by rule {deny.id}",
        reason_code="denied_by_rule",
        view=view,
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_hash=agreement.content_hash,
        rule_ids=(deny.id,),
    )


def no_rule(kind: RecordKind, purpose: str, view: str | None) -> Decision:
    what = view if view is not None else f"any {kind} view"
    reason = f"no rule grants {what} to this caller for purpose {purpose}"
    return Decision(False, reason, "no_rule", view=view)


def training_required(full: Decision, missing: frozenset[str]) -> Decision:
    """Refused: `full` would have granted, but its rules need courses the caller lacks."""
    courses = ", ".join(sorted(missing))
    verb = "is" if len(missing) == 1 else "are"
    rules = ", ".join(full.rule_ids)
    reason = (
        f"training required: {courses} (rule {rules} of agreement {full.agreement_id})"
        f" {verb} missing or expired"
    )
    return Decision(
        permit=False,
        reason=reason,
        reason_code="training_required",
        view=full.view,
        agreement_id=full.agreement_id,
        agreement_version=full.agreement_version,
        agreement_hash=full.agreement_hash,
        rule_ids=full.rule_ids,
    )
