"""Entries as FHIR R4 (R4B-valid) AuditEvent resources, after IHE Basic Audit Log Patterns (BALP).

Who is who (README, "The FHIR export", has the full mapping):

- the *custodian* is the agency holding the record, which the service disclosed on behalf of
  (``actor_agency`` of reads, emergency grants and denials); it is also ``source.observer``;
- the *requestor* (``requestor: true``) is the caller: its agency (``recipient_agency`` of reads
  and denials, ``actor_agency`` of changes), and, in the decrypted export, its API client and the
  person it acts for (``client_id``, ``on_behalf_of`` in the sealed details);
- the *server* agent is this CaseBridge deployment; it is the requestor only of system events;
- ``entity.what`` names the pseudonymous subject (its blind index, a clear column), each record
  id (decrypted export only: record ids are sealed) and the log entry itself.

FHIR forbids empty values: nothing empty is ever emitted.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from app.audit.events import DISCLOSURE_TYPES
from app.audit.queries import EntryView

DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
SCT: Final = "http://snomed.info/sct"
EVENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL: Final = "http://hl7.org/fhir/restful-interaction"
LIFECYCLE: Final = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SECURITY_ROLE: Final = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
CB_EVENT: Final = "https://casebridge.example/fhir/CodeSystem/audit-event"
CB_PURPOSE: Final = "https://casebridge.example/fhir/CodeSystem/purpose"
CB_AGENCY: Final = "urn:casebridge:agency"
CB_CLIENT: Final = "urn:casebridge:client"
CB_PERSON: Final = "urn:casebridge:person"
CB_DEPLOYMENT: Final = "urn:casebridge:deployment"
CB_RECORD: Final = "urn:casebridge:record"
CB_SUBJECT_INDEX: Final = "urn:casebridge:audit-subject-index"

_REST = (EVENT_TYPE, "rest", "RESTful Operation")
_EXPORT = (DCM, "110106", "Export")
_APPLICATION = (DCM, "110100", "Application Activity")
_SECURITY = (DCM, "110113", "Security Alert")
_QUERY = (DCM, "110112", "Query")
_PATIENT_RECORD = (DCM, "110110", "Patient Record")

# event type -> (AuditEvent.type, action C/R/U/D/E, restful-interaction subtype or None)
KINDS: Final[dict[str, tuple[tuple[str, str, str], str, str | None]]] = {
    "disclosure": (_EXPORT, "R", "read"),
    "aggregate_disclosure": (_EXPORT, "R", "search-type"),
    "access": (_REST, "R", "read"),
    "emergency_read": (_REST, "R", "read"),
    "denial": (_REST, "R", "read"),
    "create": (_REST, "C", "create"),
    "change": (_REST, "U", "update"),
    "transition": (_REST, "U", "update"),
    "withdrawal_notice": (_REST, "U", "update"),
    "purge": (_REST, "D", "delete"),
    "erasure": (_REST, "D", "delete"),
    "audit_query": (_QUERY, "E", "search-type"),
    "agreement_load": (_APPLICATION, "E", None),
    "agreement_signed": (_APPLICATION, "E", None),
    "agreement_activated": (_APPLICATION, "E", None),
    "key_event": (_SECURITY, "E", None),
    "emergency_grant": (_SECURITY, "E", None),
    "link": (_PATIENT_RECORD, "U", None),
}

CALLER_IS_RECIPIENT: Final = frozenset(
    {"disclosure", "access", "emergency_read", "emergency_grant", "denial", "aggregate_disclosure",
     "audit_query", "link"}
)
"""Events whose ``recipient_agency`` is the caller's agency (for the rest it is ``actor_agency``)."""

ACTOR_HOLDS_RECORD: Final = frozenset({"disclosure", "access", "emergency_read", "emergency_grant", "denial"})
"""Events whose ``actor_agency`` is the agency holding the record: the custodian, the source."""

TRANSFER_RULE: Final = "transfer"
"""A transfer's disclosure goes to the receiving coordinator, which did not ask for it."""

DETAIL_KEYS: Final = (
    "fields", "view", "rule_ids", "legal_basis", "special_category_condition", "retention",
    "agreement_version", "agreement_hash", "justification", "reason", "refusal", "operation",
    "query", "action", "from_status", "to_status", "request_id",
)
"""Sealed details copied into the decrypted export, in this order (names and references only)."""

UNKNOWN_CLIENT: Final = "unknown client"
SEALED_CLIENT: Final = "the client named in the sealed details"
OUTCOME_SUCCESS: Final = "0"
OUTCOME_REFUSED: Final = "4"  # R4 "minor failure": the request was refused, the service worked

SUBJECT_KIND: Final = "subject"
_NOT_RECORDS: Final = frozenset({"statistics"})  # a refused statistics query's dimensions, not a record
_RECORD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_KIND_SUFFIXES: Final = ("_ids", "_id", "_seqs", "s")


def instant(moment: datetime) -> str:
    """A FHIR instant in UTC."""
    return moment.isoformat().replace("+00:00", "Z")


