"""Entries as FHIR R4 AuditEvent resources, after IHE Basic Audit Log Patterns (BALP)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any, Final

from app.audit.queries import EntryView

DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL: Final = "http://hl7.org/fhir/restful-interaction"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SECURITY_ROLE: Final = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
CB_EVENT: Final = "https://casebridge.example/fhir/CodeSystem/audit-event"
CB_PURPOSE: Final = "https://casebridge.example/fhir/CodeSystem/purpose"
CB_AGENCY: Final = "urn:casebridge:agency"
CB_RECORD: Final = "urn:casebridge:record"
CB_PERSON: Final = "urn:casebridge:person"
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
    "key_event": (_SECURITY, "E", None),
    "emergency_grant": (_SECURITY, "E", None),
    "link": (_PATIENT_RECORD, "U", None),
}


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


def _agents(entry: EntryView, details: dict[str, Any]) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = []
    if entry.actor_agency:
        agent: dict[str, Any] = {
            "type": {"coding": [_coding(DCM, "110153", "Source Role ID")]},
            "who": {"identifier": {"system": CB_AGENCY, "value": entry.actor_agency}},
            "requestor": True,
        }
        if isinstance(details.get("client_id"), str):
            agent["altId"] = details["client_id"]
        agents.append(agent)
    if isinstance(details.get("on_behalf_of"), str):
        agents.append(
            {
                "type": {"coding": [_coding(SECURITY_ROLE, "humanuser", "human user")]},
                "who": {"identifier": {"system": CB_PERSON, "value": details["on_behalf_of"]}},
                "requestor": True,
            }
        )
    if entry.recipient_agency:
        agents.append(
            {
                "type": {"coding": [_coding(PARTICIPATION, "IRCP", "information recipient")]},
                "who": {"identifier": {"system": CB_AGENCY, "value": entry.recipient_agency}},
                "requestor": False,
            }
        )
    if not agents:  # system events: the service itself acted
        agents.append(
            {
                "type": {"coding": [_coding(DCM, "110150", "Application")]},
                "who": {"display": "CaseBridge"},
                "requestor": False,
            }
        )
    return agents


def _detail(kind: str, value: str, *, binary: bool = False) -> dict[str, str]:
    return {"type": kind, "valueBase64Binary" if binary else "valueString": value}


def _entities(
    entry: EntryView, details: dict[str, Any], ciphertext: bytes, decrypt: bool
) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if entry.subject_index:
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": f"{CB_SUBJECT_INDEX}:{entry.subject_index_key_id}",
                        "value": entry.subject_index,
                    }
                },
                "type": _coding(ENTITY_TYPE, "1", "Person"),
                "role": _coding(OBJECT_ROLE, "1", "Patient"),
            }
        )
    data: list[dict[str, str]] = [
        _detail("leaf_hash", base64.b64encode(entry.leaf_hash).decode(), binary=True),
    ]
    for kind, value in (("agreement", entry.agreement_id), ("rule", entry.rule_id)):
        if value:
            data.append(_detail(kind, value))
    if decrypt:
        for key in ("fields", "rule_ids"):
            if isinstance(details.get(key), list):
                data.append(_detail(key, ",".join(map(str, details[key]))))
        for key in ("legal_basis", "retention", "justification", "request_id", "reason"):
            if isinstance(details.get(key), str):
                data.append(_detail(key, details[key]))
    else:
        data.append(
            _detail("details_ciphertext", base64.b64encode(ciphertext).decode(), binary=True)
        )
        data.append(_detail("key_id", entry.key_id))
    records = details.get("record_ids") if decrypt else None
    what: list[dict[str, Any] | None] = [
        {"identifier": {"system": CB_RECORD, "value": str(r)}} for r in records or ()
    ]
    for target in what or [None]:
        entity: dict[str, Any] = {
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
            "detail": data,
        }
        if target is not None:
            entity["what"] = target
        entities.append(entity)
    return entities


def audit_event(
    entry: EntryView, origin: str, ciphertext: bytes, *, decrypt: bool
) -> dict[str, Any]:
    """The AuditEvent resource of one entry (details decrypted into it only with ``decrypt``)."""
    event_type, action, interaction = KINDS[entry.event_type]
    details = (entry.details or {}) if decrypt else {}
    subtype = [_coding(CB_EVENT, entry.event_type)]
    if interaction:
        subtype.append(_coding(RESTFUL, interaction))
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(resource_uuid(origin, entry.seq)),
        "type": _coding(*event_type),
        "subtype": subtype,
        "action": action,
        "recorded": instant(entry.time),
        "outcome": "4" if entry.decision == "deny" else "0",
        "agent": _agents(entry, details),
        "source": {
            "site": origin,
            "observer": {"display": f"CaseBridge disclosure log {origin} #{entry.seq}"},
            "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": _entities(entry, details, ciphertext, decrypt),
    }
    if entry.purpose:
        resource["purposeOfEvent"] = [{"coding": [_coding(CB_PURPOSE, entry.purpose)]}]
    if entry.decision == "deny" and isinstance(details.get("reason"), str):
        resource["outcomeDesc"] = details["reason"]
    return resource
