"""The demo networks: a fictional city's and a town's prevention networks, seeded idempotently."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agencies import service
from app.agencies.models import Agency, ApiClient
from app.agencies.schemas import AgencyIn, ClientIn, Role, Sector
from app.agreements.signing import sign_for_every_party
from app.config import Settings
from app.state import AppState

log = logging.getLogger("casebridge.demo")

DEMO_AGENCIES: list[tuple[str, str, Sector]] = [
    ("city-municipality", "City Municipality — prevention focal point", Sector.local_government),
    ("city-social-services", "City Social Services", Sector.social_services),
    ("school-north", "North Secondary School", Sector.education),
    ("school-south", "South Secondary School", Sector.education),
    ("city-health-centre", "City Health Centre", Sector.health),
    ("city-community-police", "Community Police", Sector.police),
    ("youth-ngo-bridges", "Bridges Youth NGO", Sector.youth_work),
    ("religious-council", "Religious Community Council", Sector.religious_community),
    ("national-prevention-authority", "National Prevention Authority", Sector.national_authority),
    ("independent-auditor", "Independent Data-Protection Auditor", Sector.civil_society),
    # The second demo network (policies/networks/demo-town.yaml), isolated from the first.
    ("town-council", "Town Council — prevention focal point", Sector.local_government),
    ("town-school", "Town Secondary School", Sector.education),
    ("town-social-services", "Town Social Services", Sector.social_services),
    ("town-youth-club", "Town Youth Club", Sector.youth_work),
]
# The agreements the demo ships (policies/), which seeding it signs for their parties, the shipped
# training network's included; one `casebridge training-network create` writes is signed as it is made.
DEMO_AGREEMENTS = frozenset({"demo-city", "demo-town", "national-statistics", "training-demo"})

DEMO_CLIENTS: list[tuple[str, str, str, list[Role]]] = [
    ("municipality-coordinator", "city-municipality", "Focal point coordinator", [Role.coordinator]),
    ("municipality-operator", "city-municipality", "CaseBridge operator", [Role.admin]),
    ("social-services-caseworker", "city-social-services", "Social services case system",
     [Role.referrer, Role.caseworker]),
    ("school-north-referrer", "school-north", "North school counsellor",
     [Role.referrer, Role.caseworker]),
    ("school-south-referrer", "school-south", "South school counsellor",
     [Role.referrer, Role.caseworker]),
    ("health-centre-caseworker", "city-health-centre", "Health centre case system",
     [Role.referrer, Role.caseworker]),
    ("community-police-caseworker", "city-community-police", "Community police liaison",
     [Role.referrer, Role.caseworker]),
    ("youth-ngo-caseworker", "youth-ngo-bridges", "Bridges mentoring team", [Role.caseworker]),
    ("youth-ngo-reader", "youth-ngo-bridges", "Bridges partner sync", [Role.partner_reader]),
    ("religious-council-reader", "religious-council", "Council partner sync",
     [Role.partner_reader]),
    ("national-statistics", "national-prevention-authority", "National statistics feed",
     [Role.statistics_reader]),
    ("independent-auditor", "independent-auditor", "Data-protection auditor", [Role.auditor]),
    ("town-coordinator", "town-council", "Town focal point coordinator", [Role.coordinator]),
    ("town-school-referrer", "town-school", "Town school counsellor", [Role.referrer, Role.caseworker]),
    ("town-social-caseworker", "town-social-services", "Town social services case system",
     [Role.referrer, Role.caseworker]),
    ("town-youth-reader", "town-youth-club", "Youth club partner sync", [Role.partner_reader]),
]


# People who sign in to the console (docs/console.md), one for each role's job in the city network;
# their passwords are generated at the first start and written beside the clients' (demo-people.json).
DEMO_PEOPLE: list[tuple[str, str, str, list[Role]]] = [
    ("amal-coordinator", "city-municipality", "Amal Haddad", [Role.coordinator]),
    ("sami-referrer", "school-north", "Sami Nasser", [Role.referrer, Role.caseworker]),
    ("lina-caseworker", "city-social-services", "Lina Karam", [Role.referrer, Role.caseworker]),
    ("omar-reader", "youth-ngo-bridges", "Omar Saleh", [Role.partner_reader]),
    ("dana-auditor", "independent-auditor", "Dana Aziz", [Role.auditor]),
]


DEMO_COURSE = "data-protection-basics"  # what demo-city's contact view requires of its recipients
# The demo's refusal for training: this person's course expired a month ago (the console warns, and
# an assigned referral shows the case view, not the contact details, until a coordinator records a renewal).
DEMO_EXPIRED = "sami-referrer"


def seed_demo_training(session: Session, today: date) -> None:
    """A current completion of the demo course for every demo client and person without any record."""
    from app.training.models import TrainingRecord
    from app.training.service import add

    everyone = {c[0]: c[1] for c in DEMO_CLIENTS} | {p[0]: p[1] for p in DEMO_PEOPLE}  # id: agency
    recorded = set(session.scalars(select(TrainingRecord.person_id).where(TrainingRecord.person_id.in_(everyone))))
    now = datetime.combine(today, time(), UTC)
    for person_id, agency_id in everyone.items():
        if person_id in recorded:
            continue
        completed = today - timedelta(days=400 if person_id == DEMO_EXPIRED else 60)
        add(session, person_id=person_id, agency_id=agency_id, course_id=DEMO_COURSE, completed_on=completed,
            expires_on=completed + timedelta(days=365 if person_id == DEMO_EXPIRED else 730),
            recorded_by="municipality-coordinator", source="import", now=now)


def database_is_empty(session: Session) -> bool:
    return session.scalar(select(Agency.id).limit(1)) is None


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / "demo-clients.json"


def _known_secrets(settings: Settings) -> dict[str, str]:
    try:
        rows = json.loads(credentials_path(settings).read_text())
        return {str(r["client_id"]): str(r["client_secret"]) for r in rows}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def seed_demo(session: Session, state: AppState) -> list[dict[str, Any]]:
    """Create what is missing; return every demo client's credentials, all of them working."""
    from app.migrate import lock_for_seeding

    lock_for_seeding(session)  # seeders at once (processes starting, `casebridge demo`) take turns
    settings, hasher = state.settings, state.secret_hasher
    # Two reads and two flushes, whatever exists already (the suite seeds a fresh database per test).
    agencies = set(session.scalars(select(Agency.id).where(Agency.id.in_([a for a, _, _ in DEMO_AGENCIES]))))
    session.add_all(service.new_agency(AgencyIn(id=agency_id, name=name, sector=sector))
                    for agency_id, name, sector in DEMO_AGENCIES if agency_id not in agencies)
    session.flush()  # the agencies before their clients
    clients = {c.id: c for c in session.scalars(
        select(ApiClient).where(ApiClient.id.in_([c for c, _, _, _ in DEMO_CLIENTS])))}
    known = _known_secrets(settings)
    sectors = {a: s for a, _, s in DEMO_AGENCIES}
    credentials = []
    for client_id, agency_id, name, roles in DEMO_CLIENTS:
        existing = clients.get(client_id)
        if existing is None:
            created = service.new_client(
                client_id, ClientIn(id=client_id, agency_id=agency_id, name=name, roles=roles), hasher=hasher
            )
            session.add(created.client)
            secret = created.secret
        elif client_id in known and hasher.verify(client_id, known[client_id], existing.secret_hash):
            secret = known[client_id]
            if hasher.needs_rehash(existing.secret_hash):  # a legacy scrypt hash, or an older pepper
                existing.secret_hash = hasher.hash(client_id, secret)
        else:
            # The secret was shown once and lost: a demo client gets a fresh one.
            secret = service.reset_client_secret(session, client_id, hasher=hasher)
        credentials.append({
            "client_id": client_id,
            "client_secret": secret,
            "agency": agency_id,
            "sector": sectors[agency_id].value,
            "roles": sorted(r.value for r in roles),
        })
    seed_demo_training(session, state.clock().date())
    session.flush()
    # The demo's own agreements, signed for each party; a deployment's real ones only by their parties.
    sign_for_every_party(session, state, "demo", only=DEMO_AGREEMENTS)
    return credentials


