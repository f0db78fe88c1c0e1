"""Examples for the OpenAPI document, by operation id (app.openapi applies them).

Request examples are the bodies a partner would really send in the demo network; response examples
are written where a synthesised one (app.openapi.synthesise) would say little.  tests/platform/
test_openapi.py validates every example against its schema, so an example cannot drift from the API.
"""

from __future__ import annotations

from typing import Any

REFERRAL_ID = "ref_fhl3u_VTfk_xCAqr"
TIME = "2026-01-15T09:30:00.069168+00:00"

REFERRAL_IN: dict[str, Any] = {
    "schema": "referral/v1",
    "subject": {
        "given_name": "Amira",
        "family_name": "Example",
        "date_of_birth": "2010-05-02",
        "gender": "female",
        "district": "al-mina",
        "identifiers": [{"system": "national_id", "value": "LB-000123"}],
    },
    "concerns": ["online_radicalisation_exposure"],
    "vulnerability_factors": ["social_isolation"],
    "protective_factors": ["supportive_family"],
    "risk_level": "medium",
    "urgency": "priority",
    "consent": {"status": "given", "recorded_by": "school counsellor"},
    "requested_services": ["mentoring"],
    "intervention_type": "individual_mentoring",
    "narrative": "Teacher reports the pupil sharing recruitment videos in class chat.",
}

# A referral as its referring agency reads it (other agencies see the fields their view grants).
REFERRAL_OUT: dict[str, Any] = {
    "id": REFERRAL_ID, "schema": "referral/v1", "network": "demo-city", "referring_agency": "school-north",
    "referring_person": None,
    "subject": {"id": "sub_Zg1OsAKG_dy75bpV", "given_name": "Amira", "family_name": "Example",
                "date_of_birth": "2010-05-02", "age_band": "13_15", "gender": "female", "district": "al-mina",
                "address": None, "email": None, "phone": None, "ethnicity": None, "religion": None, "language": None,
                "identifiers": [{"system": "national_id", "value": "LB-000123"}]},
    "concerns": ["online_radicalisation_exposure"], "vulnerability_factors": ["social_isolation"],
    "protective_factors": ["supportive_family"], "risk_level": "medium", "urgency": "priority",
    "consent": {"status": "given", "legal_basis": "consent", "recorded_at": TIME, "recorded_by": "school counsellor"},
    "requested_services": ["mentoring"], "intervention_type": "individual_mentoring",
    "narrative": "Teacher reports the pupil sharing recruitment videos in class chat.", "do_not_contact": False,
    "code_system": None, "original_codes": {}, "status": "submitted", "outcome": None, "assigned_agencies": [],
    "status_history": [{"from_status": None, "status": "submitted", "at": TIME, "by_agency": "school-north",
                        "reason": None, "outcome": None, "agencies": [], "to_network": None}],
    "link_conflicts": [], "created_at": TIME, "updated_at": TIME,
}
NOTE_OUT: dict[str, Any] = {
    "id": "note_05h5eTq8qAvfYWfW", "schema": "note/v1", "referral_id": REFERRAL_ID, "author_agency": "school-north",
    "author_person": None, "classification": "shared", "text": "Met the family; mentoring starts next week.",
    "supersedes": None, "superseded_by": None, "created_at": TIME,
}

MEETING_ID = "mtg_q0RmV2x4bEz9TcUu"
MEETING_OUT: dict[str, Any] = {
    "id": MEETING_ID, "network": "demo-city", "kind": "regular", "scheduled_for": "2026-03-09T10:00:00+00:00",
    "status": "scheduled", "chair": "city-municipality", "closed_at": None,
    "agenda": [{"number": 1, "referral_id": REFERRAL_ID, "reason": "newly_triaged",
                "invited": ["city-social-services", "school-north"], "attended": None, "decision": None}],
}
ACTION_OUT: dict[str, Any] = {
    "id": "act_Jd8QwZ0kLr1sVb3N", "referral_id": REFERRAL_ID, "meeting_id": MEETING_ID, "number": 1,
    "description": "Home visit with the family.", "owner_agency": "city-social-services", "due_on": "2026-03-16",
    "status": "open", "completion_note": None, "created_at": TIME, "updated_at": TIME,
}
ACTION_RECEIPT = {"id": "act_Jd8QwZ0kLr1sVb3N", "referral_id": REFERRAL_ID, "owner_agency": "city-social-services",
                  "due_on": "2026-03-16", "status": "open"}

