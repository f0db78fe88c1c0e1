"""The demo networks: a fictional city's and a town's prevention networks, seeded idempotently."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agencies import repository, service
from app.agencies.models import Agency
from app.agencies.schemas import AgencyIn, ClientIn, Role, Sector
from app.config import Settings
from app.state import AppState

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
    settings, hasher = state.settings, state.secret_hasher
    for agency_id, name, sector in DEMO_AGENCIES:
        if repository.get_agency(session, agency_id) is None:
            service.add_agency(session, AgencyIn(id=agency_id, name=name, sector=sector))
    known = _known_secrets(settings)
    sectors = {a: s for a, _, s in DEMO_AGENCIES}
    credentials = []
    for client_id, agency_id, name, roles in DEMO_CLIENTS:
        existing = repository.get_client(session, client_id)
        if existing is None:
            secret = service.add_client(
                session,
                ClientIn(id=client_id, agency_id=agency_id, name=name, roles=roles),
                hasher=hasher,
            ).secret
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
    return credentials


def write_credentials(credentials: list[dict[str, Any]], settings: Settings) -> Path:
    path = credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
