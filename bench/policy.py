"""Benchmark one in-process policy decision: the demo agreement vs a generated 1,000-rule one.

Each decision is timed on its own (timer overhead subtracted), on skewed traffic drawn
afresh for every request: 12 users per agency (some call far more than others), each
with one to three purposes, random relations, records and views; thousands of distinct
callers and requests. The first 20,000 requests warm up, the next ones are timed:

- warm: as a running service sees it, the decisions it has interned kept;
- cold: every memo (the interned decisions) emptied before each call, so nothing
  learnt from earlier requests helps; only the compiled index remains.

Workloads: the demo agreement; a generated 1,000-rule agreement with its own traffic;
and the demo's traffic again with the 1,000-rule agreement of another network beside
the demo (same purposes, no common party), whose ratio to the demo shows what rules
that cannot apply to a caller cost.

Then a full proof (`casebridge policy prove`) of each shipped folder: its time, and per group of
agreements the size of the reduced space and its number of classes (`--proofs`: only these).
"""

import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.policy import (  # noqa: E402
    Agreement,
    Caller,
    PolicySet,
    Record,
    decide,
    load_agreements,
    parse_agreement,
)
from app.policy.fields import REFERRAL_FIELDS  # noqa: E402
from app.policy.index import audience_matches  # noqa: E402
from app.policy.prove import prove  # noqa: E402
from app.policy.vocabulary import RECORD_VALUES, ROLES, SECTORS  # noqa: E402

NOW = date(2026, 6, 1)
WARM_UP = 20_000  # requests decided before timing (decisions interned)
TIMED = {"warm": 80_000, "cold": 40_000}  # the requests then timed, in each mode
CHUNK = 5_000  # workloads take turns by chunk, so background load hits them alike
TARGETS = {"demo_median_us_max": 5.0, "ratio_max": 1.5}
Request = tuple[Caller, str, Record, str | None]

SECTOR_LIST = sorted(SECTORS)
ROLE_LIST = sorted(ROLES)
RELATION_SETS: list[tuple[str, ...]] = [
    (),
    ("assigned",),
    ("owner",),
    ("referrer",),
    ("owner", "referrer"),
    ("assigned", "referrer"),
]
RELATION_WEIGHTS = [40, 30, 10, 10, 7, 3]
CONDITION_KEYS = ("consent", "status", "risk_level")
CLASSES = sorted(RECORD_VALUES["classification"])
Person = tuple[str, frozenset[str]]  # sector, roles
DEMO_PEOPLE: dict[str, tuple[Any, ...]] = {
    "city-municipality": (
        "local_government",
        ("coordinator",),
        ("coordinator", "statistics_reader"),
        ("caseworker",),
    ),
    "city-social-services": ("social_services", ("caseworker",), ("caseworker",), ("referrer",)),
    "school-north": ("education", ("referrer",)),
    "school-south": ("education", ("referrer",)),
    "city-health-centre": ("health", ("caseworker",), ("caseworker", "referrer")),
    "city-community-police": ("police", ("caseworker",), ("referrer",)),
    "youth-ngo-bridges": ("youth_work", ("partner_reader",), ("caseworker",)),
    "religious-council": ("religious_community", ("partner_reader",)),
    "national-prevention-authority": ("national_authority", ("statistics_reader",)),
    "independent-auditor": ("civil_society", ("auditor",)),
}