REQUEST_EXAMPLES: dict[str, Any] = {
    "issue_token": {"grant_type": "client_credentials", "client_id": "school-north-referrer",
                    "client_secret": "s3cr3t-from-the-operator"},
    "create_agency": {"id": "youth-club-east", "name": "East youth club", "sector": "youth_work"},
    "create_client": {"agency_id": "youth-club-east", "name": "East youth club case system",
                      "roles": ["referrer", "caseworker"]},
    "create_mapping": {"mapping": "youth-club-east-local", "agency": "youth-club-east", "version": 1,
                       "codes": {"risk_level": {"R1": "low", "R2": "medium", "R3": "high"}}},
    "create_referral": REFERRAL_IN,
    "transition_referral": {"to": "assigned", "agencies": ["youth-ngo-bridges"]},
    "update_consent": {"status": "given", "recorded_by": "school counsellor"},
    "reassess_referral": {"risk_level": "high", "intervention_type": "family_intervention",
                          "reason": "Threats to a classmate reported by the school on 2 December."},
    "create_note": {"classification": "shared", "text": "Met the family; mentoring starts next week."},
    "schedule_meeting": {"scheduled_for": "2026-03-09T10:00:00+00:00", "kind": "regular", "propose_agenda": True},
    "add_agenda_item": {"referral_id": REFERRAL_ID, "invited": ["city-social-services", "school-north"]},
    "edit_agenda_item": {"attended": ["city-social-services"]},
    "record_minutes": {"text": "The school and social services shared what they know; the panel accepts.",
                       "decision": "accept"},
    "create_action": {"description": "Home visit with the family.", "owner_agency": "city-social-services",
                      "due_on": "2026-03-16", "meeting_id": MEETING_ID, "number": 1},
    "update_action": {"status": "done", "note": "Visited on 12 March; the family engages."},
    "explain_decision": {"purpose": "safeguarding_assessment", "referral_id": REFERRAL_ID},
    "request_emergency_access": {"reason": "Credible threat reported tonight; the referring school is closed."},
    "review_emergency_grant": {"finding": "justified", "note": "Threat confirmed by police the same night."},
    "erase_subject": {"legal_ground": "consent_withdrawn", "reference": "DPO-2026-0042"},
    "place_legal_hold": {"agency_id": "school-north", "reason": "Court order 2026/117: keep all records."},
    "lift_legal_hold": {"reason": "Proceedings closed."},
    "place_referral_legal_hold": {"reason": "Serious case review in progress."},
    "lift_referral_legal_hold": {"reason": "Review concluded."},
    "record_training": {"person_id": "lina-caseworker", "course_id": "data-protection-basics",
                        "completed_on": "2026-11-20", "expires_on": "2028-11-20"},
    "sign_agreement": {"content_hash": "9c1e4b7f2a6d8e3c5b0a7f9d1e2c4b6a8d0f3e5c7b9a1d2e4f6a8c0b2d4e6f8a"},
}

# Where one operation answers several media types: (operation, media type) -> example.
MEDIA_EXAMPLES: dict[tuple[str, str], Any] = {
    ("export_audit_log", "application/x-ndjson"):
        '{"seq": 1, "leaf": "AAEC…", "entry": {"event_type": "disclosure", "at": "2026-01-15T09:30:00Z"}}\n',
    ("export_audit_log", "application/fhir+json"):
        '{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "AuditEvent"}}]}',
    ("get_statistics", "text/csv"): "period,risk_level,count,suppressed\n2026-Q1,medium,12,false\n",
    ("get_audit_checkpoint", "text/plain"):
        "casebridge.example/audit\n42\nqBfS1wM1cRZ5J2b8oN3m0pH0a2c9lXk7v4eTzY1uG8s=\n\n"
        "\u2014 casebridge.example/audit Ab3xYw…\n",
    ("get_audit_verifier_keys", "text/plain"): "casebridge.example/audit+1a2b3c4d+AY5nq0m…\n",
}

TRAINING_RECORD_OUT: dict[str, Any] = {
    "id": "trn_V4wq9XbT0sLm2KcE", "person_id": "lina-caseworker", "course_id": "data-protection-basics",
    "completed_on": "2026-11-20", "expires_on": "2028-11-20", "recorded_by": "amal-coordinator", "recorded_at": TIME,
    "source": "api",
}