def seed_demo_people(session: Session) -> list[dict[str, Any]]:
    """The demo people, each with a fresh password (shown once, in demo-people.json)."""
    import secrets

    from app.console.people import create_person

    made = []
    for person_id, agency_id, name, roles in DEMO_PEOPLE:
        password = secrets.token_urlsafe(12)
        create_person(session, person_id=person_id, agency_id=agency_id, name=name,
                      roles=[r.value for r in roles], password=password)
        made.append({"id": person_id, "password": password, "agency": agency_id, "name": name,
                     "roles": [r.value for r in roles]})
    return made


def people_path(settings: Settings) -> Path:
    return settings.data_dir / "demo-people.json"


def write_credentials(credentials: list[dict[str, Any]], settings: Settings, path: Path | None = None) -> Path:
    path = path or credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


# -- demo cases ---------------------------------------------------------------------------
# Fictional people, one per referral, so that each demo role's first call shows something:
# the coordinator's queue, the referrer's closed loop, a partner's summaries, the statistics.
# Each is created and moved by the real services, as its demo client would through the API,
# and each step leaves the disclosure-log entry the API leaves.

_CASE_STEPS: list[tuple[str, str, str, list[Any]]] = [
    # (given name, district, referring client, steps: (client, target, extra body))
    ("Amira", "old-town", "school-north-referrer", []),
    ("Bilal", "harbour", "school-south-referrer", [("municipality-coordinator", "triaged", {})]),
    ("Chiara", "old-town", "school-north-referrer",
     [("municipality-coordinator", "triaged", {}), ("municipality-coordinator", "accepted", {})]),
    ("Dario", "riverside", "health-centre-caseworker",
     [("municipality-coordinator", "triaged", {}),
      ("municipality-coordinator", "declined", {"reason": "No extremism-related concern; signposted to the GP."})]),
    ("Elif", "harbour", "social-services-caseworker",
     [("municipality-coordinator", "triaged", {}), ("municipality-coordinator", "accepted", {}),
      ("municipality-coordinator", "assigned", {"agencies": ["youth-ngo-bridges", "city-social-services"]})]),
    ("Farid", "old-town", "school-north-referrer",
     [("municipality-coordinator", "triaged", {}), ("municipality-coordinator", "accepted", {}),
      ("municipality-coordinator", "assigned", {"agencies": ["youth-ngo-bridges"]}),
      ("youth-ngo-caseworker", "in_intervention", {})]),
    ("Greta", "riverside", "community-police-caseworker",
     [("municipality-coordinator", "triaged", {}), ("municipality-coordinator", "accepted", {}),
      ("municipality-coordinator", "assigned", {"agencies": ["city-social-services"]}),
      ("social-services-caseworker", "in_intervention", {}),
      ("municipality-coordinator", "closed", {"outcome": "risk_reduced"})]),
    ("Hassan", "harbour", "school-south-referrer",
     [("school-south-referrer", "withdrawn", {"reason": "Sent to the wrong network by mistake."})]),
    ("Ines", "old-town", "school-north-referrer",
     [("municipality-coordinator", "triaged", {}),
      ("municipality-coordinator", "transferred",
       {"to_network": "demo-town", "reason": "The family moved to the town."})]),
    ("Jonas", "town-centre", "town-school-referrer",
     [("town-coordinator", "triaged", {}), ("town-coordinator", "accepted", {})]),
]
_CONCERNS = [["online_radicalisation_exposure"], ["hate_speech", "school_conflict"],
             ["extremist_ideology_expressed"], ["self_isolation_grievance"], ["recruitment_contact"]]
