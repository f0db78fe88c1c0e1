"""Build a training network: its network file and agreement, synthetic agencies, people and cases.

The files go into the policies directory like any network's (the network file says `training: true`);
the rows are made by the same services the API calls, so every step leaves the log entries a real one
would, each marked training (app/audit/service.py). Ids all start with `training`, so nothing made
here can be mistaken for a real agency, client or person.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import yaml
from sqlalchemy.orm import Session

from app.agencies import service as agencies
from app.agencies.schemas import AgencyIn, ClientIn, Role, Sector
from app.policy.loader import NETWORKS_FOLDER
from app.state import AppState
from app.training_network.synthetic import LOCALES, Synthesizer, SyntheticPerson

ID_PATTERN: Final = re.compile(r"^training(-[a-z0-9]+)*$")
MAX_ID_LENGTH: Final = 32

# (agency suffix, name, sector)
_AGENCIES: Final = (
    ("coordination", "Coordination — training focal point", Sector.local_government),
    ("school", "Training Secondary School", Sector.education),
    ("social-services", "Training Social Services", Sector.social_services),
    ("youth-ngo", "Training Youth NGO", Sector.youth_work),
    ("dpo", "Training Data-Protection Office", Sector.civil_society),
)
# (client suffix, agency suffix, name, roles): one API client per role's job, as the demo's.
_CLIENTS: Final = (
    ("coordinator", "coordination", "Training coordinator", (Role.coordinator,)),
    ("school-referrer", "school", "Training school counsellor", (Role.referrer, Role.caseworker)),
    ("social-caseworker", "social-services", "Training social services case system",
     (Role.referrer, Role.caseworker)),
    ("youth-reader", "youth-ngo", "Training youth NGO partner sync", (Role.partner_reader,)),
    ("auditor", "dpo", "Training data-protection officer", (Role.auditor,)),
)
# (person suffix, agency suffix, roles): the people of each locale who sign in to the console.
_PEOPLE: Final = (
    ("coordinator", "coordination", (Role.coordinator,)),
    ("caseworker", "school", (Role.referrer, Role.caseworker)),
    ("partner", "youth-ngo", (Role.partner_reader,)),
    ("dpo", "dpo", (Role.auditor,)),
)
# A referral's way to each status (the coordinator moves it; `assigned` goes to social services).
_PATHS: Final[tuple[tuple[str, ...], ...]] = (
    (),
    ("triaged",),
    ("triaged", "accepted"),
    ("triaged", "declined"),
    ("triaged", "accepted", "assigned"),
    ("triaged", "accepted", "assigned", "in_intervention"),
    ("triaged", "accepted", "assigned", "in_intervention", "closed"),
    ("withdrawn",),
)
MIN_PEOPLE: Final = len(_PATHS)


class TrainingNetworkInvalid(ValueError):
    """The options cannot make a training network (the message says why)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to build: the network id, the locales of its people, how many people are referred, the seed."""

    network_id: str
    locales: tuple[str, ...]
    people: int
    seed: int

    def __post_init__(self) -> None:
        if not ID_PATTERN.match(self.network_id) or len(self.network_id) > MAX_ID_LENGTH:
            raise TrainingNetworkInvalid(
                f"a training network's id starts with 'training' (then '-' and lowercase letters or digits), "
                f"at most {MAX_ID_LENGTH} characters: not {self.network_id!r}")
        unknown = [loc for loc in self.locales if loc not in LOCALES]
        if unknown or not self.locales:
            raise TrainingNetworkInvalid(f"locales are {', '.join(LOCALES)}: not {', '.join(unknown) or 'none'}")
        if self.people < MIN_PEOPLE:
            raise TrainingNetworkInvalid(f"at least {MIN_PEOPLE} people, one referral in every status")

    def agency(self, suffix: str) -> str:
        return f"{self.network_id}-{suffix}"

    def client(self, suffix: str) -> str:
        return f"{self.network_id}-{suffix}"

    def person(self, locale: str, suffix: str) -> str:
        return f"{self.network_id}-{locale}-{suffix}"


def network_document(plan: Plan) -> dict[str, Any]:
    return {
        "network": plan.network_id,
        "name": f"Training network {plan.network_id}",
        "description": "Synthetic people and cases for practice (casebridge training-network create); "
                       "isolated from every real network.",
        "training": True,
        "locales": list(plan.locales),
        "coordinator": plan.agency("coordination"),
        "members": [plan.agency(suffix) for suffix, _, _ in _AGENCIES],
        "protocol": {"meetings": {"cadence": "P1M"}},
        # The record of processing names who answers for the practice data too (all of it synthetic).
        "controller": {"name": f"Training coordination of {plan.network_id}",
                       "contact": f"training@{plan.network_id}.example"},
        "dpo": {"name": f"Data protection officer of {plan.network_id}",
                "contact": f"dpo@{plan.network_id}.example"},
        "transfers": "none",
    }


def agreement_document(plan: Plan, today: date) -> dict[str, Any]:
    coordinator = {"agencies": [plan.agency("coordination")], "roles": ["coordinator"]}
    everything = ["safeguarding_assessment", "intervention_planning", "service_provision"]
    return {
        "agreement": plan.network_id,
        "network": plan.network_id,
        "version": 1,
        "title": f"Training network {plan.network_id} — practice agreement (synthetic data only)",
        "effective_from": today.isoformat(),
        "review_by": (today + timedelta(days=365)).isoformat(),
        "controller_contact": f"dpo@{plan.network_id}.example",
        "parties": [plan.agency(suffix) for suffix, _, _ in _AGENCIES if suffix != "dpo"],
        "purposes": {
            "safeguarding_assessment": "Practise deciding whether a referred person needs multi-agency support.",
            "intervention_planning": "Practise planning support for an accepted referral.",
            "service_provision": "Practise delivering a requested service.",
            "subject_access": "Practise answering a person's request to know who received their data.",
        },
        "views": {
            "referral.status": ["id", "network", "status", "status_history", "outcome", "referring_agency",
                                "assigned_agencies", "updated_at"],
            "referral.summary": ["id", "subject.age_band", "subject.district", "concerns", "requested_services",
                                 "status"],
            "referral.recipients": ["id", "referring_agency", "assigned_agencies"],
            "referral.case": {"include": ["referral.summary"], "fields": [
                "subject.id", "subject.gender", "subject.language", "vulnerability_factors", "protective_factors",
                "risk_level", "urgency", "consent", "intervention_type", "narrative", "do_not_contact",
                "referring_agency", "assigned_agencies", "updated_at"]},
            "referral.full": {"include": ["referral.case", "referral.status"],
                              "fields": ["subject.*", "schema", "referring_person", "created_at"]},
            "notes.shared": {"notes": {"classification": ["shared"]}},
            "notes.all": {"notes": {"classification": ["shared", "restricted", "health", "police", "education",
                                                       "social_care"]}},
        },
        "rules": [
            _rule("coordinator-full", coordinator, "referral.full", everything[:2], "P6Y after closed",
                  special_category_condition="substantial_public_interest"),
            _rule("owner-full", {"relation": "owner"}, "referral.full", everything, "P6Y after closed",
                  special_category_condition="substantial_public_interest"),
            _rule("referrer-status", {"relation": "referrer"}, "referral.status", everything, "P2Y after closed"),
            _rule("assigned-agency-case", {"relation": "assigned", "sectors": ["social_services", "education"]},
                  "referral.case", everything[1:], "P2Y after closed",
                  when={"consent": ["given", "not_required"], "status": ["assigned", "in_intervention", "closed"]}),
            _rule("partner-summary", {"sectors": ["youth_work"], "roles": ["partner_reader"]}, "referral.summary",
                  ["service_provision"], "P90D", legal_basis="consent",
                  when={"consent": ["given"], "status": ["accepted", "assigned", "in_intervention"]}),
            _rule("author-notes", {"relation": "owner"}, "notes.all", everything, "P6Y after closed",
                  special_category_condition="health_social_care"),
            _rule("coordinator-notes", coordinator, "notes.shared", everything[:2], "P6Y after closed"),
            _rule("assigned-shared-notes", {"relation": "assigned"}, "notes.shared", everything[1:],
                  "P2Y after closed"),
            _rule("coordinator-subject-access", coordinator, "referral.recipients", ["subject_access"],
                  "P1Y after closed", legal_basis="legal_obligation"),
        ],
        "deny": [{"id": "no-health-notes-to-partners", "to": {"roles": ["partner_reader"]},
                  "view": {"notes": {"classification": ["health"]}},
                  "description": "Civil-society partners never receive health notes."}],
    }


def _rule(rule_id: str, to: dict[str, Any], view: str, purposes: list[str], retention: str, *,
          legal_basis: str = "public_task", **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "to": to, "view": view, "purposes": purposes, "legal_basis": legal_basis,
            "retention": retention, **extra}


def file_paths(policies_dir: Path, plan: Plan) -> tuple[Path, Path]:
    """The network file and the agreement file."""
    return policies_dir / NETWORKS_FOLDER / f"{plan.network_id}.yaml", policies_dir / f"{plan.network_id}.yaml"


def write_files(policies_dir: Path, plan: Plan, today: date) -> tuple[Path, Path]:
    """Write both files; refused when either exists (a training network is made once, never overwritten)."""
    network_path, agreement_path = file_paths(policies_dir, plan)
    taken = [str(p) for p in (network_path, agreement_path) if p.exists()]
    if taken:
        raise TrainingNetworkInvalid(f"{taken[0]} exists already: choose another --id")
    header = "# Generated by `casebridge training-network create`: a TRAINING network, synthetic data only.\n"
    network_path.parent.mkdir(parents=True, exist_ok=True)
    for path, document in ((network_path, network_document(plan)), (agreement_path, agreement_document(plan, today))):
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=110, default_flow_style=None)
        path.write_text(header + text, "utf-8")
    return network_path, agreement_path


@dataclass(frozen=True, slots=True)
class Seeded:
    """What `seed` made: the clients' and people's credentials (shown once) and the referrals' count."""

    clients: list[dict[str, Any]]
    people: list[dict[str, Any]]
    referrals: int