def generated_document(
    rules: int, rng: random.Random, agreement: str = "generated", purposes: list[str] | None = None
) -> dict[str, Any]:
    """A network of 200 agencies, 24 purposes, 48 views; most rules name few of them."""
    agencies = [f"agency-{i:03d}" for i in range(200)]
    names = purposes or [f"purpose-{i:02d}" for i in range(24)]
    purposes_ = {name: f"Purpose {name}." for name in names}
    fields = sorted(REFERRAL_FIELDS)
    views: dict[str, Any] = {
        f"referral.v{i:02d}": sorted(rng.sample(fields, rng.randint(4, 24))) for i in range(40)
    }
    for i in range(6):
        views[f"notes.n{i}"] = {"notes": {"classification": sorted(rng.sample(CLASSES, i + 1))}}
    views["statistics"] = {"aggregate": ["concerns", "district", "period"]}
    views["statistics.by_district"] = {"aggregate": ["district", "period"], "min_cell": 10}
    names = list(views)
    by_kind = {
        kind: [n for n in names if n.startswith(kind)] for kind in ("referral", "notes", "stat")
    }
    permits = []
    for i in range(rules):
        kind = rng.choices(["referral", "notes", "stat"], [75, 20, 5])[0]
        rule: dict[str, Any] = {
            "id": f"rule-{i:04d}",
            "to": _audience(rng, agencies),
            "view": rng.choice(by_kind[kind]),
            "purposes": rng.sample(sorted(purposes_), rng.randint(1, 3)),
            "legal_basis": rng.choice(["public_task", "consent", "legal_obligation"]),
            "special_category_condition": "substantial_public_interest",
            "retention": rng.choice(["P90D", "P1Y", "P2Y after closed", "P6Y after closed"]),
        }
        if kind != "stat" and rng.random() < 0.6:
            rule["when"] = _conditions(rng, kind == "notes")
        permits.append(rule)
    denies = [_deny(i, rng, agencies, fields, by_kind["referral"], purposes_) for i in range(30)]
    return {
        "agreement": agreement,
        "version": 1,
        "title": "Generated",
        "controller_contact": "dpo@x",
        "effective_from": date(2026, 1, 1),
        "review_by": date(2027, 1, 1),
        "parties": agencies,
        "purposes": purposes_,
        "views": views,
        "rules": permits,
        "deny": denies,
        "emergency": {"roles": ["coordinator", "caseworker"], "view": "referral.v00"},
    }


def _deny(
    i: int,
    rng: random.Random,
    agencies: list[str],
    fields: list[str],
    referral_views: list[str],
    purposes: dict[str, str],
) -> dict[str, Any]:
    """Narrow, like the demo's: a sector or an agency kept from notes, fields or a view."""
    shape = rng.random()
    target = rng.random()
    to: dict[str, Any]
    if shape < 0.6:
        to = {"sectors": [rng.choice(SECTOR_LIST)]}
    elif shape < 0.8:
        to = {"agencies": rng.sample(agencies, rng.randint(1, 2))}
    elif shape < 0.9:
        to = {"sectors": [rng.choice(SECTOR_LIST)], "relation": "referrer"}
    else:
        to, target = {}, 0.0  # every party: only ever a note classification
    deny: dict[str, Any] = {"id": f"deny-{i:02d}", "to": to}
    if target < 0.5:
        deny["view"] = {"notes": {"classification": rng.sample(CLASSES, rng.randint(1, 2))}}
    elif target < 0.75:
        deny["view"] = rng.sample(fields, rng.randint(1, 2))
    else:
        deny["view"] = rng.choice(referral_views)
    if rng.random() < 0.3:
        deny["purposes"] = rng.sample(sorted(purposes), rng.randint(1, 4))
    if rng.random() < 0.2:
        deny["when"] = _conditions(rng, notes=False)
    return deny


