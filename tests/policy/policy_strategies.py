"""Hypothesis strategies: small random agreements (several at once) and requests to them."""

import random
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st
from policy_factories import minimal_document

from app.policy.decision import Caller, Record
from app.policy.model import Agreement, Audience, Conditions, Deny, Permit
from app.policy.vocabulary import RECORD_VALUES, RecordKind

_AGENCIES = ["a1", "a2", "a3", "a4"]
_SECTORS = ["police", "health", "education", "civil_society"]
_ROLES = ["caseworker", "coordinator", "partner_reader"]
_FIELDS = [
    "id",
    "concerns",
    "status",
    "narrative",
    "risk_level",
    "subject.age_band",
    "subject.religion",
]
_CLASSES = ["shared", "restricted", "health"]
_PURPOSES = ["p1", "p2", "p3"]
_RELATIONS = ["owner", "referrer", "assigned"]
_COURSES = ["course-a", "course-b"]
# Generated agreements decide their own id's network, a shared one, or (national ones) several;
# records are of one of these, of a network no agreement decides, or name none.
_NETWORKS = ["net-a", "net-b"]
ELSEWHERE = "net-elsewhere"


def small_subset(draw: st.DrawFn, pool: list[str], min_size: int = 0) -> list[str]:
    return sorted(draw(st.sets(st.sampled_from(pool), min_size=min_size, max_size=3)))


@st.composite
def audiences(draw: st.DrawFn, *, allow_empty: bool) -> dict[str, Any]:
    audience: dict[str, Any] = {}
    for key, pool in (
        ("agencies", _AGENCIES),
        ("sectors", _SECTORS),
        ("roles", _ROLES),
        ("relation", ["owner", "referrer", "assigned"]),
    ):
        if draw(st.integers(0, 2)) == 0:
            audience[key] = small_subset(draw, pool, min_size=0 if allow_empty else 1)
    if not audience and not allow_empty:
        audience["sectors"] = [draw(st.sampled_from(_SECTORS))]
    return audience


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, list[str] | bool]:
    when: dict[str, list[str] | bool] = {}
    for key in ("consent", "status", "classification", "intervention_type", "concerns"):
        if draw(st.booleans()):
            when[key] = small_subset(draw, sorted(RECORD_VALUES[key])[:4], min_size=1)
    if draw(st.integers(0, 3)) == 0:
        when["invited"] = draw(st.booleans())  # a boolean in YAML, "true"/"false" on the record
    return when


@st.composite
def agreement_documents(draw: st.DrawFn, agreement_id: str) -> dict[str, Any]:
    scope = draw(st.sampled_from(["own", "own", *_NETWORKS, "national"]))
    national = scope == "national"
    views: dict[str, Any] = {}
    for index in range(0 if national else draw(st.integers(1, 4))):
        views[f"referral.v{index}"] = small_subset(draw, _FIELDS, min_size=1)
    for index in range(0 if national else draw(st.integers(1, 2))):
        views[f"notes.n{index}"] = {"notes": {"classification": small_subset(draw, _CLASSES, 1)}}
    views["statistics"] = {"aggregate": small_subset(draw, ["concerns", "district", "period"], 1)}
    names = list(views)
    rules = [
        {
            "id": f"r{index}",
            "to": draw(audiences(allow_empty=False)),
            "view": draw(st.sampled_from(names)),
            "purposes": small_subset(draw, _PURPOSES, min_size=1),
            "when": draw(conditions()),
            "legal_basis": "public_task",
            "special_category_condition": "substantial_public_interest",
            "retention": "P1Y",
            **_requires(draw(st.integers(0, 5))),
        }
        for index in range(draw(st.integers(0, 8)))
    ]
    denies = []
    for index in range(draw(st.integers(0, 3))):
        target = draw(
            st.one_of(
                st.sampled_from(names),
                st.builds(
                    lambda c: {"notes": {"classification": c}},
                    st.sets(st.sampled_from(_CLASSES), min_size=1).map(sorted),
                ),
                st.sets(st.sampled_from(_FIELDS), min_size=1).map(sorted),
            )
        )
        deny: dict[str, Any] = {
            "id": f"d{index}",
            "to": draw(audiences(allow_empty=True)),
            "view": target,
        }
        if draw(st.booleans()):
            deny["purposes"] = small_subset(draw, _PURPOSES, min_size=1)
        if draw(st.booleans()):
            deny["when"] = draw(conditions())
        denies.append(deny)
    document = minimal_document(
        agreement=agreement_id,
        parties=small_subset(draw, _AGENCIES, min_size=1),
        purposes={p: p for p in _PURPOSES},
        views=views,
        rules=rules,
        deny=denies,
        review_by=date(2026, draw(st.integers(2, 12)), 1),
    )
    document.update(_requires(draw(st.integers(0, 6))))
    if national:
        # Across networks: statistics views only, and no emergency section.
        document["networks"] = sorted({agreement_id, *small_subset(draw, _NETWORKS, 1)})
        return document
    if scope != "own":
        document["network"] = scope
    if draw(st.booleans()):
        document["emergency"] = {
            "roles": small_subset(draw, _ROLES, 1),
            "view": draw(st.sampled_from([n for n in names if not n.startswith("statistics")])),
        }
    return document


def _requires(pick: int) -> dict[str, Any]:
    """Now and then a `requires` of one or both courses (mostly none)."""
    courses = {1: ["course-a"], 2: ["course-b"], 3: _COURSES}.get(pick)
    return {"requires": {"training": courses}} if courses else {}