def seed(session: Session, state: AppState, plan: Plan) -> Seeded:
    """Agencies, API clients, people and referrals of the training network (its files loaded and in force)."""
    from app.console.people import create_person

    network = state.policies.current.network(plan.network_id)
    if network is None or not network.training:
        raise TrainingNetworkInvalid(f"{plan.network_id!r} is not a training network in force: check its files "
                                     "with `casebridge policy check`")
    synth = Synthesizer(plan.seed)
    _sign(session, state, plan)
    for suffix, name, sector in _AGENCIES:
        session.add(agencies.new_agency(AgencyIn(id=plan.agency(suffix), name=name, sector=sector)))
    session.flush()
    clients = []
    for suffix, agency_suffix, name, roles in _CLIENTS:
        client_id = plan.client(suffix)
        made = agencies.new_client(client_id, ClientIn(id=client_id, agency_id=plan.agency(agency_suffix), name=name,
                                                       roles=list(roles)), hasher=state.secret_hasher)
        session.add(made.client)
        clients.append({"client_id": client_id, "client_secret": made.secret, "agency": plan.agency(agency_suffix),
                        "sector": dict((s, sec.value) for s, _, sec in _AGENCIES)[agency_suffix],
                        "roles": sorted(r.value for r in roles), "training": True})
    session.flush()
    people = []
    for locale in plan.locales:
        for suffix, agency_suffix, roles in _PEOPLE:
            who = synth.person(locale)
            password = secrets.token_urlsafe(12)
            person_id = plan.person(locale, suffix)
            create_person(session, person_id=person_id, agency_id=plan.agency(agency_suffix), name=who.name,
                          roles=[r.value for r in roles], password=password, locale=locale)
            people.append({"id": person_id, "password": password, "agency": plan.agency(agency_suffix),
                           "name": who.name, "roles": [r.value for r in roles], "locale": locale, "training": True})
    return Seeded(clients, people, _seed_cases(session, state, plan, synth))


