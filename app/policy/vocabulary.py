"""Controlled vocabularies an agreement may use: sectors, roles, relations, GDPR bases."""

from typing import Literal, get_args

from app.vocabularies.catalog import vocabularies

RecordKind = Literal["referral", "note", "statistics"]
Sector = Literal[
    "local_government",
    "social_services",
    "education",
    "health",
    "police",
    "youth_work",
    "religious_community",
    "civil_society",
    "private_sector",
    "national_authority",
]
Role = Literal[
    "referrer",
    "caseworker",
    "coordinator",
    "partner_reader",
    "statistics_reader",
    "auditor",
    "admin",
]
Relation = Literal["owner", "referrer", "assigned"]
# GDPR Art. 6(1) lawful bases.
LegalBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
]
# GDPR Art. 9(2) conditions for special-category data.
SpecialCategoryCondition = Literal[
    "explicit_consent",
    "employment_social_security",
    "vital_interests",
    "legal_claims",
    "substantial_public_interest",
    "health_social_care",
    "public_health",
    "archiving_research_statistics",
]

SECTORS: frozenset[str] = frozenset(get_args(Sector))
ROLES: frozenset[str] = frozenset(get_args(Role))
RELATIONS: frozenset[str] = frozenset(get_args(Relation))
LEGAL_BASES: frozenset[str] = frozenset(get_args(LegalBasis))
SPECIAL_CATEGORY_CONDITIONS: frozenset[str] = frozenset(get_args(SpecialCategoryCondition))

# Values a record attribute can take, from the service's controlled vocabularies;
# `when` values outside these can never hold.
RECORD_VALUES: dict[str, frozenset[str]] = {
    attribute: vocabularies()[name].codes_set
    for attribute, name in (
        ("status", "referral_status"),
        ("consent", "consent_status"),
        ("risk_level", "risk_level"),
        ("classification", "note_classification"),
        ("intervention_type", "intervention_type"),
        ("urgency", "urgency"),
        ("concerns", "concern_category"),
    )
} | {"invited": frozenset({"true", "false"})}  # read through a meeting's agenda item it is invited to
# Attributes a record holds several values of (a set): a condition on one holds when any does.
MANY_VALUED: frozenset[str] = frozenset({"concerns"})
# Attributes that are true or false: written as booleans, decided on the values "true" and "false".
FLAGS: frozenset[str] = frozenset({"invited"})

# Sectors outside the statutory services: they receive redacted summaries only.
NON_STATUTORY_SECTORS: frozenset[str] = frozenset(
    {"civil_society", "youth_work", "religious_community", "private_sector"}
)

EMERGENCY_PURPOSE = "emergency"
EMERGENCY_RULE_ID = "emergency"
# Who may ask for emergency access: the caller's relations to the referral, plus `coordinator`
# (the network's coordinator agency calling with the coordinator role).
EmergencyRelation = Literal["owner", "referrer", "assigned", "coordinator"]
EMERGENCY_RELATIONS: tuple[str, ...] = get_args(EmergencyRelation)
