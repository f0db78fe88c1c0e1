"""Catalogue of referral fields, statistics dimensions and which of them are sensitive."""

from app.referrals.schemas import referral_field_paths

# The referral schema (referral/v1) is the single source of the field names views may use.
REFERRAL_FIELDS: frozenset[str] = referral_field_paths()

# GDPR Art. 9 data: a view that lets one of these leave needs an Art. 9(2) condition.
SPECIAL_CATEGORY_FIELDS: frozenset[str] = frozenset({"subject.ethnicity", "subject.religion"})
DIRECT_IDENTIFIER_FIELDS: frozenset[str] = frozenset(
    {
        "subject.given_name",
        "subject.family_name",
        "subject.date_of_birth",
        "subject.phone",
        "subject.email",
        "subject.address",
        "subject.identifiers",
    }
)
# Health notes are data concerning health (Art. 9) just like ethnicity or religion.
SPECIAL_CATEGORY_CLASSIFICATIONS: frozenset[str] = frozenset({"health"})

STATISTICS_DIMENSIONS: frozenset[str] = frozenset(
    {"concerns", "district", "age_band", "risk_level", "status", "outcome", "period"}
)
SPECIAL_CATEGORY_DIMENSIONS: frozenset[str] = frozenset({"ethnicity", "religion"})
ALL_DIMENSIONS: frozenset[str] = STATISTICS_DIMENSIONS | SPECIAL_CATEGORY_DIMENSIONS


def expand_field(pattern: str, known_fields: frozenset[str]) -> frozenset[str]:
    """Expand `subject.*` style patterns; an exact name expands to itself if known."""
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        return frozenset(f for f in known_fields if f.startswith(prefix))
    return frozenset({pattern}) if pattern in known_fields else frozenset()