def resource_uuid(origin: str, seq: int) -> uuid.UUID:
    """A stable id for the resource of entry ``seq`` of this log."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://{origin}/entries/{seq}")


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)]}


def _text(value: Any) -> str | None:
    """A detail's value as a non-empty FHIR string, or None (FHIR forbids empty values)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        text = str(value).strip()
        return text or None
    if isinstance(value, list | tuple):
        parts = [t for t in (_text(v) for v in value) if t]
        return ",".join(parts) or None
    return None


def _known(details: Mapping[str, Any], key: str) -> str | None:
    value = details.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class _Parties:
    """Who held, who asked, who else was told: the agencies an entry names, by its type."""

    custodian: str | None
    caller: str | None
    informed: str | None
    must_name_caller: bool  # a refusal, or a transfer: someone asked, even if the log cannot say who

    @classmethod
    def of(cls, entry: EntryView) -> _Parties:
        kind = entry.event_type
        transfer = kind == "disclosure" and entry.rule_id == TRANSFER_RULE
        if transfer:  # the transition's caller is sealed in the details (client_id)
            caller = None
        elif kind in CALLER_IS_RECIPIENT:
            caller = entry.recipient_agency or (entry.actor_agency if kind == "audit_query" else None)
        else:
            caller = entry.actor_agency
        custodian = entry.actor_agency if kind in ACTOR_HOLDS_RECORD else None
        informed = entry.recipient_agency if entry.recipient_agency != caller else None
        return cls(custodian, caller, informed, transfer or entry.decision == "deny")


def _agency(agency: str, display: str | None = None) -> dict[str, Any]:
    who: dict[str, Any] = {"identifier": {"system": CB_AGENCY, "value": agency}, "type": "Organization"}
    if display:
        who["display"] = display
    return who


def server_who(origin: str) -> dict[str, Any]:
    """The deployment, as the ``who`` of its agent and the observer of system events."""
    return {"identifier": {"system": CB_DEPLOYMENT, "value": origin}, "type": "Device",
            "display": f"CaseBridge {origin}"}


def _server(origin: str, *, requestor: bool) -> dict[str, Any]:
    return {
        "type": _concept(DCM, "110150", "Application"),
        "role": [_concept(SOURCE_TYPE, "4", "Application Server")],
        "who": server_who(origin),
        "requestor": requestor,
        "network": {"address": origin.split("/", 1)[0], "type": "1"},  # 1: machine name
    }


def _requestors(entry: EntryView, parties: _Parties, details: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The caller: its agency, its API client and the person it acts for, as far as known."""
    received = entry.event_type in CALLER_IS_RECIPIENT and entry.decision != "deny"
    agents: list[dict[str, Any]] = []
    if parties.caller:
        role = (PARTICIPATION, "IRCP", "information recipient") if received else (PARTICIPATION, "AUT", "author")
        agents.append({"type": _concept(*role), "who": _agency(parties.caller), "requestor": True})
    client = _known(details, "client_id")
    if client:
        of = f" of {parties.caller}" if parties.caller else ""
        agents.append({
            "type": _concept(DCM, "110153", "Source Role ID"),
            "who": {"identifier": {"system": CB_CLIENT, "value": client}, "type": "Device",
                    "display": f"API client {client}{of}"},
            "requestor": True,
        })
    person = _known(details, "on_behalf_of")
    if person:
        agents.append({
            "type": _concept(SECURITY_ROLE, "humanuser", "human user"),
            "who": {"identifier": {"system": CB_PERSON, "value": person}},
            "requestor": True,
        })
    return agents


def _agents(entry: EntryView, origin: str, details: Mapping[str, Any], decrypt: bool) -> list[dict[str, Any]]:
    parties = _Parties.of(entry)
    agents = _requestors(entry, parties, details)
    if not agents and parties.must_name_caller:  # a refusal always names who was refused
        agents.append({
            "type": _concept(DCM, "110153", "Source Role ID"),
            "who": {"display": UNKNOWN_CLIENT if decrypt else SEALED_CLIENT},
            "requestor": True,
        })
    if parties.custodian:
        agents.append({
            "type": _concept(SCT, "159541003", "Record keeping/library clerk"),
            "role": [_concept(PARTICIPATION, "CST", "custodian")],
            "who": _agency(parties.custodian),
            "requestor": False,
        })
    if parties.informed:
        agents.append({
            "type": _concept(PARTICIPATION, "IRCP", "information recipient"),
            "who": _agency(parties.informed),
            "requestor": False,
        })
    agents.append(_server(origin, requestor=not agents))  # system events: the service itself acted
    return agents


def _detail(kind: str, value: str, *, binary: bool = False) -> dict[str, str]:
    return {"type": kind, "valueBase64Binary" if binary else "valueString": value}


def _record_kind(key: str) -> str:
    """``referral_id``/``referral_ids`` -> ``referral``: the record kind a details key names."""
    for suffix in _KIND_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


def record_ids(details: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, id) of every record the sealed details name; anything not shaped as an id is left out.

    ``record_ids`` is a mapping (``{"referral_id": "ref_1", "note_ids": [...]}``) or, in older
    entries and auditor queries, a list of ids (``"audit:12"`` names its kind before the colon).
    """
    found = details.get("record_ids")
    pairs: list[tuple[str, Any]]
    if isinstance(found, Mapping):
        pairs = [(_record_kind(str(k)), v) for k, v in found.items() if k not in _NOT_RECORDS]
    elif isinstance(found, list):
        pairs = [("record", v) for v in found]
    else:
        return
    seen: set[tuple[str, str]] = set()
    for kind, value in pairs:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool) or not isinstance(item, str | int):
                continue
            text = str(item)
            if not _RECORD_ID.match(text):
                continue
            if kind == "record" and ":" in text:
                kind_of, _, text = text.partition(":")
                pair = (kind_of, text)
            else:
                pair = (kind, text)
            if pair[1] and pair not in seen:
                seen.add(pair)
                yield pair