def _sign(session: Session, state: AppState, plan: Plan) -> None:
    """Its agreement signed for every party, as the demo's are (app/agreements/signing.py): in force at once."""
    from app.agreements.signing import sign_for_every_party

    if not sign_for_every_party(session, state, "training", only={plan.network_id}):
        state.policies.refresh(session)  # signed already: the version in force is read all the same


def _seed_cases(session: Session, state: AppState, plan: Plan, synth: Synthesizer) -> int:
    """`plan.people` referrals, one synthetic person each, in every status in turn, each with a note."""
    from app import disclose, door
    from app.audit.events import EventType
    from app.auth.principal import Principal
    from app.notes import service as notes
    from app.notes.schemas import NoteIn
    from app.referrals import service as referrals
    from app.referrals.schemas import TransitionIn
    from app.retention.dates import RetentionRules

    policies, now = state.policies.current, state.clock()
    sectors = {plan.agency(s): sector.value for s, _, sector in _AGENCIES}

    def principal(suffix: str) -> Principal:
        _, agency_suffix, _, roles = next(c for c in _CLIENTS if c[0] == suffix)
        agency = plan.agency(agency_suffix)
        return Principal(client_id=plan.client(suffix), agency_id=agency, sector=sectors[agency],
                         roles=frozenset(r.value for r in roles), act=None, token_id="training-seed")  # noqa: S106 - an id, not a secret

    crypto = referrals.Crypto(state.envelope, state.blind_index)
    retention = RetentionRules.of(policies, state.settings.max_open_retention)
    movers = {"withdrawn": principal("school-referrer"), "in_intervention": principal("social-caseworker")}
    referrer, coordinator = movers["withdrawn"], principal("coordinator")
    for index in range(plan.people):
        who = synth.person(plan.locales[index % len(plan.locales)])
        body = _referral_body(plan, synth, who, index)
        referral = referrals.create(session, crypto, referrer, body, now, policies=policies, retention=retention)
        subject_id = referral.subject_id
        ctx = disclose.ReadContext(referrer, "", None, "training-seed")
        created = door.own_submission(ctx, referral, _subject(session, subject_id), state.envelope,
                                      referrals.ALL_FIELDS, event_type=EventType.create, reason="created")
        note = notes.add(session, state.envelope, referrer, referral,
                         NoteIn(classification="shared", text=synth.note(who)), now, policies=policies)
        state.audit.append_many(session, [created.event, disclose.change_event(
            referrer, EventType.create, subject_id=subject_id, record_ids={"referral_id": referral.id,
                                                                           "note_id": note.id},
            request_id="training-seed", classification=note.classification)], now=now)
        for target in _PATHS[index % len(_PATHS)]:
            mover = movers.get(target, coordinator)
            extra = _transition_extra(plan, target)
            moved, before = referrals.transition(session, policies, mover, referral.id,
                                                 TransitionIn(to=target, **extra), None, now, crypto=crypto,
                                                 retention=retention)
            state.audit.append(session, disclose.change_event(
                mover, EventType.transition, subject_id=subject_id, record_ids={"referral_id": moved.id},
                request_id="training-seed", from_status=before.status, to_status=moved.status,
                agencies=sorted(extra.get("agencies", [])), outcome=extra.get("outcome"), fields=["status"],
            ), now=now)
    return plan.people


