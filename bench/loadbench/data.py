"""Realistic referral data: who the bench acts as, weighted vocabularies, bodies, lifecycles."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

READER = "municipality-coordinator"  # reads every referral; none are its agency's: all disclosures
READER_AGENCY = "city-municipality"
PARTNER = "youth-ngo-reader"


def words(text: str) -> list[str]:
    return text.split()


def table(text: str) -> list[tuple[str, int]]:
    """'code:weight code:weight …' as (code, weight) pairs."""
    return [(code, int(weight)) for code, weight in (item.split(":") for item in words(text))]


DISTRICTS = table(
    "old-town:14 al-mina:12 harbour:10 north-hills:9 market-quarter:9 riverside:8 east-gate:8 "
    "university:7 new-town:7 industrial-zone:6 garden-quarter:5 airport-road:5"
)
GIVEN = words(
    "Yasmin Omar Lina Karim Mira Elena Stefan Aida Bojan Nour Hadi Sara Ivana Jovan Layla Rami Ana Dino Fatima Samir"
)
FAMILY = words(
    "Haddad Petrovski Khalil Nikolovska Mansour Saleh Trajkovski Aziz Stojanova Farah Ristovski "
    "Nasser Bakri Georgieva Jaber Ilievski"
)
CONCERNS = table(
    "online_radicalisation_exposure:18 hate_speech:12 school_conflict:11 polarisation_conflict:9 "
    "self_isolation_grievance:9 family_concern:8 extremist_ideology_expressed:8 "
    "glorification_of_violence:6 recruitment_contact:6 hate_incident:5 threat_of_violence:4 "
    "returning_foreign_fighter_or_family:2 other:2"
)
VULNERABILITY = words(
    "social_isolation family_conflict school_dropout peer_influence online_extremist_content "
    "experience_of_discrimination grievance_injustice identity_crisis mental_health_concern "
    "poverty_economic_hardship unemployment exposure_to_violence substance_use displacement"
)
PROTECTIVE = words(
    "supportive_family school_engagement trusted_adult positive_peer_group "
    "sports_or_arts_participation community_belonging motivation_to_change "
    "critical_thinking_skills access_to_services religious_or_cultural_mentor"
)
SERVICES = words(
    "mentoring psychosocial_support family_support education_support sports_and_youth_programme "
    "counter_narrative_dialogue vocational_training employment_support religious_guidance "
    "health_referral social_welfare_assistance"
)
INTERVENTIONS = words(
    "individual_mentoring family_intervention multi_agency_case_plan psychosocial_care "
    "group_programme community_dialogue education_or_employment_pathway monitoring_only"
)
RISK = table("low:34 medium:36 high:22 critical:8")
URGENCY = table("routine:45 priority:35 urgent:15 immediate:5")
CONSENT = table("given:62 not_required:14 pending:10 not_sought:8 refused:6")
OUTCOMES = words(
    "risk_reduced engaged_completed no_further_action concern_not_substantiated declined_support "
    "referred_elsewhere moved_away disengaged"
)
# Where referrals end up; partners see the consented accepted, assigned and in_intervention ones.
FINAL_STATUS = table(
    "submitted:12 triaged:8 declined:5 withdrawn:3 accepted:12 assigned:25 in_intervention:20 closed:12 transferred:3"
)
REFERRERS = [
    ("school-north-referrer", 25),
    ("school-south-referrer", 20),
    ("social-services-caseworker", 20),
    ("health-centre-caseworker", 15),
    ("community-police-caseworker", 12),
]
CASEWORKERS = {  # agency -> its caseworker client (who starts interventions, writes notes)
    "city-social-services": "social-services-caseworker",
    "city-health-centre": "health-centre-caseworker",
    "youth-ngo-bridges": "youth-ngo-caseworker",
    "city-community-police": "community-police-caseworker",
    "school-north": "school-north-referrer",
    "school-south": "school-south-referrer",
}
NOTE_CLASSES = {
    "education": ["shared", "shared", "education"],
    "health": ["shared", "health", "health"],
    "police": ["shared", "police"],
    "social_services": ["shared", "social_care", "restricted"],
    "local_government": ["shared", "restricted"],
    "youth_work": ["shared"],
}
SENTENCES = [
    "Staff noticed a marked change in behaviour over the last term.",
    "The young person shared videos glorifying violence with classmates.",
    "Family report withdrawal from friends and long hours online at night.",
    "A teacher overheard remarks targeting a religious minority.",
    "Attendance dropped sharply after a conflict with peers.",
    "The person expressed grievance about discrimination experienced by the family.",
    "Contact with an older adult recruiting online was reported by a sibling.",
    "The person is engaged with sport and responds well to a trusted coach.",
    "Parents are supportive and ask for guidance on next steps.",
    "No immediate risk of harm was identified at this stage.",
]


def weighted(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def prose(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.sample(SENTENCES, rng.randint(low, high)))


def referral_document(rng: random.Random, person: int, now: datetime) -> dict[str, Any]:
    """A referral/v1 body as a partner agency would post it, varied but always valid."""
    people = random.Random(person)  # noqa: S311 - benchmark data: a person is always the same person
    age_days = people.randint(11 * 365, 24 * 365)
    consent = weighted(rng, CONSENT)
    subject: dict[str, Any] = {
        "given_name": people.choice(GIVEN),
        "family_name": people.choice(FAMILY),
        "date_of_birth": (now - timedelta(days=age_days)).date().isoformat(),
        "gender": people.choice(["female", "male", "male", "female", "unknown"]),
        "district": weighted(people, DISTRICTS),
        "identifiers": [{"system": "national_id", "value": f"BN-{person:08d}"}],
        "language": people.choice(["ar", "mk", "sq", "en"]),
    }
    if people.random() < 0.6:
        subject["phone"] = f"+961-70-{people.randint(100000, 999999)}"
    if people.random() < 0.4:
        subject["address"] = f"{people.randint(1, 200)} {subject['district'].title()} Street"
    body: dict[str, Any] = {
        "schema": "referral/v1",
        "subject": subject,
        "concerns": sorted({weighted(rng, CONCERNS) for _ in range(rng.randint(1, 3))}),
        "vulnerability_factors": rng.sample(VULNERABILITY, rng.randint(0, 4)),
        "protective_factors": rng.sample(PROTECTIVE, rng.randint(0, 3)),
        "risk_level": weighted(rng, RISK),
        "urgency": weighted(rng, URGENCY),
        "consent": {"status": consent, "recorded_by": "referring practitioner"},
        "requested_services": rng.sample(SERVICES, rng.randint(1, 3)),
        "intervention_type": rng.choice(INTERVENTIONS),
        "narrative": prose(rng, 2, 6),
        "do_not_contact": rng.random() < 0.05,
    }
    if consent != "given":
        body["consent"]["legal_basis"] = "public_task"
    return body


def lifecycle(rng: random.Random, final: str, referrer_agency: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The transitions (target, actor, body extras) that take a new referral to `final`."""
    assignees = [a for a in CASEWORKERS if a != referrer_agency]
    agencies = sorted(rng.sample(assignees, 1 if rng.random() < 0.7 else 2))
    if "youth-ngo-bridges" not in agencies and rng.random() < 0.3:
        agencies = sorted([*agencies, "youth-ngo-bridges"])
    steps: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "submitted": [],
        "triaged": [("triaged", "coordinator", {})],
        "declined": [
            ("triaged", "coordinator", {}),
            ("declined", "coordinator", {"reason": "threshold for multi-agency support not met"}),
        ],
        "withdrawn": [("withdrawn", "referrer", {"reason": "family moved out of the city"})],
        "accepted": [("triaged", "coordinator", {}), ("accepted", "coordinator", {})],
        "assigned": [
            ("triaged", "coordinator", {}),
            ("accepted", "coordinator", {}),
            ("assigned", "coordinator", {"agencies": agencies}),
        ],
        "in_intervention": [
            ("triaged", "coordinator", {}),
            ("accepted", "coordinator", {}),
            ("assigned", "coordinator", {"agencies": agencies}),
            ("in_intervention", "assigned", {}),
        ],
        "closed": [
            ("triaged", "coordinator", {}),
            ("accepted", "coordinator", {}),
            ("assigned", "coordinator", {"agencies": agencies}),
            ("in_intervention", "assigned", {}),
            ("closed", "coordinator", {"outcome": rng.choice(OUTCOMES)}),
        ],
        "transferred": [
            ("triaged", "coordinator", {}),
            ("transferred", "coordinator", {"reason": "person moved", "to_network": "demo-town"}),
        ],
    }
    return steps[final]


def post_bodies(rng: random.Random, count: int = 400) -> list[str]:
    """Bodies for the post_referral scenario, compact JSON, each taken in turn."""
    now = datetime.now(UTC)
    bodies = []
    for k in range(count):
        # Most posts are about new people; some about people already referred (linked).
        person = rng.randrange(8000) if rng.random() < 0.15 else 10_000_000 + rng.randrange(10**6) * 100 + k
        bodies.append(json.dumps(referral_document(rng, person, now), separators=(",", ":")))
    return bodies
