"""The BOLA matrix's machinery: seed through the API, send every cell, judge each by the oracle.

A cell is one request: a route, a demo client, a record (own agency, assigned, a foreign agency
of the same network, a foreign network) and a purpose.  Each is judged at once for what its
body carries (unauthorized 2xx, fields beyond the oracle's upper bound); the log is read once
at the end, decrypted with the app's audit sealer, and every 2xx that carried case data or made
a change must have an entry with its request id, every refusal a `denial` entry.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bola.oracle import CONFERENCE, EMERGENCY, Action, AgendaItem, Caller, Meeting, Oracle, Rec
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import bindparam, text
from support.referrals import referral_body

from app.audit import queries
from app.state import AppState

NONE, BOGUS = "(none)", "bogus-purpose"
REFUSAL_SLUGS = frozenset({"purpose-required", "purpose-unknown", "unknown-view"})
WRITE_REPLY_BASE = frozenset({"id", "status"})
TARGETS = ("triaged", "accepted", "declined", "assigned", "in_intervention", "closed", "withdrawn", "transferred")
# The lifecycle (DESIGN.md §3): submitted → triaged → accepted | declined → assigned → in_intervention
# → closed; withdrawn early; transferred from any open status; re-assignment.  Only to pick, for
# each cell of the sweep, the targets where a missing relation check would show (not an access rule).
LIFECYCLE = {
    "submitted": ("triaged", "withdrawn", "transferred"),
    "triaged": ("accepted", "declined", "withdrawn", "transferred"),
    "accepted": ("assigned", "closed", "transferred"),
    "assigned": ("assigned", "in_intervention", "closed", "transferred"),
    "in_intervention": ("closed", "transferred"),
}

# Routes, as "METHOD path" exactly as app.routes names them.
R_GET = "GET /v1/referrals/{referral_id}"
R_LIST = "GET /v1/referrals"
R_CREATE = "POST /v1/referrals"
R_TRANSITION = "POST /v1/referrals/{referral_id}/transitions"
R_CONSENT = "POST /v1/referrals/{referral_id}/consent"
R_REASSESS = "POST /v1/referrals/{referral_id}/assessments"
R_WORKLIST = "GET /v1/networks/{network_id}/worklist"
R_ASSESSMENTS = "GET /v1/referrals/{referral_id}/assessments"
R_EVENTS = "GET /v1/events"
R_NOTES_POST = "POST /v1/referrals/{referral_id}/notes"
R_NOTES_GET = "GET /v1/referrals/{referral_id}/notes"
R_REPORT = "GET /v1/subjects/{subject_id}/disclosures"
R_SUMMARIES = "GET /v1/summaries"
R_STATISTICS = "GET /v1/statistics"
R_EMERGENCY = "POST /v1/referrals/{referral_id}/emergency-access"
R_GRANTS = "GET /v1/audit/emergency-access"
R_REVIEW = "POST /v1/audit/emergency-access/{grant_id}/review"
R_ERASE = "POST /v1/subjects/{subject_id}/erasure"
R_ADMIN_HOLDS = "GET /v1/admin/legal-holds"
R_ADMIN_HOLD = "POST /v1/admin/legal-holds"
R_ADMIN_LIFT = "POST /v1/admin/legal-holds/{hold_id}/lift"
R_HOLDS = "GET /v1/referrals/{referral_id}/legal-hold"
R_HOLD = "POST /v1/referrals/{referral_id}/legal-hold"
R_LIFT = "POST /v1/referrals/{referral_id}/legal-hold/{hold_id}/lift"
R_CHECKPOINT = "GET /v1/audit/checkpoint"
R_VERIFIER = "GET /v1/audit/verifier-key"
R_LEAF = "GET /v1/audit/entries/{seq}/leaf"
R_INCLUSION = "GET /v1/audit/proofs/inclusion"
R_CONSISTENCY = "GET /v1/audit/proofs/consistency"
R_ENTRIES = "GET /v1/audit/entries"
R_EXPORT = "GET /v1/audit/export"
R_FLAGS = "GET /v1/audit/flagged-agencies"
R_CLEAR = "POST /v1/audit/flagged-agencies/{flag_id}/clear"
# The case conference (app/meetings/router.py).
R_SCHEDULE = "POST /v1/networks/{network_id}/meetings"
R_MEETINGS = "GET /v1/networks/{network_id}/meetings"
R_MEETING = "GET /v1/meetings/{meeting_id}"
R_ITEM_ADD = "POST /v1/meetings/{meeting_id}/items"
R_ITEM_EDIT = "PATCH /v1/meetings/{meeting_id}/items/{number}"
R_ITEM_REMOVE = "DELETE /v1/meetings/{meeting_id}/items/{number}"
R_MINUTES_POST = "POST /v1/meetings/{meeting_id}/items/{number}/minutes"
R_CLOSE = "POST /v1/meetings/{meeting_id}/close"
R_AGENDA_REFERRAL = "GET /v1/meetings/{meeting_id}/items/{number}/referral"
R_MINUTES = "GET /v1/referrals/{referral_id}/minutes"
R_ACTION_CREATE = "POST /v1/referrals/{referral_id}/actions"
R_ACTION_STATUS = "POST /v1/actions/{action_id}/status"
R_ACTIONS = "GET /v1/referrals/{referral_id}/actions"
R_MY_ACTIONS = "GET /v1/actions"
CONFERENCE_ROUTES = frozenset({
    R_SCHEDULE, R_MEETINGS, R_MEETING, R_ITEM_ADD, R_ITEM_EDIT, R_ITEM_REMOVE, R_MINUTES_POST, R_CLOSE,
    R_AGENDA_REFERRAL, R_MINUTES, R_ACTION_CREATE, R_ACTION_STATUS, R_ACTIONS, R_MY_ACTIONS,
})
# What the case conference's answers are made of (app/meetings/schemas.py): anything else is beyond them.
MEETING_FIELDS = frozenset({"id", "network", "kind", "scheduled_for", "status", "chair", "closed_at", "agenda"})
AGENDA_ITEM_FIELDS = frozenset({"number", "referral_id", "reason", "invited", "attended", "decision"})
MEETING_SUMMARY_FIELDS = frozenset({"id", "network", "kind", "scheduled_for", "status"})
MINUTES_RECEIPT = frozenset({"id", "meeting_id", "number", "kind", "decision", "at"})
MINUTES_ITEM_FIELDS = frozenset({"meeting_id", "scheduled_for", "number", "decision", "attended", "entries"})
ACTION_RECEIPT = frozenset({"id", "referral_id", "owner_agency", "due_on", "status"})
ACTION_FIELDS = ACTION_RECEIPT | {"meeting_id", "number", "description", "completion_note", "created_at",
                                  "updated_at"}

# Audit routes with log contents (case data) and those with hashes and keys only.
AUDIT_DATA = {R_ENTRIES: "/v1/audit/entries?limit=5", R_EXPORT: "/v1/audit/export",
              R_LEAF: "/v1/audit/entries/0/leaf"}
AUDIT_PLAIN = {R_CHECKPOINT: "/v1/audit/checkpoint", R_VERIFIER: "/v1/audit/verifier-key",
               R_INCLUSION: "/v1/audit/proofs/inclusion?leaf_index=0&tree_size=1",
               R_CONSISTENCY: "/v1/audit/proofs/consistency?first=1&second=2",
               R_FLAGS: "/v1/audit/flagged-agencies"}

COVERED = frozenset({
    R_GET, R_LIST, R_CREATE, R_TRANSITION, R_CONSENT, R_REASSESS, R_ASSESSMENTS, R_EVENTS, R_NOTES_POST,
    R_NOTES_GET, R_REPORT, R_SUMMARIES, R_STATISTICS, R_EMERGENCY, R_GRANTS, R_REVIEW, R_ERASE, R_ADMIN_HOLDS,
    R_ADMIN_HOLD, R_ADMIN_LIFT, R_WORKLIST, R_HOLDS, R_HOLD, R_LIFT, R_CLEAR, *AUDIT_DATA, *AUDIT_PLAIN,
    *CONFERENCE_ROUTES,
})
# Routes that carry no case data at all (service plumbing, catalogues, agency administration).
NO_CASE_DATA = frozenset({
    "GET /openapi.json", "GET /docs", "GET /docs/oauth2-redirect", "GET /redoc", "GET /healthz",
    "GET /readyz", "GET /metrics", "POST /v1/token", "GET /.well-known/jwks.json", "GET /v1/me",
    "GET /v1/admin/agencies", "POST /v1/admin/agencies", "GET /v1/admin/clients", "POST /v1/admin/clients",
    "POST /v1/admin/clients/{client_id}/disable", "GET /v1/schemas", "GET /v1/schemas/{name}/{version}",
    "GET /v1/vocabularies", "GET /v1/vocabularies/{name}", "GET /v1/admin/mappings",
    "POST /v1/admin/mappings", "GET /v1/agreements", "POST /v1/decisions/explain",
    "POST /v1/admin/agreements/reload", "GET /v1/networks", "GET /v1/networks/{network_id}",
    "GET /v1/agreements/{agreement_id}/versions", "GET /v1/agreements/{agreement_id}/versions/{version}/signatures",
    "POST /v1/agreements/{agreement_id}/versions/{version}/signatures",
    "POST /v1/training-records", "GET /v1/training-records", "GET /v1/training/status",
})


def app_routes(app: Any) -> set[str]:
    """Every "METHOD path" the application serves (HEAD aside), included routers walked."""

    def walk(routes: Iterable[Any]) -> Iterable[str]:
        for route in routes:
            included = getattr(route, "effective_candidates", None)  # an included router (FastAPI ≥ 0.120)
            if callable(included):
                yield from walk(included())
                continue
            original = getattr(route, "original_route", route)
            path = getattr(route, "path", None) or getattr(original, "path", "")
            for method in getattr(original, "methods", None) or ():
                if method != "HEAD":
                    yield f"{method} {path}"

    return set(walk(app.routes))


def flatten(document: Mapping[str, Any]) -> set[str]:
    """Field paths of a referral document: top-level names and `subject.<name>`."""
    found = {k for k in document if k != "subject"}
    subject = document.get("subject")
    if isinstance(subject, Mapping):
        found |= {f"subject.{k}" for k in subject}
    return found


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


@dataclass
class Cell:
    route: str
    client: str
    record: str
    kind: str
    purpose: str
    status: int
    request_id: str
    slug: str | None
    unauthorized: list[str] = field(default_factory=list)
    beyond: list[str] = field(default_factory=list)
    log_ids: set[str] | None = None  # None: no entry needed; empty: any entry; else each id needs one
    missing_log: list[str] = field(default_factory=list)
    unlogged_denial: bool = False

    def where(self) -> str:
        return f"{self.client} × {self.record} [{self.kind}] × {self.purpose} → {self.status}"


@dataclass
class Note:
    id: str
    author: str
    classification: str


class Matrix:
    """Sends the cells, keeps what the oracle needs (records, notes, grants, holds), counts."""

    def __init__(
        self, client: TestClient, state: AppState, oracle: Oracle, demo: Mapping[str, Mapping[str, Any]],
        auth: Callable[..., dict[str, str]],
    ) -> None:
        self.http, self.state, self.oracle, self.auth = client, state, oracle, auth
        self.callers = {
            cid: Caller(cid, c["agency"], c["sector"], frozenset(c["roles"])) for cid, c in sorted(demo.items())
        }
        self.purposes: list[str] = [NONE, BOGUS, *oracle.all_purposes(), EMERGENCY]
        self.labels: dict[str, str] = {}  # label -> referral id
        self.recs: dict[str, Rec] = {}  # referral id -> as it stands
        self.notes: dict[str, list[Note]] = defaultdict(list)  # referral id -> notes
        self.holds: dict[str, list[str]] = defaultdict(list)  # referral id -> active hold ids
        self.grants: set[tuple[str, str]] = set()  # (referral id, agency) with an emergency grant
        self.grant_ids: list[str] = []
        self.grant_referrals: dict[str, str] = {}  # grant id -> referral id
        self.flag_referrals: dict[str, str] = {}  # flag id -> referral id of the grant it judged
        self.revoked: list[tuple[str, str]] = []  # (referral id, agency) whose grant a review revoked
        self.refused_reads = Counter[str]()
        self.status_leaks = Counter[str]()
        self.cells: list[Cell] = []
        self.sent = Counter[str]()
        self.skipped = Counter[str]()  # permitted changes left to the walks, not sent in the sweep
        self.refused_permitted: list[str] = []  # changes the oracle allows that the app refused
        self.observations: list[str] = []
        self._bodies: dict[str, dict[str, Any]] = {}
        self.submitted: dict[str, dict[str, Any]] = {}  # label -> body posted
        self.by_rid: dict[str, dict[str, Any]] = {}  # referral id -> body posted
        self.seeded: list[str] = []  # the labels every client reads and changes
        self.meetings: dict[str, Meeting] = {}  # meeting id -> as the matrix made it
        self.meeting_labels: dict[str, str] = {}
        self.actions: dict[str, Action] = {}  # action id -> as the matrix set it
        self._n = 0
        self._lock = threading.Lock()
        self._elapsed: dict[str, float] = {}
        self.elapsed: dict[str, float] = defaultdict(float)

    # -- plumbing --------------------------------------------------------------------------

    def caller(self, client_id: str) -> Caller:
        return self.callers[client_id]

    def client_of(self, agency: str, role: str) -> str:
        return next(c for c, v in self.callers.items() if v.agency == agency and role in v.roles)

    def request(
        self, method: str, url: str, client_id: str, purpose: str = NONE, *, json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Response, str]:
        with self._lock:
            self._n += 1
            request_id = f"bola-{self._n:06d}"
        extra = {"X-Request-ID": request_id, **(headers or {})}
        if purpose != NONE:
            extra["X-Purpose"] = purpose
        started = time.perf_counter()
        response = self.http.request(method, url, json=json_body, headers=self.auth(client_id, **extra))
        self._elapsed[request_id] = time.perf_counter() - started
        return response, request_id

    def cell(
        self, route: str, client_id: str, response: Response, request_id: str, *, record: str = "-",
        kind: str = "-", purpose: str = NONE,
    ) -> Cell:
        self.sent[route] += 1
        self.elapsed[route] += self._elapsed.pop(request_id, 0.0)
        slug = None
        if response.status_code >= 400:
            try:
                slug = str(response.json().get("type", "")).rsplit("/", 1)[-1] or None
            except ValueError:
                slug = None
        made = Cell(route, client_id, record, kind, purpose, response.status_code, request_id, slug)
        self.cells.append(made)
        return made

    def kind(self, caller: Caller, rec: Rec) -> str:
        if caller.agency == rec.owner:
            return "own"
        if caller.agency in rec.assigned:
            return "assigned"
        network = self.oracle.networks.get(rec.network)
        member = network is not None and caller.agency in network.members
        return "foreign-agency" if member or self.oracle.party_in_force(caller, rec.network) else "foreign-network"

    def label(self, rid: str) -> str:
        return next((k for k, v in self.labels.items() if v == rid), rid)

    def refresh(self, rid: str) -> Rec:
        with self.state.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT id, network_id, referring_agency, status, consent_status, risk_level, subject_id, "
                "urgency, intervention_type FROM referrals WHERE id = :id"), {"id": rid}).one_or_none()
            assigned = frozenset(conn.execute(text(
                "SELECT agency_id FROM referral_assignments WHERE referral_id = :id"), {"id": rid}).scalars())
            concerns = frozenset(conn.execute(text(
                "SELECT concern FROM referral_concerns WHERE referral_id = :id"), {"id": rid}).scalars())
        # Erased or purged: keep the last known state (nobody may read it any more).
        rec = self.recs[rid] if row is None else Rec(*row[:6], assigned, row[6], row[7], row[8], concerns)
        self.recs[rid] = rec
        return rec

    def network_count(self, networks: Iterable[str]) -> int:
        names = sorted(networks)
        if not names:
            return 0
        with self.state.engine.connect() as conn:
            query = text("SELECT count(*) FROM referrals WHERE network_id IN :n").bindparams(
                bindparam("n", expanding=True))
            return int(conn.execute(query, {"n": names}).scalar_one())

    # -- seeding (through the public API) ----------------------------------------------------

    def create(self, label: str, client_id: str, *, consent: str = "given", same_person_as: str | None = None,
               identifier_only: bool = False, **changes: Any) -> str:
        """`same_person_as`: post the identifier another seeded referral gave (the subject is linked)."""
        body = self.body(label, consent, **changes)
        if same_person_as is not None:
            body["subject"]["identifiers"] = self.submitted[same_person_as]["subject"]["identifiers"]
        if identifier_only:  # finding 3: knowing an ID number must not pull the person's record
            body["subject"] = {"identifiers": body["subject"]["identifiers"]}
        self.submitted[label] = body
        response, _ = self.request("POST", "/v1/referrals", client_id, json_body=body)
        assert response.status_code == 201, f"seeding {label}: {response.status_code} {response.text}"
        rid = str(response.json()["id"])
        self.labels[label] = rid
        self.by_rid[rid] = body
        self.refresh(rid)
        return rid

    def body(self, label: str, consent: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            self._n += 1
            n = self._n
        subject = {
            "given_name": f"Bola{n}", "family_name": "Matrixperson", "date_of_birth": "2009-03-14",
            "gender": "female", "phone": "+961-70-555-0199", "address": f"{n} Rue Matrix",
            "district": "al-mina", "identifiers": [{"system": "national_id", "value": f"BOLA-{label}-{n}"}],
            "religion": "religion-marker", "ethnicity": "ethnicity-marker",
        }
        consent_body: dict[str, Any] = {"status": consent, "recorded_by": "matrix counsellor"}
        if consent != "given":
            consent_body["legal_basis"] = "public_task"
        body: dict[str, Any] = referral_body(subject=subject, consent=consent_body, **changes)
        return body

    def move(self, rid: str, client_id: str, target: str, **extra: Any) -> None:
        body = self.transition_body(self.recs[rid], self.caller(client_id), target)
        body.update(extra)
        response, _ = self.request("POST", f"/v1/referrals/{rid}/transitions", client_id, json_body=body)
        assert response.status_code == 200, f"seeding {self.label(rid)} → {target}: {response.text}"
        self.refresh(rid)

    def add_note(self, rid: str, client_id: str, classification: str) -> None:
        body = {"classification": classification, "text": f"matrix-note-{classification}-{client_id}"}
        response, _ = self.request("POST", f"/v1/referrals/{rid}/notes", client_id, json_body=body)
        assert response.status_code == 201, f"seeding a note on {self.label(rid)}: {response.text}"
        self.notes[rid].append(Note(response.json()["id"], self.caller(client_id).agency, classification))

    def place_hold(self, rid: str, client_id: str) -> None:
        response, _ = self.request("POST", f"/v1/referrals/{rid}/legal-hold", client_id,
                                   json_body={"reason": "Court case reference BOLA-2026-17"})
        assert response.status_code == 201, f"seeding a hold on {self.label(rid)}: {response.text}"
        self.holds[rid].append(response.json()["id"])

    def set_consent(self, rid: str, client_id: str, status: str) -> None:
        response, _ = self.request("POST", f"/v1/referrals/{rid}/consent", client_id,
                                   json_body=self.consent_body(status))
        assert response.status_code == 200, f"seeding consent on {self.label(rid)}: {response.text}"
        self.refresh(rid)

    @staticmethod
    def consent_body(status: str) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status, "recorded_by": "matrix"}
        if status != "given":
            body["legal_basis"] = "public_task"
        return body

    def transition_body(self, rec: Rec, caller: Caller, target: str) -> dict[str, Any]:
        body: dict[str, Any] = {"to": target}
        if target in ("declined", "withdrawn", "transferred"):
            body["reason"] = "matrix reason marker"
        if target == "closed":
            body["outcome"] = "risk_reduced"
        if target == "assigned":
            body["agencies"] = [caller.agency]  # the attack of finding 2: assign it to yourself
        if target == "transferred":
            others = sorted(n for n in self.oracle.networks if n != rec.network)
            body["to_network"] = others[0] if others else "elsewhere"
        return body

    # -- judging -----------------------------------------------------------------------------

    def read_bound(self, caller: Caller, rec: Rec, purpose: str) -> frozenset[str]:
        if purpose == EMERGENCY:
            return self.oracle.emergency_bound(caller, rec) if (rec.id, caller.agency) in self.grants \
                else frozenset()
        if purpose in (NONE, BOGUS):
            return frozenset()
        return self.oracle.referral_bound(caller, rec, purpose)

    def judge_document(self, cell: Cell, caller: Caller, rec: Rec, document: Mapping[str, Any],
                       bound: frozenset[str], base: frozenset[str]) -> bool:
        """Record what the document carries beyond `base`; True when it carries case data."""
        carried = flatten(document) - base
        if not carried:
            return False
        self.judge_subject_values(cell, rec, document)
        if not bound:
            cell.unauthorized.append(f"{self.label(rec.id)}: {sorted(carried)} with no grant")
        else:
            cell.beyond += [f"{self.label(rec.id)}:{f}" for f in sorted(carried - bound)]
        return True

    def stranger(self, client_id: str, rid: str) -> bool:
        """No relation to the record, not its network's coordinator, no grant for any purpose."""
        caller, rec = self.caller(client_id), self.recs[rid]
        return not (
            self.oracle.relations(caller, rec) or self.oracle.is_coordinator(caller, rec.network)
            or any(self.oracle.referral_bound(caller, rec, p) for p in self.oracle.all_purposes())
        )

    def refused_read(self, cell: Cell) -> None:
        """A read the agreements grant that the service refused: not a leak, but worth a look."""
        self.refused_reads[cell.route] += 1
        if self.refused_reads[cell.route] <= 3:
            self.observations.append(f"granted by the oracle, refused by the app: {cell.route} {cell.where()}")

    def judge_subject_values(self, cell: Cell, rec: Rec, document: Mapping[str, Any]) -> None:
        """A referral shows the person as that referral submitted them, never another's submission
        about the same person (issue 11, finding 3): names, birth date, identifiers, religion …"""
        submitted = self.by_rid.get(rec.id)
        subject = document.get("subject")
        if submitted is None or not isinstance(subject, Mapping):
            return
        given = submitted.get("subject", {})
        for name in IDENTITY:
            shown = subject.get(name)
            if shown in (None, [], "") or name not in subject:
                continue
            if name not in given or not _same(shown, given[name]):
                cell.beyond.append(f"{self.label(rec.id)}:subject.{name} holds another submission's value")

    def judge_change(self, cell: Cell, allowed: bool, rid: str | None, why: str,
                     response: Response | None = None) -> None:
        """A 2xx on a write is a change: forbidden ones count; every one needs its entry."""
        if response is not None and cell.status >= 400 and rid in self.recs and self.stranger(cell.client, rid):
            # A refusal should teach a stranger nothing about the record, not even its status.
            status = self.recs[rid].status
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            if f"'{status}'" in str(problem.get("detail", "")) or status in (
                problem.get("referral_status"), problem.get("status_now"), problem.get("current_status")
            ):
                self.status_leaks[cell.route] += 1
                if self.status_leaks[cell.route] <= 2:
                    self.observations.append(f"a refusal names the record's status: {cell.route} {cell.where()}"
                                             f" {response.text[:160]}")
        if response is not None and cell.status >= 400 and rid in self.recs:
            self.judge_refusal(cell, rid, response)
        if cell.status >= 300:
            if allowed and cell.status in (401, 403):
                self.refused_permitted.append(f"{cell.route}: {cell.where()} ({why})")
            return
        if not allowed:
            cell.unauthorized.append(f"change forbidden: {why}")
        cell.log_ids = {rid} if rid else set()

    def judge_refusal(self, cell: Cell, rid: str, response: Response) -> None:
        """A refusal's problem document names the person (`subject.id`) or the referring agency only to a
        caller some purpose grants them to: a refusal is no way round the agreements."""
        caller, rec = self.caller(cell.client), self.recs[rid]
        try:
            problem = response.json()
        except ValueError:
            return
        if not isinstance(problem, Mapping):
            return
        granted = frozenset().union(
            *(self.oracle.referral_bound(caller, rec, p) for p in self.oracle.all_purposes()),
            *(self.oracle.agenda_bound(caller, meeting, item, rec, CONFERENCE)  # through an agenda item
              for meeting in self.meetings.values() for item in meeting.items.values() if item.referral_id == rid),
        )
        extensions = set(_strings({k: v for k, v in problem.items() if k not in ("type", "title", "detail",
                                                                                   "instance", "request_id")}))
        label = self.label(rid)
        if rec.subject_id and "subject.id" not in granted and (
            rec.subject_id in extensions or rec.subject_id in str(problem.get("detail", ""))
        ):
            cell.beyond.append(f"{label}:subject.id in a {cell.status} refusal")
        if rec.owner != caller.agency and "referring_agency" not in granted and rec.owner in extensions:
            cell.beyond.append(f"{label}:referring_agency in a {cell.status} refusal")

    # -- the read routes ---------------------------------------------------------------------

    def get_referral(self, client_id: str, rec: Rec, purpose: str, view: str | None = None) -> None:
        """`view`: ask for a named view (rule 6 of the README); the answer stays within the bound."""
        caller = self.caller(client_id)
        url = f"/v1/referrals/{rec.id}" + (f"?view={view}" if view else "")
        response, request_id = self.request("GET", url, client_id, purpose)
        record = self.label(rec.id) + (f" ?view={view}" if view else "")
        cell = self.cell(R_GET, client_id, response, request_id, record=record,
                         kind=self.kind(caller, rec), purpose=purpose)
        bound = self.read_bound(caller, rec, purpose)
        if response.status_code == 200 and self.judge_document(
            cell, caller, rec, response.json(), bound, frozenset({"id"})
        ):
            cell.log_ids = {rec.id}
        if response.status_code == 403 and bound and not view:
            self.refused_read(cell)

    def get_notes(self, client_id: str, rec: Rec, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/referrals/{rec.id}/notes?limit=200", client_id, purpose)
        cell = self.cell(R_NOTES_GET, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        if response.status_code != 200:
            return
        known = {n.id: n for n in self.notes[rec.id]}
        items = response.json().get("items", [])
        for item in items:
            note = known.get(item["id"]) or Note(item["id"], item.get("author_agency", ""),
                                                 item.get("classification", ""))
            granted = purpose not in (NONE, BOGUS, EMERGENCY) and item.get("referral_id") == rec.id and \
                self.oracle.note_granted(caller, rec, note.author, note.classification, purpose)
            if not granted:
                cell.unauthorized.append(f"note {note.classification} by {note.author} not granted")
        if items:
            cell.log_ids = {item["id"] for item in items}

    def get_holds(self, client_id: str, rec: Rec, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/referrals/{rec.id}/legal-hold", client_id, purpose)
        cell = self.cell(R_HOLDS, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        if response.status_code != 200 or not response.json().get("items"):
            return
        # A read of case data: the purpose must grant the referral, and the caller coordinates it.
        allowed = self.oracle.may_hold(caller, rec) and bool(self.read_bound(caller, rec, purpose))
        if not allowed:
            cell.unauthorized.append("legal holds (reasons) of a record the caller may not hold")
        cell.log_ids = set()

    def get_report(self, client_id: str, rec: Rec, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/subjects/{rec.subject_id}/disclosures", client_id,
                                            purpose)
        cell = self.cell(R_REPORT, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        if response.status_code != 200:
            return
        subject_recs = [r for r in self.recs.values() if r.subject_id == rec.subject_id]
        cell.log_ids = set()
        if not self.oracle.may_report_subject(caller, subject_recs, purpose):
            cell.unauthorized.append("a subject-access report not granted on every referral about the person")
            return
        # Who received the person's data in another network is that network's business.
        networks = {r.network for r in subject_recs}
        agencies = frozenset().union(*(self.oracle.network_agencies(n) for n in networks))
        body = response.json()
        named = {r.get("agency") for r in body.get("recipients", [])}
        named |= {i.get(k) for i in body.get("items", []) for k in ("recipient_agency", "actor_agency")}
        cell.beyond += [f"recipient:{a}" for a in sorted(a for a in named - agencies if a)]

    def list_documents(self, route: str, url: str, client_id: str, purpose: str,
                       strip: frozenset[str] = frozenset()) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", url, client_id, purpose)
        cell = self.cell(route, client_id, response, request_id, purpose=purpose)
        if response.status_code != 200:
            return
        disclosed = set()
        for item in response.json().get("items", []):
            rid = item.get("id")
            rec = self.recs.get(rid) or self.refresh(rid)
            document = {k: v for k, v in item.items() if k not in strip}
            if self.judge_document(cell, caller, rec, document, self.read_bound(caller, rec, purpose),
                                   frozenset({"id"})):
                disclosed.add(rid)
        if disclosed:
            cell.log_ids = disclosed

    def get_events(self, client_id: str, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", "/v1/events?limit=200", client_id, purpose)
        cell = self.cell(R_EVENTS, client_id, response, request_id, purpose=purpose)
        if response.status_code != 200:
            return
        carried: dict[str, set[str]] = defaultdict(set)
        for item in response.json().get("items", []):
            rid = item["referral_id"]
            rec = self.recs.get(rid) or self.refresh(rid)
            if str(item.get("kind", "")).startswith("emergency"):
                # Break-the-glass notices: for the owner agency and the network's coordinator only.
                if caller.agency != rec.owner and not self.oracle.is_coordinator(caller, rec.network):
                    cell.unauthorized.append(f"{self.label(rid)}: an emergency notice to a stranger")
                carried[rid].add("status")
                continue
            # An event is a status change: the status; who moved it from where is its history.
            carried[rid].add("status")
            if item.get("outcome") is not None:
                carried[rid].add("outcome")
            if item.get("from_status") is not None or item.get("by_agency") is not None:
                carried[rid].add("status_history")
        for rid, fields in carried.items():
            rec = self.recs[rid]
            self.judge_document(cell, caller, rec, dict.fromkeys(fields, True),
                                self.read_bound(caller, rec, purpose), frozenset())
        if carried:
            cell.log_ids = set(carried)

    def get_statistics(self, client_id: str, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", "/v1/statistics?dimensions=concerns", client_id, purpose)
        cell = self.cell(R_STATISTICS, client_id, response, request_id, purpose=purpose)
        dims, networks = self.oracle.statistics_bound(caller, purpose)
        if response.status_code == 403 and "concerns" in dims:
            self.refused_read(cell)
        if response.status_code != 200:
            return
        body = response.json()
        if not dims:
            cell.unauthorized.append("statistics with no statistics grant")
        else:
            cell.beyond += [f"dimension:{d}" for d in body.get("dimensions", []) if d not in dims]
            total = (body.get("margins") or [{}])[-1].get("cells", [{}])[0].get("count")
            limit = self.network_count(networks)
            if total is not None and total > limit:
                cell.beyond.append(f"total {total} counts records outside {sorted(networks)} ({limit})")
        cell.log_ids = set()

    def get_admin_holds(self, client_id: str, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", "/v1/admin/legal-holds", client_id, purpose)
        cell = self.cell(R_ADMIN_HOLDS, client_id, response, request_id, purpose=purpose)
        if response.status_code != 200:
            return
        items = response.json().get("items", [])
        case_items = [i for i in items if i.get("referral_id")]
        if "admin" not in caller.roles and items:
            cell.unauthorized.append("legal holds listed to a non-admin")
        # An operator never reads case data: agency-wide holds only, no referral's hold.
        cell.beyond += [f"referral hold {i['referral_id']} listed to an operator" for i in case_items]
        if case_items:
            cell.log_ids = set()

    def get_audit(self, route: str, url: str, client_id: str, purpose: str, *, data: bool) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", url, client_id, purpose)
        cell = self.cell(route, client_id, response, request_id, purpose=purpose)
        if response.status_code != 200 or not data:
            return
        if "auditor" not in caller.roles:
            cell.unauthorized.append("the disclosure log read by a non-auditor")
        cell.log_ids = set()

    def get_grants(self, client_id: str, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", "/v1/audit/emergency-access", client_id, purpose)
        cell = self.cell(R_GRANTS, client_id, response, request_id, purpose=purpose)
        items = response.json().get("items", []) if response.status_code == 200 else []
        if not items:
            return
        cell.log_ids = set()
        if "auditor" not in caller.roles:
            cell.unauthorized.append("emergency grants (with reasons) listed to a non-auditor")
            return
        for item in items:
            rec = self.recs.get(item.get("referral_id", ""))
            if rec is not None and not self.oracle.may_review(caller, rec):
                cell.beyond.append(f"grant on {self.label(rec.id)} of a network the auditor is no party to")

    def get_worklist(self, client_id: str, network: str, purpose: str) -> None:
        """Ids, statuses and urgencies of a network's due referrals: its coordinator's alone, each granted."""
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/networks/{network}/worklist", client_id, purpose)
        cell = self.cell(R_WORKLIST, client_id, response, request_id, record=network, purpose=purpose)
        if response.status_code != 200:
            return
        if not (self.oracle.is_coordinator(caller, network) and self.oracle.party_in_force(caller, network)
                and "admin" not in caller.roles):
            cell.unauthorized.append(f"the work list of {network} to a caller who does not coordinate it")
        items = response.json().get("items", [])
        for item in items:
            rec = self.recs.get(item.get("referral_id", ""))
            if rec is None:
                continue
            if rec.network != network:
                cell.beyond.append(f"{self.label(rec.id)} of {rec.network} on the work list of {network}")
            if not {"status", "urgency"} <= self.read_bound(caller, rec, purpose):
                cell.unauthorized.append(f"{self.label(rec.id)} listed without a grant of its status for {purpose}")
        if items:
            cell.log_ids = {item["referral_id"] for item in items}

    # -- the write routes ----------------------------------------------------------------------

    def write_reply(self, cell: Cell, caller: Caller, before: Rec, purpose: str, response: Response) -> bool:
        """A transition's or consent's reply: only what the caller may read (before or after).

        True when the reply carries case data (more than the receipt: id and status).
        """
        if response.status_code >= 300:
            return False
        after = self.refresh(before.id)
        bound = self.read_bound(caller, before, purpose) | self.read_bound(caller, after, purpose)
        try:
            document = response.json()
        except ValueError:
            return False
        if cell.unauthorized:  # a forbidden change: any case data in its reply counts with it
            carried = flatten(document) - WRITE_REPLY_BASE
            if carried and not bound:
                cell.unauthorized.append(f"its reply carries {sorted(carried)}")
            return bool(carried)
        return self.judge_document(cell, caller, after, document, bound, WRITE_REPLY_BASE)

    def transition(self, client_id: str, rec: Rec, target: str, purpose: str, *, key: str | None = None,
                   send_permitted: bool = False, body: dict[str, Any] | None = None,
                   replay_of: Rec | None = None) -> Response | None:
        """`replay_of`: the record as it stood when the replayed (permitted) change was made."""
        caller = self.caller(client_id)
        allowed = self.oracle.may_transition(caller, replay_of or rec, target)
        if allowed and not send_permitted:
            self.skipped[R_TRANSITION] += 1
            return None
        body = body or self.transition_body(rec, caller, target)
        headers = {"Idempotency-Key": key} if key else None
        response, request_id = self.request("POST", f"/v1/referrals/{rec.id}/transitions", client_id, purpose,
                                            json_body=body, headers=headers)
        record = f"{self.label(rec.id)}→{target}" + (" (replay)" if replay_of else "")
        cell = self.cell(R_TRANSITION, client_id, response, request_id, record=record,
                         kind=self.kind(caller, rec), purpose=purpose)
        self.judge_change(cell, allowed, rec.id, f"{target} by {caller.agency}", response)
        carried = self.write_reply(cell, caller, rec, purpose, response)
        if replay_of is not None and not carried and not cell.unauthorized:
            cell.log_ids = None  # a replay changes nothing; a bare receipt discloses nothing
        return response

    def consent(self, client_id: str, rec: Rec, purpose: str) -> None:
        # The same status again: a change on paper (a new consent record), the record unharmed.
        caller = self.caller(client_id)
        self.change_on_paper(R_CONSENT, "consent", client_id, rec, purpose, self.consent_body(rec.consent),
                             self.oracle.may_consent(caller, rec), f"consent by {caller.agency}")

    def reassess(self, client_id: str, rec: Rec, purpose: str) -> None:
        # The same risk level again: a new version on paper, the record's values unharmed.
        caller = self.caller(client_id)
        body = {"risk_level": rec.risk_level, "reason": "Matrix reassessment marker 43"}
        self.change_on_paper(R_REASSESS, "assessments", client_id, rec, purpose, body,
                             self.oracle.may_reassess(caller, rec), f"a re-assessment by {caller.agency}")

    def change_on_paper(self, route: str, path: str, client_id: str, rec: Rec, purpose: str,
                        body: dict[str, Any], allowed: bool, why: str) -> None:
        """A write that leaves the record's values as they are, judged like any change, with its reply."""
        caller = self.caller(client_id)
        response, request_id = self.request("POST", f"/v1/referrals/{rec.id}/{path}", client_id, purpose,
                                            json_body=body)
        cell = self.cell(route, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        self.judge_change(cell, allowed, rec.id, why, response)
        self.write_reply(cell, caller, rec, purpose, response)

    def get_assessments(self, client_id: str, rec: Rec, purpose: str) -> None:
        """The history is granted by a view that includes `assessments`, for the purpose stated."""
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/referrals/{rec.id}/assessments", client_id, purpose)
        cell = self.cell(R_ASSESSMENTS, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        if response.status_code != 200:
            return
        if "assessments" not in self.read_bound(caller, rec, purpose):
            cell.unauthorized.append("the re-assessment history without a view that includes it")
        cell.log_ids = {rec.id}

    def post_note(self, client_id: str, rec: Rec, purpose: str, classification: str, *,
                  key: str | None = None) -> Response:
        caller = self.caller(client_id)
        allowed = self.oracle.may_note(caller, rec)
        body = {"classification": classification, "text": f"matrix-note-{classification}-{client_id}"}
        headers = {"Idempotency-Key": key} if key else None
        response, request_id = self.request("POST", f"/v1/referrals/{rec.id}/notes", client_id, purpose,
                                            json_body=body, headers=headers)
        cell = self.cell(R_NOTES_POST, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        self.judge_change(cell, allowed, rec.id, f"a note by {caller.agency}", response)
        if response.status_code < 300:
            note = response.json()
            if note.get("id") and all(n.id != note["id"] for n in self.notes[rec.id]):
                self.notes[rec.id].append(Note(note["id"], caller.agency, classification))
            # The author's own note echoed back is its own submission; anything else is not.
            extra = set(note) - {"id", "schema", "referral_id", "author_agency", "author_person", "classification",
                                 "text", "supersedes", "superseded_by", "created_at"}
            cell.beyond += [f"note:{f}" for f in sorted(extra)]
        return response

    def place(self, client_id: str, rec: Rec, purpose: str) -> None:
        caller = self.caller(client_id)
        allowed = self.oracle.may_hold(caller, rec)
        response, request_id = self.request("POST", f"/v1/referrals/{rec.id}/legal-hold", client_id, purpose,
                                            json_body={"reason": "Matrix hold reason marker 42"})
        cell = self.cell(R_HOLD, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        self.judge_change(cell, allowed, rec.id, f"a legal hold by {caller.agency}", response)
        if response.status_code < 300:
            self.holds[rec.id].append(response.json()["id"])
            self.no_reason(cell, response.json())

    def lift(self, client_id: str, rec: Rec, purpose: str, *, send_permitted: bool = False) -> None:
        if not self.holds[rec.id]:
            return
        caller = self.caller(client_id)
        allowed = self.oracle.may_hold(caller, rec)
        if allowed and not send_permitted:
            self.skipped[R_LIFT] += 1
            return
        hold_id = self.holds[rec.id][0]
        response, request_id = self.request("POST", f"/v1/referrals/{rec.id}/legal-hold/{hold_id}/lift",
                                            client_id, purpose, json_body={"reason": "Proceedings closed BOLA"})
        cell = self.cell(R_LIFT, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        self.judge_change(cell, allowed, rec.id, f"a hold lifted by {caller.agency}")
        if response.status_code < 300:
            self.holds[rec.id].remove(hold_id)
            self.no_reason(cell, response.json())

    @staticmethod
    def no_reason(cell: Cell, reply: Mapping[str, Any]) -> None:
        """Placing or lifting a referral's hold answers without its reasons (sealed free text)."""
        cell.beyond += [f"hold reply:{k}" for k in ("reason", "lift_reason") if reply.get(k)]

    def emergency(self, client_id: str, rec: Rec, purpose: str) -> None:
        caller = self.caller(client_id)
        allowed = self.oracle.may_emergency(caller, rec)
        reason = "Credible threat to life reported by the family this morning; need the case now."
        response, request_id = self.request("POST", f"/v1/referrals/{rec.id}/emergency-access", client_id,
                                            purpose, json_body={"reason": reason})
        cell = self.cell(R_EMERGENCY, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        self.judge_change(cell, allowed, rec.id, f"emergency access by {caller.agency}", response)
        if response.status_code < 300:
            self.grants.add((rec.id, caller.agency))
            self.grant_ids.append(response.json()["id"])
            self.grant_referrals[response.json()["id"]] = rec.id
            granted = set(response.json().get("fields") or ())
            cell.beyond += [f"grant:{f}" for f in sorted(granted - self.oracle.emergency_bound(caller, rec))]

    def create_referral(self, client_id: str, purpose: str, *, key: str, replay: bool,
                        network: str | None = None) -> str | None:
        """`network`: name the network in the body (a referrer may refer only into its own)."""
        caller = self.caller(client_id)
        allowed = self.oracle.may_create(caller, network)
        body = self._bodies.setdefault(key, self.body(f"new-{client_id}", "given"))
        if network is not None:
            body["network"] = network
        response, request_id = self.request("POST", "/v1/referrals", client_id, purpose, json_body=body,
                                            headers={"Idempotency-Key": key})
        record = ("replay" if replay else "new") + (f" into {network}" if network else "")
        kind = "-" if network is None else (
            "own" if caller.agency in self.oracle.network_agencies(network) else "foreign-network")
        cell = self.cell(R_CREATE, client_id, response, request_id, record=record, kind=kind, purpose=purpose)
        if response.status_code >= 300:
            self.judge_change(cell, allowed, None, f"a referral by {caller.agency}")
            return None
        document = response.json()
        rid = document["id"]
        self.by_rid.setdefault(rid, body)
        self.judge_change(cell, allowed, rid, f"a referral by {caller.agency}")
        rec = self.refresh(rid)
        # Its own submission: what it posted, and what any of its purposes grants the owner.
        bound = set(flatten(body)) | {"network", "status", "status_history", "created_at", "updated_at",
                                      "referring_agency", "referring_person", "subject.id", "subject.age_band",
                                      "assigned_agencies", "outcome", "original_codes"}
        for p in self.oracle.purposes(caller):
            bound |= self.oracle.referral_bound(caller, rec, p)
        if not cell.unauthorized:
            self.judge_document(cell, caller, rec, document, frozenset(bound), frozenset({"id"}))
        return str(rid)

    def erase(self, client_id: str, rec: Rec, purpose: str, *, send_permitted: bool = False) -> bool:
        """True when the person was erased."""
        caller = self.caller(client_id)
        subject_recs = [r for r in self.recs.values() if r.subject_id == rec.subject_id]
        allowed = self.oracle.may_erase(caller, subject_recs)
        if allowed and not send_permitted:
            self.skipped[R_ERASE] += 1
            return False
        response, request_id = self.request("POST", f"/v1/subjects/{rec.subject_id}/erasure", client_id, purpose,
                                            json_body={"legal_ground": "objection", "reference": "BOLA-DSR-1"})
        cell = self.cell(R_ERASE, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        self.judge_change(cell, allowed, None, f"erasure by {caller.agency}")
        return response.status_code < 300

    def admin_hold(self, client_id: str, agency: str, purpose: str) -> str | None:
        caller = self.caller(client_id)
        response, request_id = self.request("POST", "/v1/admin/legal-holds", client_id, purpose,
                                            json_body={"agency_id": agency, "reason": "Regulator inquiry BOLA-9"})
        cell = self.cell(R_ADMIN_HOLD, client_id, response, request_id, record=f"agency:{agency}", purpose=purpose)
        self.judge_change(cell, "admin" in caller.roles, None, f"an agency-wide hold by {caller.agency}")
        return str(response.json()["id"]) if response.status_code < 300 else None

    def admin_lift(self, client_id: str, hold_id: str, purpose: str) -> bool:
        caller = self.caller(client_id)
        response, request_id = self.request("POST", f"/v1/admin/legal-holds/{hold_id}/lift", client_id, purpose,
                                            json_body={"reason": "Inquiry closed BOLA-9"})
        cell = self.cell(R_ADMIN_LIFT, client_id, response, request_id, record="agency hold", purpose=purpose)
        self.judge_change(cell, "admin" in caller.roles, None, f"an agency-wide hold lifted by {caller.agency}")
        return response.status_code < 300

    def review(self, client_id: str, grant_id: str, purpose: str, finding: str = "justified") -> str | None:
        """An auditor's review of a grant; returns the flag an `unjustified` finding raised."""
        caller = self.caller(client_id)
        response, request_id = self.request("POST", f"/v1/audit/emergency-access/{grant_id}/review", client_id,
                                            purpose, json_body={"finding": finding})
        cell = self.cell(R_REVIEW, client_id, response, request_id, record=f"grant ({finding})", purpose=purpose)
        rec = self.recs.get(self.grant_referrals.get(grant_id, ""))
        allowed = self.oracle.may_review(caller, rec) if rec else "auditor" in caller.roles
        self.judge_change(cell, allowed, None, f"a review by {caller.agency}")
        if response.status_code < 300 and finding == "unjustified" and rec is not None:
            holder = response.json().get("agency_id")
            self.grants.discard((rec.id, holder))  # revoked at once: reads under it must fail
            self.revoked.append((rec.id, holder))
        flag = response.json().get("flag_id") if response.status_code < 300 else None
        if flag and rec is not None:
            self.flag_referrals[flag] = rec.id
        return flag

    def clear_flag(self, client_id: str, flag_id: str, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("POST", f"/v1/audit/flagged-agencies/{flag_id}/clear", client_id,
                                            purpose)
        cell = self.cell(R_CLEAR, client_id, response, request_id, record="flag", purpose=purpose)
        rec = self.recs.get(self.flag_referrals.get(flag_id, ""))
        allowed = self.oracle.may_review(caller, rec) if rec else "auditor" in caller.roles
        self.judge_change(cell, allowed, None, f"a flag cleared by {caller.agency}")

    # -- the case conference -------------------------------------------------------------------
    # The matrix keeps its own account of the meetings and actions it made (what it sent, not
    # what the service answers): the oracle judges every cell against that.

    def meeting_label(self, meeting_id: str) -> str:
        return self.meeting_labels.get(meeting_id, meeting_id)

    def network_seat(self, caller: Caller, network: str) -> str:
        if self.oracle.is_chair(caller, network):
            return "chair"
        declared = self.oracle.networks.get(network)
        member = declared is not None and caller.agency in declared.members
        return "uninvited" if member or self.oracle.party_in_force(caller, network) else "foreign-network"

    def seat(self, caller: Caller, meeting: Meeting, item: AgendaItem | None = None) -> str:
        """A meeting cell's kind: the caller's place at the meeting (or at one of its items)."""
        place = self.network_seat(caller, meeting.network)
        items = [item] if item is not None else list(meeting.items.values())
        if place == "uninvited" and any(caller.agency in i.invited for i in items):
            return "invited"
        return place

    def meeting_body(self, items: Iterable[tuple[str, Iterable[str]]]) -> dict[str, Any]:
        """A meeting a week ahead of the app's clock, its agenda as given (nothing proposed)."""
        when = (self.state.clock() + timedelta(days=7)).replace(microsecond=0)
        return {"scheduled_for": when.isoformat(), "propose_agenda": False,
                "items": [{"referral_id": rid, "invited": sorted(invited)} for rid, invited in items]}

    def track_meeting(self, meeting_id: str, network: str, items: list[dict[str, Any]],
                      label: str | None = None) -> Meeting:
        meeting = Meeting(meeting_id, network, True, {
            number: AgendaItem(number, i["referral_id"], frozenset(i["invited"]))
            for number, i in enumerate(items, 1)
        })
        with self._lock:
            self.meetings[meeting_id] = meeting
            self.meeting_labels[meeting_id] = label or f"{network}-meeting-{len(self.meetings)}"
        return meeting

    def action_body(self, owner: str, meeting: Meeting | None = None, number: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"description": "Matrix action marker 44", "owner_agency": owner,
                                "due_on": (self.state.clock() + timedelta(days=30)).date().isoformat()}
        if meeting is not None:
            body |= {"meeting_id": meeting.id, "number": number}
        return body

    # seeding (through the public API, as the chair and the case's agencies would)

    def seed_meeting(self, label: str, client_id: str, network: str,
                     items: list[tuple[str, list[str]]]) -> Meeting:
        body = self.meeting_body((self.labels[name], invited) for name, invited in items)
        response, _ = self.request("POST", f"/v1/networks/{network}/meetings", client_id, json_body=body)
        assert response.status_code == 201, f"seeding {label}: {response.status_code} {response.text}"
        return self.track_meeting(response.json()["id"], network, body["items"], label)

    def seed_minutes(self, meeting: Meeting, number: int, client_id: str) -> None:
        response, _ = self.request("POST", f"/v1/meetings/{meeting.id}/items/{number}/minutes", client_id,
                                   json_body={"text": f"Matrix minutes marker {self.meeting_label(meeting.id)}"})
        assert response.status_code == 201, f"seeding minutes of {self.meeting_label(meeting.id)}: {response.text}"

    def seed_close(self, meeting: Meeting, client_id: str) -> None:
        response, _ = self.request("POST", f"/v1/meetings/{meeting.id}/close", client_id)
        assert response.status_code == 200, f"closing {self.meeting_label(meeting.id)}: {response.text}"
        meeting.open = False

    def seed_action(self, label: str, client_id: str, owner: str, meeting: Meeting | None = None,
                    number: int | None = None) -> Action:
        rid = self.labels[label]
        response, _ = self.request("POST", f"/v1/referrals/{rid}/actions", client_id,
                                   json_body=self.action_body(owner, meeting, number))
        assert response.status_code == 201, f"seeding an action on {label}: {response.text}"
        action = Action(response.json()["id"], rid, self.recs[rid].network, owner)
        self.actions[action.id] = action
        return action

    # judging

    @staticmethod
    def history_purpose(purpose: str) -> bool:
        """Minutes and actions are read for an ordinary purpose (never `emergency`)."""
        return purpose not in (NONE, BOGUS, EMERGENCY)

    def history_bound(self, caller: Caller, rec: Rec, purpose: str) -> frozenset[str]:
        return self.oracle.referral_bound(caller, rec, purpose) if self.history_purpose(purpose) else frozenset()

    def shown_items(self, caller: Caller, meeting: Meeting, purpose: str) -> set[int]:
        """The item numbers the oracle lets the caller see on the agenda."""
        return {n for n, item in meeting.items.items()
                if self.oracle.agenda_bound(caller, meeting, item, self.recs.get(item.referral_id)
                                            or self.refresh(item.referral_id), purpose)}

    def judge_agenda(self, cell: Cell, caller: Caller, meeting: Meeting, purpose: str,
                     document: Mapping[str, Any]) -> set[str]:
        """A meeting document (a read, or a write's reply): only items the caller sits at and its
        agreements grant for the conference.  Returns the referrals it names."""
        name = self.meeting_label(meeting.id)
        cell.beyond += [f"{name}:meeting.{k}" for k in sorted(set(document) - MEETING_FIELDS)]
        if document.get("id") != meeting.id or document.get("network") != meeting.network:
            cell.beyond.append(f"{name}: answered as {document.get('id')} of {document.get('network')}")
        listed: set[str] = set()
        for entry in document.get("agenda") or ():
            number, rid = entry.get("number"), entry.get("referral_id")
            item = meeting.items.get(number)
            if item is None or item.referral_id != rid:
                cell.unauthorized.append(f"{name}: item {number} ({self.label(str(rid))}) is not on its agenda")
                continue
            listed.add(rid)
            rec = self.recs.get(rid) or self.refresh(rid)
            if not self.oracle.agenda_bound(caller, meeting, item, rec, purpose):
                cell.unauthorized.append(f"{self.label(rid)}: item {number} of {name} shown to {caller.agency}")
            cell.beyond += [f"{self.label(rid)}:agenda.{k}" for k in sorted(set(entry) - AGENDA_ITEM_FIELDS)]
        return listed

    def judge_meeting_reply(self, cell: Cell, caller: Caller, meeting: Meeting, purpose: str,
                            response: Response, receipt: frozenset[str] = WRITE_REPLY_BASE) -> None:
        """A permitted (or wrongly permitted) meeting write: its entry names the meeting, and what
        its reply shows of the agenda is judged like a read; else the reply is a receipt."""
        document = response.json()
        cell.log_ids = (cell.log_ids or set()) | {meeting.id}
        if "agenda" in document:
            cell.log_ids |= self.judge_agenda(cell, caller, meeting, purpose, document)
        else:
            cell.beyond += [f"{self.meeting_label(meeting.id)}:reply.{k}" for k in sorted(set(document) - receipt)]

    # the reads

    def get_meeting(self, client_id: str, meeting: Meeting, purpose: str) -> None:
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/meetings/{meeting.id}", client_id, purpose)
        cell = self.cell(R_MEETING, client_id, response, request_id, record=self.meeting_label(meeting.id),
                         kind=self.seat(caller, meeting), purpose=purpose)
        shown = self.shown_items(caller, meeting, purpose)
        if response.status_code == 403 and shown:
            self.refused_read(cell)
        if response.status_code != 200:
            return
        if purpose != CONFERENCE or not self.oracle.seated(caller, meeting):
            cell.unauthorized.append(f"{self.meeting_label(meeting.id)} answered to {caller.agency}, at none "
                                     f"of its items (or not for {CONFERENCE})")
        document = response.json()
        listed = self.judge_agenda(cell, caller, meeting, purpose, document)
        numbers = {e.get("number") for e in document.get("agenda") or ()}
        if shown - numbers:
            self.refused_read(cell)
        if listed:
            cell.log_ids = listed

    def get_agenda_referral(self, client_id: str, meeting: Meeting, number: int, purpose: str,
                            view: str | None = None) -> None:
        """An item's referral through the meeting: the oracle's bound for `case_conference` with
        `invited` while the meeting is open, for the chair and the agencies invited to the item."""
        caller = self.caller(client_id)
        item = meeting.items[number]
        rec = self.recs[item.referral_id]
        url = f"/v1/meetings/{meeting.id}/items/{number}/referral" + (f"?view={view}" if view else "")
        response, request_id = self.request("GET", url, client_id, purpose)
        record = f"{self.meeting_label(meeting.id)}#{number} {self.label(rec.id)}" + (f" ?view={view}" if view else "")
        cell = self.cell(R_AGENDA_REFERRAL, client_id, response, request_id, record=record,
                         kind=self.seat(caller, meeting, item), purpose=purpose)
        bound = self.oracle.agenda_bound(caller, meeting, item, rec, purpose)
        if response.status_code == 200 and self.judge_document(
            cell, caller, rec, response.json(), bound, frozenset({"id"})
        ):
            cell.log_ids = {rec.id}
        if response.status_code == 403 and bound and not view:
            self.refused_read(cell)

    def list_meetings(self, client_id: str, network: str) -> None:
        """Ids, kinds, times and statuses (nothing of the cases, so no entry is needed): every meeting
        of the network to its chair, else those the caller is invited to an item of."""
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/networks/{network}/meetings?limit=200", client_id)
        cell = self.cell(R_MEETINGS, client_id, response, request_id, record=network,
                         kind=self.network_seat(caller, network))
        allowed = self.oracle.meetings_listed(caller, network, list(self.meetings.values()))
        if response.status_code == 403 and allowed:
            self.refused_read(cell)
        if response.status_code != 200:
            return
        if allowed is None:
            cell.unauthorized.append(f"the meetings of {network} to a caller no party to it")
            return
        items = response.json().get("items", [])
        for entry in items:
            known = self.meetings.get(entry.get("id"))
            name = self.meeting_label(str(entry.get("id")))
            if known is not None and known.network != network:
                cell.beyond.append(f"{name} of {known.network} listed for {network}")
            elif entry.get("id") not in allowed:
                cell.unauthorized.append(f"{name} listed to {caller.agency}, invited to none of its items")
            cell.beyond += [f"{name}:{k}" for k in sorted(set(entry) - MEETING_SUMMARY_FIELDS)]
        if allowed - {e.get("id") for e in items}:
            self.refused_read(cell)

    def list_minutes(self, client_id: str, rec: Rec, purpose: str) -> None:
        """A referral's minutes: a read of the field `minutes` for the purpose stated."""
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/referrals/{rec.id}/minutes", client_id, purpose)
        cell = self.cell(R_MINUTES, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        granted = "minutes" in self.history_bound(caller, rec, purpose)
        if response.status_code == 403 and granted:
            self.refused_read(cell)
        if response.status_code != 200:
            return
        cell.log_ids = {rec.id}
        if not granted:
            cell.unauthorized.append(f"{self.label(rec.id)}: minutes without a view that includes them")
        for entry in response.json().get("items", []):
            meeting = self.meetings.get(entry.get("meeting_id"))
            item = meeting.items.get(entry.get("number")) if meeting else None
            if item is None or item.referral_id != rec.id:
                cell.unauthorized.append(f"{self.label(rec.id)}: minutes of item {entry.get('number')} of "
                                         f"{self.meeting_label(str(entry.get('meeting_id')))}, not this referral's")
            cell.beyond += [f"{self.label(rec.id)}:minutes.{k}" for k in sorted(set(entry) - MINUTES_ITEM_FIELDS)]

    def list_referral_actions(self, client_id: str, rec: Rec, purpose: str) -> None:
        """All of a referral's actions with the field `actions`; else, with any grant, its own."""
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/referrals/{rec.id}/actions", client_id, purpose)
        cell = self.cell(R_ACTIONS, client_id, response, request_id, record=self.label(rec.id),
                         kind=self.kind(caller, rec), purpose=purpose)
        bound = self.history_bound(caller, rec, purpose)
        if response.status_code == 403 and bound:
            self.refused_read(cell)
        if response.status_code != 200:
            return
        cell.log_ids = {rec.id}
        if not bound:
            cell.unauthorized.append(f"{self.label(rec.id)}: actions of a referral not granted for {purpose}")
            return
        for entry in response.json().get("items", []):
            action = self.actions.get(entry.get("id")) or Action(
                str(entry.get("id")), str(entry.get("referral_id")), rec.network, str(entry.get("owner_agency")))
            if action.referral_id != rec.id or entry.get("referral_id") != rec.id:
                cell.unauthorized.append(f"{self.label(rec.id)}: an action of {self.label(action.referral_id)}")
            elif not self.oracle.action_readable(caller, rec, action, purpose):
                cell.unauthorized.append(f"{self.label(rec.id)}: {action.owner}'s action without `actions`")
            cell.beyond += [f"{self.label(rec.id)}:action.{k}" for k in sorted(set(entry) - ACTION_FIELDS)]

    def list_my_actions(self, client_id: str, purpose: str, state: str = "all") -> None:
        """The caller's agency's actions, each on a referral granted to it for the purpose stated."""
        caller = self.caller(client_id)
        response, request_id = self.request("GET", f"/v1/actions?state={state}&limit=200", client_id, purpose)
        cell = self.cell(R_MY_ACTIONS, client_id, response, request_id, record=f"state={state}", purpose=purpose)
        mine = [a for a in self.actions.values() if a.owner == caller.agency and (state == "all" or a.status == "open")
                and a.referral_id in self.recs and self.history_bound(caller, self.recs[a.referral_id], purpose)]
        if response.status_code == 403 and mine:
            self.refused_read(cell)
        if response.status_code != 200:
            return
        carried: set[str] = set()
        for entry in response.json().get("items", []):
            action = self.actions.get(entry.get("id"))
            owner = action.owner if action else entry.get("owner_agency")
            rid = action.referral_id if action else str(entry.get("referral_id"))
            rec = self.recs.get(rid) or self.refresh(rid)
            carried.add(rid)
            if owner != caller.agency or entry.get("referral_id") != rid:
                cell.unauthorized.append(f"{self.label(rid)}: {owner}'s action listed to {caller.agency}")
            elif not self.history_bound(caller, rec, purpose):
                cell.unauthorized.append(f"{self.label(rid)}: an action on a referral not granted for {purpose}")
            cell.beyond += [f"{self.label(rid)}:action.{k}" for k in sorted(set(entry) - ACTION_FIELDS)]
        if carried:
            cell.log_ids = carried

    # the chair's writes

    def _chair_write(
        self, route: str, method: str, url: str, client_id: str, network: str, purpose: str,
        body: Any, record: str, kind: str, why: str, send_permitted: bool, holds: bool = True,
    ) -> tuple[Response, Cell] | None:
        """`holds`: the agenda it would leave holds (the network's referrals, its members invited)."""
        caller = self.caller(client_id)
        allowed = self.oracle.may_chair(caller, network) and holds
        if allowed and not send_permitted:
            self.skipped[route] += 1
            return None
        response, request_id = self.request(method, url, client_id, purpose, json_body=body)
        cell = self.cell(route, client_id, response, request_id, record=record, kind=kind, purpose=purpose)
        self.judge_change(cell, allowed, None, f"{why} by {caller.agency}")
        return response, cell

    def schedule(self, client_id: str, network: str, purpose: str, items: list[tuple[str, list[str]]], *,
                 label: str | None = None, send_permitted: bool = True) -> Meeting | None:
        caller = self.caller(client_id)
        body = self.meeting_body(items)
        record = f"{network} meeting" + (f" ({', '.join(self.label(rid) for rid, _ in items)})" if items else "")
        holds = self.oracle.agenda_holds(network, [self.recs[rid] for rid, _ in items],
                                         [a for _, invited in items for a in invited])
        sent = self._chair_write(R_SCHEDULE, "POST", f"/v1/networks/{network}/meetings", client_id, network, purpose,
                                 body, record, self.network_seat(caller, network), "a meeting scheduled",
                                 send_permitted, holds)
        if sent is None or sent[0].status_code >= 300:
            return None
        response, cell = sent
        meeting = self.track_meeting(response.json()["id"], network, body["items"], label)
        cell.log_ids = {rid for rid, _ in items}
        self.judge_meeting_reply(cell, caller, meeting, purpose, response)
        return meeting

    def add_item(self, client_id: str, meeting: Meeting, rid: str, invited: list[str], purpose: str, *,
                 send_permitted: bool = False) -> Response | None:
        caller = self.caller(client_id)
        body = {"referral_id": rid, "invited": sorted(invited)}
        record = f"{self.meeting_label(meeting.id)} +{self.label(rid)}"
        sent = self._chair_write(R_ITEM_ADD, "POST", f"/v1/meetings/{meeting.id}/items", client_id, meeting.network,
                                 purpose, body, record, self.seat(caller, meeting), "an agenda item added",
                                 send_permitted, self.oracle.agenda_holds(meeting.network, [self.recs[rid]], invited))
        if sent is None:
            return None
        response, cell = sent
        if response.status_code < 300:
            number = max(meeting.items, default=0) + 1  # the next number; removed ones' numbers stay gone
            meeting.items[number] = AgendaItem(number, rid, frozenset(invited))
            cell.log_ids = {rid}
            self.judge_meeting_reply(cell, caller, meeting, purpose, response)
        return response

    def edit_item(self, client_id: str, meeting: Meeting, number: int, body: dict[str, Any], purpose: str, *,
                  send_permitted: bool = False) -> Response | None:
        caller = self.caller(client_id)
        item = meeting.items[number]
        record = f"{self.meeting_label(meeting.id)}#{number} {self.label(item.referral_id)}"
        sent = self._chair_write(R_ITEM_EDIT, "PATCH", f"/v1/meetings/{meeting.id}/items/{number}", client_id,
                                 meeting.network, purpose, body, record, self.seat(caller, meeting, item),
                                 "an agenda item changed", send_permitted,
                                 self.oracle.agenda_holds(meeting.network, [], body.get("invited") or ()))
        if sent is None:
            return None
        response, cell = sent
        if response.status_code < 300:
            if body.get("invited") is not None:
                item.invited = frozenset(body["invited"])
            cell.log_ids = {item.referral_id}
            self.judge_meeting_reply(cell, caller, meeting, purpose, response)
        return response

    def remove_item(self, client_id: str, meeting: Meeting, number: int, purpose: str, *,
                    send_permitted: bool = False) -> Response | None:
        caller = self.caller(client_id)
        item = meeting.items[number]
        record = f"{self.meeting_label(meeting.id)}#{number} {self.label(item.referral_id)}"
        sent = self._chair_write(R_ITEM_REMOVE, "DELETE", f"/v1/meetings/{meeting.id}/items/{number}", client_id,
                                 meeting.network, purpose, None, record, self.seat(caller, meeting, item),
                                 "an agenda item removed", send_permitted)
        if sent is None:
            return None
        response, cell = sent
        if response.status_code < 300:
            del meeting.items[number]
            cell.log_ids = {item.referral_id}
            self.judge_meeting_reply(cell, caller, meeting, purpose, response)
        return response

    def record_minutes(self, client_id: str, meeting: Meeting, number: int, purpose: str, *,
                       decision: str | None = None, send_permitted: bool = False) -> Response | None:
        caller = self.caller(client_id)
        item = meeting.items[number]
        body: dict[str, Any] = {"text": f"Matrix minutes marker by {client_id}"}
        if decision is not None:
            body["decision"] = decision
        record = f"{self.meeting_label(meeting.id)}#{number} {self.label(item.referral_id)}" + (
            f" ({decision})" if decision else "")
        sent = self._chair_write(R_MINUTES_POST, "POST", f"/v1/meetings/{meeting.id}/items/{number}/minutes",
                                 client_id, meeting.network, purpose, body, record, self.seat(caller, meeting, item),
                                 "minutes recorded", send_permitted)
        if sent is None:
            return None
        response, cell = sent
        if response.status_code < 300:
            self.refresh(item.referral_id)  # a decision may have moved it
            cell.log_ids = {item.referral_id}
            self.judge_meeting_reply(cell, caller, meeting, purpose, response, MINUTES_RECEIPT)
        return response

    def close_meeting(self, client_id: str, meeting: Meeting, purpose: str, *,
                      send_permitted: bool = False) -> Response | None:
        caller = self.caller(client_id)
        sent = self._chair_write(R_CLOSE, "POST", f"/v1/meetings/{meeting.id}/close", client_id, meeting.network,
                                 purpose, None, self.meeting_label(meeting.id), self.seat(caller, meeting),
                                 "a meeting closed", send_permitted)
        if sent is None:
            return None
        response, cell = sent
        if response.status_code < 300:
            meeting.open = False
            self.judge_meeting_reply(cell, caller, meeting, purpose, response)
        return response

    # actions

    def create_action(self, client_id: str, rec: Rec, purpose: str, *, owner: str | None = None,
                      meeting: Meeting | None = None, number: int | None = None) -> Action | None:
        """Set an action (owned by the caller's agency unless told): the chair, the referrer or an
        assigned agency; harmless to the record, so permitted ones are sent too."""
        caller = self.caller(client_id)
        owner = owner or caller.agency
        # The owner, a member of the record's network: else the action (and its text) would be another's.
        allowed = self.oracle.may_set_action(caller, rec) and self.oracle.member_in_force(owner, rec.network)
        response, request_id = self.request("POST", f"/v1/referrals/{rec.id}/actions", client_id, purpose,
                                            json_body=self.action_body(owner, meeting, number))
        cell = self.cell(R_ACTION_CREATE, client_id, response, request_id, record=f"{self.label(rec.id)} for {owner}",
                         kind=self.kind(caller, rec), purpose=purpose)
        self.judge_change(cell, allowed, rec.id, f"an action set by {caller.agency}", response)
        if response.status_code >= 300:
            return None
        reply = response.json()
        cell.beyond += [f"{self.label(rec.id)}:reply.{k}" for k in sorted(set(reply) - ACTION_RECEIPT)]
        action = Action(reply["id"], rec.id, rec.network, owner)
        self.actions[action.id] = action
        return action

    def update_action(self, client_id: str, action: Action, status: str, purpose: str, *, note: str | None = None,
                      send_permitted: bool = True) -> Response | None:
        """Its owner agency or the chair sets a status; cancelling is the chair's."""
        caller = self.caller(client_id)
        rec = self.recs[action.referral_id]
        allowed = self.oracle.may_set_action_status(caller, action, status)
        if allowed and not send_permitted:
            self.skipped[R_ACTION_STATUS] += 1
            return None
        body: dict[str, Any] = {"status": status} | ({"note": note} if note else {})
        response, request_id = self.request("POST", f"/v1/actions/{action.id}/status", client_id, purpose,
                                            json_body=body)
        cell = self.cell(R_ACTION_STATUS, client_id, response, request_id,
                         record=f"{self.label(rec.id)} {action.owner}'s action→{status}", kind=self.kind(caller, rec),
                         purpose=purpose)
        self.judge_change(cell, allowed, rec.id, f"an action {status} by {caller.agency}", response)
        if response.status_code < 300:
            action.status = status
            cell.beyond += [f"{self.label(rec.id)}:reply.{k}" for k in sorted(set(response.json()) - ACTION_RECEIPT)]
        return response

    # -- the log -------------------------------------------------------------------------------

    def check_log(self) -> None:
        """Read the whole log once, decrypted, and match every cell's entries by request id."""
        with self.state.sessions() as session:
            views = queries.search(session.connection(), self.state.audit.sealer, queries.EntryFilter(),
                                   after=None, limit=10**9)
        entries: dict[str, list[tuple[str, set[str]]]] = defaultdict(list)
        for view in views:
            details = view.details or {}
            request_id = details.get("request_id")
            if isinstance(request_id, str):
                entries[request_id].append((view.event_type, set(_strings(details.get("record_ids")))))
        for cell in self.cells:
            found = entries.get(cell.request_id, [])
            if 200 <= cell.status < 300 and cell.log_ids is not None:
                kept = [ids for event_type, ids in found if event_type != "denial"]
                if not kept:
                    cell.missing_log.append("no entry")
                else:
                    covered = set().union(*kept)
                    cell.missing_log += [f"no entry names {self.label(i)}" for i in sorted(cell.log_ids - covered)]
            refusal = cell.status == 403 or (cell.status == 400 and cell.slug in REFUSAL_SLUGS)
            if refusal and not any(event_type == "denial" for event_type, _ in found):
                cell.unlogged_denial = True

    # -- the report ------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {
            "unauthorized_2xx": sum(1 for c in self.cells if c.unauthorized),
            "fields_beyond_view": sum(1 for c in self.cells if c.beyond and not c.unauthorized),
            "missing_log_entries": sum(1 for c in self.cells if c.missing_log),
            "unlogged_denials": sum(1 for c in self.cells if c.unlogged_denial),
        }

    def failures(self, limit: int = 6) -> str:
        groups: dict[tuple[str, str, str], list[Cell]] = defaultdict(list)
        for c in self.cells:
            if c.unauthorized:
                groups[("unauthorized_2xx", c.route, _cause(c.unauthorized[0]))].append(c)
            elif c.beyond:
                groups[("fields_beyond_view", c.route, _cause(c.beyond[0]))].append(c)
            if c.missing_log:
                groups[("missing_log_entries", c.route, _cause(c.missing_log[0]))].append(c)
            if c.unlogged_denial:
                groups[("unlogged_denials", c.route, f"{c.status} {c.slug}")].append(c)
        lines = []
        for (category, route, cause), cells in sorted(groups.items()):
            lines.append(f"[{category}] {route} — {cause} — {len(cells)} cell(s)")
            for c in cells[:limit]:
                detail = (c.unauthorized or c.beyond or c.missing_log or [""])
                lines.append(f"    {c.where()}  {c.request_id}  {'; '.join(detail)[:300]}")
        return "\n".join(lines)

    def write_failures(self, path: str) -> None:
        """Every failing cell as one JSON line (CASEBRIDGE_BOLA_REPORT=path), for the closing note."""
        with open(path, "a", encoding="utf-8") as out:
            for c in self.cells:
                if c.unauthorized or c.beyond or c.missing_log or c.unlogged_denial:
                    out.write(json.dumps({
                        "route": c.route, "client": c.client, "record": c.record, "kind": c.kind,
                        "purpose": c.purpose, "status": c.status, "request_id": c.request_id,
                        "unauthorized": c.unauthorized, "beyond": sorted(set(c.beyond)),
                        "missing_log": c.missing_log, "unlogged_denial": c.unlogged_denial,
                    }) + "\n")

    def summary(self, database: str) -> str:
        routes = sorted(self.sent)
        records = sorted(self.labels)
        ok = Counter(c.route for c in self.cells if 200 <= c.status < 300)
        counts = self.counts()
        seeded = self.seeded or records
        kinds = Counter(c.kind for c in self.cells if c.kind != "-")
        lines = [
            f"BOLA matrix on {database}: {len(self.cells)} requests, {len(routes)} routes, "
            f"{len(self.callers)} clients, {len(seeded)} records every client reads and changes "
            f"(+{len(records) - len(seeded)} for walks and erasure), {len(self.purposes)} purposes "
            f"({', '.join(self.purposes)})",
            "  " + json.dumps(counts),
            f"  record cells by kind: {dict(sorted(kinds.items()))}",
            f"  permitted changes not sent in the sweep (exercised in the walks): {dict(self.skipped)}",
            "  requests by route (2xx/all): " + ", ".join(
                f"{r} {ok[r]}/{n}" for r, n in sorted(self.sent.items())),
            f"  seconds in requests: {round(sum(self.elapsed.values()), 1)}",
        ]
        if self.status_leaks:
            lines.append(f"  refusals to strangers that name the record's status: {dict(self.status_leaks)}")
        if self.refused_reads:
            lines.append(f"  reads the oracle grants that the app refused: {dict(self.refused_reads)}")
        if self.refused_permitted:
            lines.append(f"  changes the oracle permits that the app refused ({len(self.refused_permitted)}):")
            lines += [f"    {r}" for r in self.refused_permitted[:40]]
        lines += [f"  note: {o}" for o in self.observations]
        return "\n".join(lines)


IDENTITY = ("given_name", "family_name", "date_of_birth", "gender", "phone", "email", "address", "identifiers",
            "ethnicity", "religion", "language")


def _same(shown: Any, given: Any) -> bool:
    if isinstance(shown, list) and isinstance(given, list):
        key = lambda i: json.dumps(i, sort_keys=True)  # noqa: E731
        return sorted(map(key, shown)) == sorted(map(key, given))
    return str(shown).strip() == str(given).strip()


def _cause(detail: str) -> str:
    """A failure's cause with the record label taken out, to group alike cells."""
    head = detail.split(": ", 1)[-1] if ": " in detail else detail
    if ":" in detail and ": " not in detail:  # label:field
        head = detail.split(":", 1)[-1]
    return head[:160]