def _subject(session: Session, subject_id: str) -> Any:
    from app.subjects.models import Subject

    subject = session.get(Subject, subject_id)
    assert subject is not None  # just created with the referral
    return subject


def _transition_extra(plan: Plan, target: str) -> dict[str, Any]:
    extras: dict[str, dict[str, Any]] = {
        "declined": {"reason": "Training: no prevention concern; signposted elsewhere."},
        "withdrawn": {"reason": "Training: sent by mistake."},
        "assigned": {"agencies": [plan.agency("social-services")]},
        "closed": {"outcome": "risk_reduced"},
    }
    return extras.get(target, {})


def _referral_body(plan: Plan, synth: Synthesizer, who: SyntheticPerson, index: int) -> dict[str, Any]:
    return {
        "schema": "referral/v1",
        "network": plan.network_id,
        "subject": {"given_name": who.given_name, "family_name": who.family_name,
                    "date_of_birth": synth.birth_date(who.locale), "district": who.place, "language": who.locale,
                    "identifiers": [{"system": "national_id", "value": f"TRAINING-{plan.seed}-{index:04d}"}]},
        "concerns": [("online_radicalisation_exposure", "hate_speech", "recruitment_contact")[index % 3]],
        "vulnerability_factors": ["social_isolation"],
        "risk_level": ("low", "medium", "high")[index % 3],
        "urgency": "priority",
        "consent": {"status": "given", "recorded_by": "training caseworker"},
        "requested_services": [("mentoring", "family_support", "psychosocial_support")[index % 3]],
        "narrative": synth.narrative(who),
    }