def _audience(rng: random.Random, agencies: list[str]) -> dict[str, Any]:
    shape = rng.random()
    to: dict[str, Any]
    if shape < 0.30:
        to = {"agencies": rng.sample(agencies, rng.randint(1, 3))}
        if rng.random() < 0.5:
            to["roles"] = rng.sample(ROLE_LIST, rng.randint(1, 2))
    elif shape < 0.55:
        to = {
            "sectors": rng.sample(SECTOR_LIST, rng.randint(1, 2)),
            "roles": rng.sample(ROLE_LIST, rng.randint(1, 2)),
        }
    elif shape < 0.75:
        to = {"relation": rng.choice(["owner", "referrer", "assigned"])}
        to["sectors"] = rng.sample(SECTOR_LIST, rng.randint(1, 3))
        if rng.random() < 0.5:
            to["roles"] = rng.sample(ROLE_LIST, rng.randint(1, 2))
    elif shape < 0.85:
        to = {
            "relation": rng.sample(["owner", "referrer", "assigned"], rng.randint(1, 2)),
            "roles": rng.sample(ROLE_LIST, rng.randint(1, 2)),
        }
    elif shape < 0.95:
        to = {"sectors": rng.sample(SECTOR_LIST, rng.randint(1, 2))}
    else:
        to = {"roles": rng.sample(ROLE_LIST, 1)}
    return to