@st.composite
def generated_requests(
    draw: st.DrawFn, networks: list[str] | None = None
) -> tuple[Caller, str, Record, str | None, date]:
    """A request about a record of one of `networks` (mostly), of a stranger's, or of none."""
    who = Caller(
        "client",
        draw(st.sampled_from([*_AGENCIES, "a9"])),
        draw(st.sampled_from(_SECTORS)),
        frozenset(small_subset(draw, _ROLES)),
        frozenset(small_subset(draw, ["owner", "referrer", "assigned"])),
        frozenset(small_subset(draw, _COURSES)),
    )
    kind = draw(st.sampled_from(["referral", "note", "statistics"]))
    attributes = {
        key: value
        for key in ("consent", "status", "classification")
        if (value := draw(st.sampled_from([None, *sorted(RECORD_VALUES[key])[:4]]))) is not None
    }
    pool = networks or ["n1", "n2", "n3", *_NETWORKS]
    network = draw(st.sampled_from([*pool, *pool, *pool, ELSEWHERE, None]))
    if network is not None:
        attributes["network"] = network
    view = draw(
        st.sampled_from([None, None, "referral.v0", "referral.v1", "notes.n0", "statistics"])
    )
    purpose = draw(st.sampled_from([*_PURPOSES, "emergency", "p9"]))
    now = date(2026, 1, 1) + timedelta(days=draw(st.integers(-10, 400)))
    return who, purpose, Record(kind, attributes), view, now  # type: ignore[arg-type]


def random_requests(
    rng: random.Random, agreements: list[Agreement], count: int
) -> list[tuple[Caller, str, Record, str | None, date]]:
    """Many requests cheaply (hypothesis seeds `rng`), most aimed at some rule's audience.

    Asks for every view, with every value the rules name, on days in and out of force.
    """
    values = {
        "consent": sorted(RECORD_VALUES["consent"])[:4],
        "status": sorted(RECORD_VALUES["status"])[:4],
        "classification": sorted({*_CLASSES, *sorted(RECORD_VALUES["classification"])[:4]}),
        "intervention_type": sorted(RECORD_VALUES["intervention_type"])[:4],
        "invited": sorted(RECORD_VALUES["invited"]),
    }
    concerns = sorted(RECORD_VALUES["concerns"])[:5]
    kinds: list[RecordKind] = ["referral", "note", "statistics"]
    rules: list[tuple[Agreement, Permit | Deny]] = [
        (a, p) for a in agreements for p in a.all_permits
    ]
    rules += [(a, d) for a in agreements for d in a.denies]
    views = sorted({name for a in agreements for name in a.views})
    networks = sorted({n for a in agreements for n in a.networks})
    requests = []
    for _ in range(count):
        kind = rng.choice(kinds)
        purpose = rng.choice([*_PURPOSES, "emergency", "p9"])
        who = _random_caller(rng)
        when: Conditions = ()
        network = rng.choice([*networks, ELSEWHERE, None])
        if rules and rng.random() < 0.7:
            agreement, rule = rng.choice(rules)
            if agreement.networks and rng.random() < 0.7:
                network = rng.choice(sorted(agreement.networks))
            who = _caller_for(rng, rule.audience, agreement.parties, who)
            when = rule.when
            if isinstance(rule, Permit):
                kind = rule.view.kind
                purpose = rng.choice(sorted(rule.purposes))
            else:
                kind = rule.kind
        allowed = dict(when)
        attributes: dict[str, str | frozenset[str]] = {}
        for key, pool in values.items():
            if key in allowed and rng.random() < 0.8:
                attributes[key] = rng.choice(sorted(allowed[key]))
            elif (value := rng.choice([None, *pool])) is not None:
                attributes[key] = value
        # A set of concerns: none, some, or (aimed at a rule) one it lists among others.
        held = set(rng.sample(concerns, rng.randint(0, 3)))
        if "concerns" in allowed and rng.random() < 0.8:
            held.add(rng.choice(sorted(allowed["concerns"])))
        if held or rng.random() < 0.5:
            attributes["concerns"] = frozenset(held)
        if network is not None:
            attributes["network"] = network
        view = rng.choice([None, None, None, "referral.nowhere", *views])
        now = date(2026, 1, 1) + timedelta(days=rng.randint(-10, 400))
        requests.append((who, purpose, Record(kind, attributes), view, now))
    return requests


def _random_caller(rng: random.Random) -> Caller:
    return Caller(
        "client",
        rng.choice([*_AGENCIES, "a9"]),
        rng.choice(_SECTORS),
        frozenset(rng.sample(_ROLES, rng.randint(0, 2))),
        frozenset(rng.sample(_RELATIONS, rng.randint(0, 2))),
        frozenset(rng.sample(_COURSES, rng.randint(0, 2))),
    )


def _caller_for(
    rng: random.Random, audience: Audience, parties: tuple[str, ...], other: Caller
) -> Caller:
    """A caller the audience names, now and then with one key taken from `other`."""
    keep = rng.choice(["agency", "sector", "roles", "relations", None, None, None])

    def pick(values: frozenset[str] | None, pool: list[str]) -> str:
        return rng.choice(sorted(values) if values else pool)

    agency = pick(audience.agencies, list(parties))
    sector = pick(audience.sectors, _SECTORS)
    roles = {pick(audience.roles, _ROLES)} | set(rng.sample(_ROLES, rng.randint(0, 1)))
    relations = {pick(audience.relations, _RELATIONS)} if rng.random() < 0.8 else set()
    return Caller(
        "client",
        other.agency_id if keep == "agency" else agency,
        other.sector if keep == "sector" else sector,
        other.roles if keep == "roles" else frozenset(roles),
        other.relations if keep == "relations" else frozenset(relations),
        frozenset(_COURSES if rng.random() < 0.5 else rng.sample(_COURSES, rng.randint(0, 1))),
    )