def _record_entity(kind: str, value: str) -> dict[str, Any]:
    return {
        "what": {"identifier": {"system": f"{CB_RECORD}:{kind}", "value": value}},
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
    }


def _entry_details(
    entry: EntryView, details: Mapping[str, Any], ciphertext: bytes, decrypt: bool
) -> list[dict[str, str]]:
    data = [_detail("leaf_hash", base64.b64encode(entry.leaf_hash).decode(), binary=True)]
    for kind, value in (("agreement", entry.agreement_id), ("rule", entry.rule_id)):
        if value:
            data.append(_detail(kind, value))
    if decrypt:
        for key in DETAIL_KEYS:
            text = _text(details.get(key))
            if text:
                data.append(_detail(key, text))
    else:
        if ciphertext:
            data.append(_detail("details_ciphertext", base64.b64encode(ciphertext).decode(), binary=True))
        data.append(_detail("key_id", entry.key_id))
    return data


def _entities(
    entry: EntryView, origin: str, details: Mapping[str, Any], ciphertext: bytes, decrypt: bool
) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if entry.subject_index:
        entities.append({
            "what": {
                "identifier": {"system": f"{CB_SUBJECT_INDEX}:{entry.subject_index_key_id}",
                               "value": entry.subject_index},
                "type": "Patient",
            },
            "type": _coding(ENTITY_TYPE, "1", "Person"),
            "role": _coding(OBJECT_ROLE, "1", "Patient"),
        })
    # The person is named by the blind index alone, in both exports: a subject id some entries
    # seal (links, erasures) is not a record id and stays out (one Patient entity, pseudonymous).
    entities.extend(_record_entity(kind, value) for kind, value in record_ids(details) if kind != SUBJECT_KIND)
    sealed = "" if decrypt else "; the records it names are in its sealed details"
    entities.append({
        "what": {
            "identifier": {"system": f"https://{origin}/entries", "value": str(entry.seq)},
            "display": f"disclosure-log entry {entry.seq}{sealed}",
        },
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "13", "Security Resource"),
        "detail": _entry_details(entry, details, ciphertext, decrypt),
    })
    return entities


def _outcome_desc(entry: EntryView, details: Mapping[str, Any], decrypt: bool) -> str:
    reason = _known(details, "reason")
    if reason:
        return reason
    rule = f" by rule {entry.rule_id}" if entry.rule_id else ""
    return f"Refused{rule}" + ("" if decrypt else "; the reason is in the sealed details")


def _subtype(entry: EntryView, interaction: str | None) -> list[dict[str, str]]:
    subtype = [_coding(CB_EVENT, entry.event_type)]
    if interaction:
        subtype.append(_coding(RESTFUL, interaction))
    if entry.event_type in DISCLOSURE_TYPES and entry.decision == "permit":
        subtype.append(_coding(LIFECYCLE, "disclose", "Disclose Record Lifecycle Event"))
    return subtype


def audit_event(
    entry: EntryView, origin: str, ciphertext: bytes, *, decrypt: bool
) -> dict[str, Any]:
    """The AuditEvent resource of one entry (details decrypted into it only with ``decrypt``)."""
    event_type, action, interaction = KINDS[entry.event_type]
    details: Mapping[str, Any] = (entry.details or {}) if decrypt else {}
    parties = _Parties.of(entry)
    observer = (
        _agency(parties.custodian, f"CaseBridge {origin} for {parties.custodian}")
        if parties.custodian else server_who(origin)
    )
    refused = entry.decision == "deny"
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(resource_uuid(origin, entry.seq)),
        "type": _coding(*event_type),
        "subtype": _subtype(entry, interaction),
        "action": action,
        "recorded": instant(entry.time),
        "outcome": OUTCOME_REFUSED if refused else OUTCOME_SUCCESS,
        "agent": _agents(entry, origin, details, decrypt),
        "source": {
            "site": origin,
            "observer": observer,
            "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": _entities(entry, origin, details, ciphertext, decrypt),
    }
    if refused:
        resource["outcomeDesc"] = _outcome_desc(entry, details, decrypt)
    if entry.purpose:
        resource["purposeOfEvent"] = [_concept(CB_PURPOSE, entry.purpose)]
    return resource