def credentials_paths(state: AppState, plan: Plan) -> tuple[Path, Path]:
    """Where the clients' secrets and the people's passwords are written (mode 0600), as the demo's are."""
    return (state.settings.data_dir / f"{plan.network_id}-clients.json",
            state.settings.data_dir / f"{plan.network_id}-people.json")


def write_credentials(state: AppState, plan: Plan, seeded: Seeded) -> tuple[Path, Path]:
    from app.demo import write_credentials as write

    clients_path, people_path = credentials_paths(state, plan)
    return write(seeded.clients, state.settings, clients_path), write(seeded.people, state.settings, people_path)


def create(state: AppState, plan: Plan, today: date, policies_dir: Path) -> tuple[tuple[Path, Path], Seeded]:
    """Write the files into the policies folder, load it, then seed the rows in one transaction; on any
    failure the files go again."""
    from app.db import transaction

    written = write_files(policies_dir, plan, today)
    try:
        result = state.policies.reload(policies_dir)
        refused = [e for e in result.errors if Path(e.file).resolve() in {p.resolve() for p in written}]
        if refused:
            raise TrainingNetworkInvalid(f"the training network's files were refused: {refused[0]}")
        with transaction(state.sessions) as session:
            if _taken(session, plan):
                raise TrainingNetworkInvalid(f"the agencies of {plan.network_id!r} exist already: choose another --id")
            seeded = seed(session, state, plan)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        state.policies.reload(policies_dir)
        raise
    return written, seeded


def _taken(session: Session, plan: Plan) -> bool:
    from app.agencies.models import Agency

    return any(session.get(Agency, plan.agency(suffix)) is not None for suffix, _, _ in _AGENCIES)


DEMO_PLAN: Final = Plan("training-demo", LOCALES, MIN_PEOPLE + 4, seed=2026)
"""The demo's training network, shipped in policies/ (made by `training-network create --id training-demo
--seed 2026`): the first start seeds its people and cases beside the demo networks'."""


def seed_demo_network(session: Session, state: AppState) -> Seeded | None:
    """The demo's training network's rows, when its files are loaded, its agreement is within its dates
    (past its review date the demo starts without it) and its agencies are not yet made."""
    network = state.policies.current.network(DEMO_PLAN.network_id)
    agreement = state.policies.loaded.get(DEMO_PLAN.network_id)
    if (network is None or not network.training or agreement is None
            or not agreement.in_force(state.clock().date()) or _taken(session, DEMO_PLAN)):
        return None
    return seed(session, state, DEMO_PLAN)