RESPONSE_EXAMPLES: dict[str, Any] = {
    "record_training": TRAINING_RECORD_OUT,
    "list_training_records": {"items": [TRAINING_RECORD_OUT]},
    "training_status": {"person_id": "lina-caseworker", "courses": [{
        "course_id": "data-protection-basics", "state": "expiring", "completed_on": "2024-12-20",
        "expires_on": "2026-12-20"}]},
    "create_referral": REFERRAL_OUT,
    "get_referral": REFERRAL_OUT,
    "list_referrals": {"items": [REFERRAL_OUT], "next_cursor": None},
    "transition_referral": REFERRAL_OUT | {"status": "assigned", "assigned_agencies": ["youth-ngo-bridges"]},
    "update_consent": REFERRAL_OUT,
    "reassess_referral": REFERRAL_OUT | {"risk_level": "high", "intervention_type": "family_intervention"},
    "list_assessments": {"items": [{
        "number": 1, "at": "2026-12-03T10:15:00+00:00", "by_agency": "city-municipality", "risk_level": "high",
        "concerns": ["threat_of_violence"], "vulnerability_factors": [], "protective_factors": ["supportive_family"],
        "intervention_type": "family_intervention", "reason": "Threats to a classmate reported by the school.",
        "assessed_by": "A. Haddad, focal point"}]},
    "get_worklist": {"network": "demo-city", "items": [{
        "referral_id": REFERRAL_ID, "kind": "triage_overdue", "due_since": "2026-03-03T09:00:00+00:00",
        "status": "submitted", "urgency": "immediate", "detail": "not triaged within PT24H (immediate)"}],
        "agreements": [{
            "kind": "agreement_review_30", "agreement": "demo-city", "version": 3, "review_by": "2027-06-30",
            "days_left": 20, "detail": "agreement demo-city version 3 is due for review by 2027-06-30 (20 days): "
                                       "from that day nothing is shared under it until a renewed version is signed"}]},
    "schedule_meeting": MEETING_OUT,
    "add_agenda_item": MEETING_OUT,
    "edit_agenda_item": MEETING_OUT,
    "get_meeting": MEETING_OUT,
    "list_meetings": {"items": [{k: MEETING_OUT[k] for k in ("id", "network", "kind", "scheduled_for", "status")}]},
    "close_meeting": {"id": MEETING_ID, "status": "closed"},
    "remove_agenda_item": {"id": MEETING_ID, "status": "scheduled"},
    "record_minutes": {"id": 1, "meeting_id": MEETING_ID, "number": 1, "kind": "minutes", "decision": "accept",
                       "at": "2026-03-09T10:40:00+00:00"},
    "get_agenda_referral": REFERRAL_OUT,
    "list_minutes": {"items": [{"meeting_id": MEETING_ID, "scheduled_for": "2026-03-09T10:00:00+00:00", "number": 1,
                                "decision": "accept", "attended": ["city-social-services"],
                                "entries": [{"id": 1, "kind": "minutes", "decision": "accept",
                                             "by_agency": "city-municipality", "at": "2026-03-09T10:40:00+00:00",
                                             "text": "The panel accepts; social services visit the family."}]}]},
    "create_action": ACTION_RECEIPT,
    "update_action": ACTION_RECEIPT | {"status": "done"},
    "list_referral_actions": {"items": [ACTION_OUT]},
    "list_my_actions": {"items": [ACTION_OUT | {"status": "overdue"}]},
    "create_note": NOTE_OUT,
    "list_notes": {"items": [NOTE_OUT], "next_cursor": None},
    "get_health": {"status": "ok"},
    "get_readiness": {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "keyring": "ok"}},
    "get_metrics": "# HELP casebridge_http_requests_total HTTP requests\n"
                   'casebridge_http_requests_total{method="GET",route="/healthz",status="200"} 3.0\n',
    "get_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                   "$id": "https://casebridge.example/schemas/referral/v1", "title": "Referral", "type": "object"},
    "list_vocabularies": {"items": [{"name": "risk_level", "version": 1, "title": "Risk levels",
                                     "description": "The network's professional judgement of the risk of harm.",
                                     "language": "en", "url": "/v1/vocabularies/risk_level", "codes": 4}],
                          "next_cursor": None},
    "get_vocabulary": {"name": "risk_level", "version": 1, "title": "Risk levels",
                       "description": "The network's professional judgement of the risk of harm.", "language": "en",
                       "codes": [{"code": "low", "label": "Low", "rank": 1,
                                  "definition": "Concerns are present but no sign of movement towards violence."}]},
    "get_statistics": {"dimensions": ["risk_level"], "min_cell": 5,
                       "cells": [{"risk_level": "medium", "count": 12}, {"risk_level": "high", "count": None,
                                                                         "suppressed": True}],
                       "margins": [{"dimensions": [], "cells": [{"count": 19}]}],
                       "period": "quarter", "agreement": "national-statistics", "networks": ["demo-city"]},
    "issue_token": {"access_token": "eyJhbGciOiJFUzI1NiIsImtpZCI6Ik…", "token_type": "Bearer", "expires_in": 900},
    "get_me": {"client_id": "school-north-referrer", "agency": "school-north", "sector": "education",
               "roles": ["caseworker", "referrer"], "act": None},
}