_SERVICES = [["mentoring"], ["family_support"], ["psychosocial_support", "mentoring"],
             ["sports_and_youth_programme"], ["counter_narrative_dialogue"]]


def _demo_body(index: int, given_name: str, district: str, referrer: str) -> dict[str, Any]:
    return {
        "schema": "referral/v1",
        "network": "demo-town" if referrer.startswith("town-") else "demo-city",
        "subject": {"given_name": given_name, "family_name": "Demo",
                    "date_of_birth": f"{2008 + index % 3}-0{1 + index % 9}-1{index}", "district": district,
                    "identifiers": [{"system": "national_id", "value": f"DEMO-{index:04d}"}]},
        "concerns": _CONCERNS[index % len(_CONCERNS)],
        "vulnerability_factors": ["social_isolation"],
        "risk_level": ["low", "medium", "high"][index % 3],
        "urgency": "priority",
        "consent": {"status": "given", "recorded_by": "demo caseworker"},
        "requested_services": _SERVICES[index % len(_SERVICES)],
        "narrative": f"Demo case {index + 1}: fictional, for trying CaseBridge out.",
    }


def demo_cases_present(session: Session) -> bool:
    from app.referrals.models import Referral

    return session.scalar(select(Referral.id).limit(1)) is not None


def seed_demo_cases(session: Session, state: AppState) -> int:
    """Referrals in every status, made and moved by the demo clients; none when any referral exists.

    Returns how many it created.  Call after ``seed_demo`` in the same transaction.
    """
    from app import disclose, door
    from app.audit.events import EventType
    from app.auth.principal import Principal
    from app.referrals import service as referrals
    from app.referrals.schemas import TransitionIn
    from app.retention.dates import RetentionRules
    from app.subjects import links
    from app.subjects.models import Subject

    if demo_cases_present(session):
        return 0
    policies = state.policies.current
    today = state.clock().date()
    for network in ("demo-city", "demo-town"):
        if not any(network in referrals.referable_networks(policies, c[1], today) for c in DEMO_CLIENTS):
            # The demo agreements are not in force (past their review date, or replaced): no cases.
            log.warning("demo referrals not seeded: no demo agreement in force", extra={"network": network})
            return 0
    clients = {c[0]: c for c in DEMO_CLIENTS}
    sectors = {a: s for a, _, s in DEMO_AGENCIES}

    def principal(client_id: str) -> Principal:
        _, agency_id, _, roles = clients[client_id]
        return Principal(client_id=client_id, agency_id=agency_id, sector=sectors[agency_id].value,
                         roles=frozenset(r.value for r in roles), act=None, token_id="demo-seed")  # noqa: S106 - an id, not a secret

    crypto = referrals.Crypto(state.envelope, state.blind_index)
    retention = RetentionRules.of(policies, state.settings.max_open_retention)
    for index, (given_name, district, referrer, steps) in enumerate(_CASE_STEPS):
        who = principal(referrer)
        body = _demo_body(index, given_name, district, referrer)
        referral = referrals.create(session, crypto, who, body, state.clock(), policies=policies, retention=retention)
        subject = session.get(Subject, referral.subject_id)
        assert subject is not None  # just created with the referral
        ctx = disclose.ReadContext(who, "", None, "demo-seed")
        created = door.own_submission(ctx, referral, subject, state.envelope, referrals.ALL_FIELDS,
                                      event_type=EventType.create, reason="created")
        state.audit.append_many(session, [created.event, *links.link_events(session, who, referral, "demo-seed")],
                                now=state.clock())
        for client_id, target, extra in steps:
            mover = principal(client_id)
            moved, before = referrals.transition(
                session, policies, mover, referral.id, TransitionIn(to=target, **extra), None, state.clock(),
                crypto=crypto, retention=retention,
            )
            events = [disclose.change_event(
                mover, EventType.transition, subject_id=moved.subject_id, record_ids={"referral_id": moved.id},
                request_id="demo-seed", from_status=before.status, to_status=moved.status,
                agencies=sorted(extra.get("agencies", [])), outcome=extra.get("outcome"), fields=["status"],
            )]
            if moved.network_id != before.network_id:
                events.append(referrals.transfer_event(policies, mover, moved, before.network_id, "demo-seed"))
            state.audit.append_many(session, events, now=state.clock())
    return len(_CASE_STEPS)