def _conditions(rng: random.Random, notes: bool) -> dict[str, list[str]]:
    keys = [*CONDITION_KEYS, "classification"] if notes else list(CONDITION_KEYS)
    when = {}
    for key in rng.sample(keys, rng.randint(1, 3)):
        values = sorted(RECORD_VALUES[key])
        when[key] = sorted(rng.sample(values, rng.randint(1, max(1, len(values) // 2))))
    return when


def request_stream(
    agreement: Agreement, people: Callable[[str], list[Person]], rng: random.Random, size: int
) -> list[Request]:
    """Skewed traffic: 12 users per agency, by a Zipf-like weight; fresh records each time.

    Every request is drawn afresh, so a memo serves only what real traffic would repeat.
    A user has the sector and roles of their agency and works for one to three purposes.
    """
    users = []
    for agency in agreement.parties:
        for _ in range(12):
            sector, roles = rng.choice(people(agency))
            purposes = rng.sample(sorted(agreement.purposes), min(len(agreement.purposes), 3))
            users.append((agency, sector, roles, purposes[: rng.randint(1, 3)]))
    rng.shuffle(users)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(users))]
    views = list(agreement.views)
    stream: list[Request] = []
    for agency, sector, roles, purposes in rng.choices(users, weights, k=size):
        relations = frozenset(rng.choices(RELATION_SETS, RELATION_WEIGHTS)[0])
        caller = Caller("bench", agency, sector, roles, relations)
        roll = rng.random()
        purpose = rng.choice(purposes) if roll < 0.97 else "emergency" if roll < 0.99 else "audit"
        record = _record(rng)
        view = None
        roll = rng.random()
        if roll < 0.2:
            prefix = {"referral": "referral", "note": "notes", "statistics": "statistics"}
            own = [v for v in views if v.startswith(prefix[record.kind])]
            view = rng.choice(own or views)
        elif roll < 0.25:
            view = rng.choice(views)
        stream.append((caller, purpose, record, view))
    return stream


def demo_people(agency: str) -> list[Person]:
    """Who works at a demo agency: its sector, and the roles the demo agreement expects."""
    sector, *role_sets = DEMO_PEOPLE.get(agency, ("civil_society", ("partner_reader",)))
    return [(sector, frozenset(roles)) for roles in role_sets]


def random_people(sectors: dict[str, str], rng: random.Random) -> Callable[[str], list[Person]]:
    """Generated agencies: one sector each, people with one or two roles of any kind."""
    staff = {
        agency: [
            (sector, frozenset(rng.sample(ROLE_LIST, rng.choice([1, 1, 2])))) for _ in range(4)
        ]
        for agency, sector in sectors.items()
    }
    return staff.__getitem__


def _record(rng: random.Random) -> Record:
    kind = rng.choices(["referral", "note", "statistics"], [70, 25, 5])[0]
    if kind == "statistics":
        return Record("statistics", {})
    attributes = {key: rng.choice(sorted(RECORD_VALUES[key])) for key in CONDITION_KEYS}
    if kind == "note":
        attributes["classification"] = rng.choice(CLASSES)
    return Record(kind, attributes)  # type: ignore[arg-type]


def timer_overhead() -> int:
    clock = time.perf_counter_ns
    gaps = []
    for _ in range(100_000):
        start = clock()
        gaps.append(clock() - start)
    return int(statistics.median(gaps))


def measure(
    workloads: dict[str, tuple[PolicySet, list[Request]]], mode: str, overhead: int
) -> dict[str, dict[str, Any]]:
    """Median and p99 of single decisions, after a warm-up, for each workload."""
    samples: dict[str, list[int]] = {name: [] for name in workloads}
    for policy_set, traffic in workloads.values():
        policy_set.index.clear_caches()
        for caller, purpose, record, view in traffic[:WARM_UP]:
            decide(policy_set, caller, purpose, record, view, now=NOW)
    for start in range(WARM_UP, WARM_UP + TIMED[mode], CHUNK):
        for name, (policy_set, traffic) in workloads.items():
            chunk = traffic[start : start + CHUNK]
            samples[name] += _timed(policy_set, chunk, mode == "cold", overhead)
    results = {}
    for name, (policy_set, traffic) in workloads.items():
        results[name] = _summary(samples[name])
        timed = traffic[WARM_UP : WARM_UP + TIMED[mode]]
        by_naming: dict[int, list[int]] = defaultdict(list)
        for request, sample in zip(timed, samples[name], strict=True):
            by_naming[min(_naming(policy_set, request), 3)].append(sample)
        results[name]["median_us_by_permits_naming_caller"] = {
            f"{count}+" if count == 3 else str(count): _summary(by_naming[count])["median_us"]
            for count in sorted(by_naming)
        }
    return results


def _summary(samples: list[int]) -> dict[str, Any]:
    timed = sorted(samples)
    return {
        "median_us": round(statistics.median(timed) / 1000, 3),
        "p99_us": round(timed[int(len(timed) * 0.99) - 1] / 1000, 3),
        "decisions_timed": len(timed),
    }


def _naming(policy_set: PolicySet, request: Request) -> int:
    """How many permits in force name the caller for the purpose and record kind.

    Read off the index (tests/policy/test_policy_index.py checks it against a scan).
    """
    caller, purpose, record, _ = request
    index = policy_set.index
    scope = index.scope(caller.agency_id)
    mask = scope.bucket(purpose, record.kind).matching(caller, index.day(NOW))
    return (mask >> scope.shift).bit_count()


def _timed(policy_set: PolicySet, chunk: list[Request], clear: bool, overhead: int) -> list[int]:
    clock = time.perf_counter_ns
    forget = policy_set.index.clear_caches
    samples = []
    for caller, purpose, record, view in chunk:
        if clear:
            forget()
        start = clock()
        decide(policy_set, caller, purpose, record, view, now=NOW)
        samples.append(clock() - start - overhead)
    return samples


def workload(policy_set: PolicySet, stream: list[Request]) -> dict[str, Any]:
    """What the stream looks like: how varied it is, how many rules apply to each caller."""
    rules = sum(len(a.all_permits) + len(a.denies) for a in policy_set)
    applying = [_applying_permits(policy_set, c, p, r.kind) for c, p, r, _ in stream]
    shapes = {(c.agency_id, c.sector, c.roles, c.relations, p, r.kind) for c, p, r, _ in stream}
    distinct = {
        (c.agency_id, c.roles, c.relations, p, r.kind, tuple(sorted(r.attributes.items())), v)
        for c, p, r, v in stream
    }
    decisions = [decide(policy_set, c, p, r, v, now=NOW) for c, p, r, v in stream]
    return {
        "rules": rules,
        "requests": len(stream),
        "distinct_requests": len(distinct),
        "distinct_caller_shapes": len(shapes),
        "permits_applying_to_caller_mean": round(statistics.mean(applying), 2),
        "permit_rate": round(sum(d.permit for d in decisions) / len(decisions), 3),
    }


def _applying_permits(policy_set: PolicySet, caller: Caller, purpose: str, kind: str) -> int:
    return sum(
        1
        for agreement in policy_set
        if caller.agency_id in agreement.party_set
        for permit in agreement.all_permits
        if permit.view.kind == kind
        and purpose in permit.purposes
        and not permit.audience.is_empty
        and audience_matches(permit.audience, caller)
    )


def parsed(document: dict[str, Any]) -> Agreement:
    text = yaml.safe_dump(document, sort_keys=False).encode()
    result = parse_agreement(text, f"{document['agreement']}.yaml")
    assert result.agreement is not None, [str(e) for e in result.errors[:3]]
    return result.agreement


def proofs() -> dict[str, Any]:
    """A full proof (`policy prove`) of each shipped folder: time, the space and its classes, per network."""
    found: dict[str, Any] = {}
    for folder in (ROOT / "policies", ROOT / "policies" / "examples"):
        policy_set = load_agreements(folder).policy_set
        started = time.perf_counter()
        report = prove(policy_set, folder / "tests")
        seconds = time.perf_counter() - started
        assert report.ok, [r.to_dict() for r in report.results if not r.ok]
        found[str(folder.relative_to(ROOT))] = {
            "seconds": round(seconds, 2),
            "assertions": len(report.results),
            "spaces": report.spaces,  # per group of agreements: points of the reduced space, classes
        }
    return found


def main() -> None:
    if "--proofs" in sys.argv:  # only the proofs: seconds, not minutes
        print(json.dumps({"python": sys.version.split()[0], "proofs": proofs()}, indent=2))
        return
    rng = random.Random(20260601)  # noqa: S311 — reproducible workload, not crypto
    demo = load_agreements(ROOT / "policies").policy_set
    demo_agreement = demo.get("demo-city") or next(iter(demo))
    document = generated_document(1000, rng)
    generated = parsed(document)
    # The same kind of agreement, with the demo's purposes but none of its parties: its
    # rules share the demo rules' purposes and never apply to demo callers.
    beside = parsed(generated_document(1000, rng, "other-network", list(demo_agreement.purposes)))
    sectors = dict(zip(document["parties"], rng.choices(SECTOR_LIST, k=200), strict=True))
    size = WARM_UP + max(TIMED.values())
    demo_traffic = request_stream(demo_agreement, demo_people, rng, size)
    workloads = {
        "demo": (demo, demo_traffic),
        "generated_1000_rules": (
            PolicySet.of([generated]),
            request_stream(generated, random_people(sectors, rng), rng, size),
        ),
        "demo_beside_1000_rules": (PolicySet.of([demo_agreement, beside]), demo_traffic),
    }
    crowded = workloads["demo_beside_1000_rules"][0]
    for caller, purpose, record, view in demo_traffic[:WARM_UP]:
        alone = decide(demo, caller, purpose, record, view, now=NOW)
        assert decide(crowded, caller, purpose, record, view, now=NOW) == alone
    overhead = timer_overhead()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "timer_overhead_ns_subtracted": overhead,
        "workload": {name: workload(ps, t[:WARM_UP]) for name, (ps, t) in workloads.items()},
    }
    for mode in TIMED:
        results: dict[str, Any] = measure(workloads, mode, overhead)
        demo_median = results["demo"]["median_us"]
        ratio = round(results["generated_1000_rules"]["median_us"] / demo_median, 3)
        beside = round(results["demo_beside_1000_rules"]["median_us"] / demo_median, 3)
        results["ratio_median_generated_over_demo"] = ratio
        results["ratio_median_demo_beside_1000_rules_over_demo"] = beside
        results["meets_targets"] = (
            demo_median <= TARGETS["demo_median_us_max"] and ratio <= TARGETS["ratio_max"]
        )
        report[mode] = results
    report["targets"] = TARGETS
    report["proofs"] = proofs()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
