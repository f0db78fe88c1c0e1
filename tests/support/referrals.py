"""Shared test data for referral tests."""

from __future__ import annotations

import copy
from typing import Any

NAME = "Yasmin Haddad-Testperson"
DOB = "2009-03-14"
NARRATIVE = "Teacher overheard Yasmin-narrative-marker sharing recruitment videos."

BASE_REFERRAL: dict[str, Any] = {
    "schema": "referral/v1",
    "subject": {
        "given_name": "Yasmin",
        "family_name": "Haddad-Testperson",
        "date_of_birth": DOB,
        "gender": "female",
        "phone": "+961-70-555-0101",
        "address": "12 Rue Example, Tripoli",
        "district": "al-mina",
        "identifiers": [{"system": "national_id", "value": "LB-778899"}],
        "religion": "religion-marker-value",
    },
    "concerns": ["online_radicalisation_exposure", "recruitment_contact"],
    "vulnerability_factors": ["social_isolation"],
    "protective_factors": ["supportive_family"],
    "risk_level": "high",
    "urgency": "priority",
    "consent": {"status": "given", "recorded_by": "school counsellor"},
    "requested_services": ["mentoring"],
    "intervention_type": "individual_mentoring",
    "narrative": NARRATIVE,
}


def referral_body(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE_REFERRAL)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


PURPOSE = {"X-Purpose": "safeguarding_assessment"}
COORDINATOR = "municipality-coordinator"
REFERRER = "school-north-referrer"
