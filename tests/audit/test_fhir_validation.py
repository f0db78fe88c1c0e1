"""The FHIR export validates (fhir.resources, R4B) and follows IHE BALP roles, plain and decrypted.

A realistic log is made through the public API (referrals created, moved and read by several
roles, a note, refusals, an emergency grant and read, statistics), then exported over HTTP and by
the CLI, and EVERY AuditEvent and the Bundle are validated.  BALP: the requestor is the recipient
(its agency, API client and the person acting), the custodian/source is the disclosing agency, a
server agent names the deployment, ``entity.what`` carries real ids, refusals name who was refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_support import SUBJECT, cli, event
from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from support.referrals import PURPOSE, referral_body

from app.audit import fhir
from app.db import transaction
from app.state import AppState

Auth = Callable[..., dict[str, str]]
AUDITOR = "independent-auditor"
COORDINATOR = "municipality-coordinator"
REFERRER = "school-north-referrer"
HEALTH = "health-centre-caseworker"
POLICE = "community-police-caseworker"
NATIONAL = "national-statistics"
PERSON = "counsellor-0042"
SERVICE = {"X-Purpose": "service_provision"}
EMERGENCY_REASON = "Threat to life reported by police; need contact context now."
IRCP, AUT, CLIENT, HUMAN, SERVER, CUSTODIAN = "IRCP", "AUT", "110153", "humanuser", "110150", "159541003"


@pytest.fixture
def story(
    app_client: TestClient, auth: Auth, token_for: Callable[..., str], post_referral: Callable[..., dict[str, Any]],
    move: Callable[..., Any],
) -> dict[str, str]:
    """Referrals created and read by several roles, a note, refusals, break-the-glass, statistics."""
    person = {"Authorization": f"Bearer {token_for(REFERRER, act=PERSON)}"}
    created = app_client.post("/v1/referrals", json=referral_body(), headers=person)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    other = post_referral()["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-health-centre"]}))
    note = app_client.post(f"/v1/referrals/{rid}/notes", headers=auth(REFERRER),
                           json={"classification": "shared", "text": "Met the family; follow-up next week."})
    assert note.status_code == 201, note.text
    for client_id, purpose in ((COORDINATOR, PURPOSE), (REFERRER, PURPOSE), (HEALTH, SERVICE)):
        read = app_client.get(f"/v1/referrals/{rid}", headers=auth(client_id, **purpose))
        assert read.status_code == 200, (client_id, read.text)
    assert app_client.get(f"/v1/referrals/{rid}", headers={**person, **PURPOSE}).status_code == 200
    assert app_client.get(f"/v1/referrals/{rid}/notes", headers=auth(REFERRER, **PURPOSE)).status_code == 200
    assert app_client.get(f"/v1/referrals/{other}", headers=auth(POLICE, **PURPOSE)).status_code == 403
    assert app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH)).status_code == 400  # no purpose
    assert app_client.get("/v1/referrals/ref_doesnotexist", headers=auth(COORDINATOR)).status_code in (400, 404)
    withdrawn = app_client.post(f"/v1/referrals/{rid}/consent", headers=auth(REFERRER),
                                json={"status": "withdrawn", "legal_basis": "public_task"})
    assert withdrawn.status_code == 200, withdrawn.text
    grant = app_client.post(f"/v1/referrals/{rid}/emergency-access", json={"reason": EMERGENCY_REASON},
                            headers=auth(HEALTH))
    assert grant.status_code == 201, grant.text
    emergency = app_client.get(f"/v1/referrals/{rid}", headers=auth(HEALTH, **{"X-Purpose": "emergency"}))
    assert emergency.status_code == 200, emergency.text
    stats = app_client.get("/v1/statistics", params={"dimensions": "risk_level"},
                           headers=auth(NATIONAL, **{"X-Purpose": "statistics"}))
    assert stats.status_code == 200, stats.text
    bogus = app_client.get("/v1/statistics", params={"dimensions": "bogus"},
                           headers=auth(NATIONAL, **{"X-Purpose": "statistics"}))
    assert bogus.status_code == 400, bogus.text  # a refusal, logged with the dimensions asked
    note_id = note.json()["id"]
    return {"referral": rid, "other": other, "note": note_id, "grant": grant.json()["id"]}


def export(client: TestClient, auth: Auth, *, decrypt: bool) -> dict[str, Any]:
    response = client.get("/v1/audit/export", params={"format": "fhir", "decrypt": decrypt}, headers=auth(AUDITOR))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle: dict[str, Any] = response.json()
    return bundle


def validated(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Every AuditEvent and the Bundle, validated with fhir.resources (R4B); the resources."""
    Bundle.model_validate(bundle)
    resources = [item["resource"] for item in bundle.get("entry", [])]
    for resource in resources:
        AuditEvent.model_validate(resource)
    assert not list(_empty_values(bundle)), "FHIR forbids empty values"
    return resources


def _empty_values(node: Any, path: str = "") -> Iterator[str]:
    if node in ("", [], {}, None):
        yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _empty_values(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _empty_values(value, f"{path}[{index}]")


def agents(resource: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [a for a in resource["agent"] if any(c["code"] == code for c in a["type"]["coding"])]


def requestors(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in resource["agent"] if a["requestor"]]


def ident(agent_or_entity: dict[str, Any]) -> tuple[str, str]:
    identifier = (agent_or_entity.get("who") or agent_or_entity["what"])["identifier"]
    return identifier["system"], identifier["value"]


def ident_or_none(agent: dict[str, Any]) -> tuple[str | None, str | None]:
    identifier = agent["who"].get("identifier") or {}
    return identifier.get("system"), identifier.get("value")


def kind(resource: dict[str, Any]) -> str:
    return next(c["code"] for c in resource["subtype"] if c["system"] == fhir.CB_EVENT)


def what_ids(resource: dict[str, Any]) -> set[tuple[str, str]]:
    return {ident(e) for e in resource["entity"] if "identifier" in e["what"]}


def of_kind(resources: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in resources if kind(r) == name]


def server_present(resource: dict[str, Any], origin: str) -> None:
    (server,) = agents(resource, SERVER)
    assert ident(server) == (fhir.CB_DEPLOYMENT, origin)
    assert server["network"]["address"] == origin.split("/")[0]


class TestBothExportsValidate:
    @pytest.mark.parametrize("decrypt", [False, True])
    def test_every_audit_event_validates(
        self, app_client: TestClient, auth: Auth, state: AppState, story: dict[str, str], decrypt: bool
    ) -> None:
        resources = validated(export(app_client, auth, decrypt=decrypt))
        assert len(resources) >= 20
        names = {kind(r) for r in resources}
        assert {"create", "transition", "disclosure", "access", "denial", "emergency_grant",
                "emergency_read", "aggregate_disclosure", "change"} <= names
        for resource in resources:
            server_present(resource, state.audit.origin)
            assert requestors(resource), (kind(resource), resource["agent"])
            assert all("what" in e for e in resource["entity"])
        text = json.dumps(resources)
        assert "Yasmin" not in text and "Haddad" not in text and EMERGENCY_REASON not in text
        subjects = subject_ids(state)
        assert len(subjects) == 1  # the second referral joined the same person (a link entry)
        assert subjects[0] not in text  # sealed in the link entry, but shown only as its blind index
        indexes = {state.blind_index.digest("audit-subject", s) for s in subjects}
        for resource in resources:
            patients = [e for e in resource["entity"] if e["role"]["code"] == "1"]
            assert len(patients) <= 1
            assert all(p["what"]["identifier"]["value"] in indexes for p in patients)

    def test_the_cli_export_validates_too(
        self, app_client: TestClient, auth: Auth, state: AppState, story: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, database_url: str,
    ) -> None:
        monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
        monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(state.settings.data_dir))
        monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", database_url)
        monkeypatch.setenv("CASEBRIDGE_AUTO_MIGRATE", "false")
        monkeypatch.delenv("CASEBRIDGE_KEYRING_PATH", raising=False)
        for number, decrypt in enumerate((False, True, False)):
            out = tmp_path / f"log{number}.fhir.json"
            flags = ("--decrypt",) if decrypt else ()
            code, _, stderr = cli("audit", "export", "--output", str(out), "--format", "fhir", *flags)
            assert code == 0, stderr
            resources = validated(json.loads(out.read_text()))
            assert of_kind(resources, "denial") and of_kind(resources, "emergency_read")
            # the CLI's own earlier exports are logged (audit_query, no agency): who asked?
            by_cli = [r for r in of_kind(resources, "audit_query") if not agents(r, IRCP)]
            assert len(by_cli) == number
            for resource in by_cli:
                (server,) = agents(resource, SERVER)
                if decrypt:  # the sealed client id names the CLI; the server did not ask
                    assert [ident(a) for a in requestors(resource)] == [(fhir.CB_CLIENT, "casebridge-cli")]
                    assert server["requestor"] is False
                else:  # plain: nothing sealed is shown, the deployment itself is the requestor
                    assert requestors(resource) == [server]

    def test_an_empty_log_is_a_valid_bundle(self, state: AppState) -> None:
        from app.audit import export as exporting

        body = b"".join(exporting.fhir_bundle(iter(()), state.audit.sealer, state.audit.origin, decrypt=True))
        bundle = json.loads(body)
        assert "entry" not in bundle and validated(bundle) == []


class TestBalpRoles:
    def test_a_disclosure_names_recipient_custodian_and_server(
        self, app_client: TestClient, auth: Auth, state: AppState, story: dict[str, str]
    ) -> None:
        rid = story["referral"]
        for decrypt in (False, True):
            resources = validated(export(app_client, auth, decrypt=decrypt))
            reads = [r for r in of_kind(resources, "disclosure")
                     if any(ident(a) == (fhir.CB_AGENCY, "city-health-centre") for a in agents(r, IRCP))]
            assert reads, "the health centre's read is a disclosure from school-north"
            read = reads[0]
            (recipient,) = agents(read, IRCP)
            assert recipient["requestor"] is True
            (custodian,) = agents(read, CUSTODIAN)
            assert ident(custodian) == (fhir.CB_AGENCY, "school-north") and custodian["requestor"] is False
            assert read["source"]["observer"]["identifier"] == {"system": fhir.CB_AGENCY, "value": "school-north"}
            assert read["source"]["site"] == state.audit.origin
            assert read["purposeOfEvent"] == [
                {"coding": [{"system": fhir.CB_PURPOSE, "code": "service_provision"}]}
            ]
            assert {"system": fhir.LIFECYCLE, "code": "disclose",
                    "display": "Disclose Record Lifecycle Event"} in read["subtype"]
            assert read["outcome"] == "0" and "outcomeDesc" not in read
            subject = read["entity"][0]
            assert subject["what"]["identifier"]["value"] == state.blind_index.digest(
                "audit-subject", _subject_of(state, rid)
            )
            assert subject["what"]["identifier"]["system"].startswith(fhir.CB_SUBJECT_INDEX + ":")
            assert subject["role"]["code"] == "1" and subject["type"]["code"] == "1"
            if decrypt:
                (client,) = agents(read, CLIENT)
                assert ident(client) == (fhir.CB_CLIENT, HEALTH) and client["requestor"] is True
                assert "city-health-centre" in client["who"]["display"]
                assert (f"{fhir.CB_RECORD}:referral", rid) in what_ids(read)
                assert not any(v in {"referral_id", "referral"} for _, v in what_ids(read))
            else:
                assert not agents(read, CLIENT)  # the client id is sealed
                assert not any(s.startswith(fhir.CB_RECORD) for s, _ in what_ids(read))
                (entry,) = [e for e in read["entity"] if e["role"]["code"] == "13"]
                assert "sealed" in entry["what"]["display"]
                assert "details_ciphertext" in {d["type"] for d in entry["detail"]}

    def test_the_person_acting_is_a_further_requestor(
        self, app_client: TestClient, auth: Auth, story: dict[str, str]
    ) -> None:
        resources = validated(export(app_client, auth, decrypt=True))
        created = [r for r in of_kind(resources, "create")
                   if (f"{fhir.CB_RECORD}:referral", story["referral"]) in what_ids(r)
                   and not any(s.endswith(":note") for s, _ in what_ids(r))]
        (create,) = created
        assert {ident(a) for a in requestors(create)} == {
            (fhir.CB_AGENCY, "school-north"), (fhir.CB_CLIENT, REFERRER), (fhir.CB_PERSON, PERSON)
        }
        (author,) = agents(create, AUT)
        assert ident(author) == (fhir.CB_AGENCY, "school-north")
        (human,) = agents(create, HUMAN)
        assert human["requestor"] is True
        note = [r for r in of_kind(resources, "create") if (f"{fhir.CB_RECORD}:note", story["note"]) in what_ids(r)]
        assert len(note) == 1 and (f"{fhir.CB_RECORD}:referral", story["referral"]) in what_ids(note[0])
        reads_by_person = [r for r in of_kind(resources, "access") if agents(r, HUMAN)]
        assert reads_by_person and ident(agents(reads_by_person[0], HUMAN)[0]) == (fhir.CB_PERSON, PERSON)

    def test_refusals_name_the_refused_caller_and_fail(
        self, app_client: TestClient, auth: Auth, story: dict[str, str]
    ) -> None:
        for decrypt in (False, True):
            denials = of_kind(validated(export(app_client, auth, decrypt=decrypt)), "denial")
            assert len(denials) >= 2
            for denial in denials:
                assert denial["outcome"] == "4" and denial["outcomeDesc"].strip()
                callers = [a for a in requestors(denial) if ident_or_none(a)[0] == fhir.CB_AGENCY]
                assert callers, denial["agent"]
                assert all(not a["requestor"] for a in agents(denial, CUSTODIAN))
            police = [d for d in denials if any(ident(a) == (fhir.CB_AGENCY, "city-community-police")
                                                for a in requestors(d))]
            assert police, "the police's refused read names the police as requestor"
            (custodian,) = agents(police[0], CUSTODIAN)
            assert ident(custodian) == (fhir.CB_AGENCY, "school-north")
            if decrypt:
                assert ident(agents(police[0], CLIENT)[0]) == (fhir.CB_CLIENT, POLICE)
                assert (f"{fhir.CB_RECORD}:referral", story["other"]) in what_ids(police[0])
                details = [d for e in police[0]["entity"] for d in e.get("detail", [])]
                assert all(d.get("valueString", "x").strip() for d in details)
            else:
                assert "sealed" in police[0]["outcomeDesc"]

    def test_emergency_and_statistics(
        self, app_client: TestClient, auth: Auth, story: dict[str, str]
    ) -> None:
        resources = validated(export(app_client, auth, decrypt=True))
        (grant,) = of_kind(resources, "emergency_grant")
        assert {(fhir.CB_RECORD + ":grant", story["grant"]), (fhir.CB_RECORD + ":referral", story["referral"])} <= (
            what_ids(grant)
        )
        assert ident(agents(grant, IRCP)[0]) == (fhir.CB_AGENCY, "city-health-centre")
        assert ident(agents(grant, CUSTODIAN)[0]) == (fhir.CB_AGENCY, "school-north")
        (read,) = of_kind(resources, "emergency_read")
        assert read["purposeOfEvent"][0]["coding"][0]["code"] == "emergency"
        assert ident(agents(read, IRCP)[0]) == (fhir.CB_AGENCY, "city-health-centre")
        (stats,) = of_kind(resources, "aggregate_disclosure")
        refused = [d for d in of_kind(resources, "denial") if agents(d, CLIENT)
                   and ident(agents(d, CLIENT)[0]) == (fhir.CB_CLIENT, NATIONAL)]
        assert len(refused) == 1 and refused[0]["purposeOfEvent"][0]["coding"][0]["code"] == "statistics"
        assert not [s for s, _ in what_ids(refused[0]) if s.startswith(fhir.CB_RECORD)]  # dimensions: no record
        assert ident(agents(stats, IRCP)[0]) == (fhir.CB_AGENCY, "national-prevention-authority")
        assert ident(agents(stats, CLIENT)[0]) == (fhir.CB_CLIENT, NATIONAL)
        assert not agents(stats, CUSTODIAN)
        assert stats["source"]["observer"]["identifier"]["system"] == fhir.CB_DEPLOYMENT


class TestEntriesWithoutACaller:
    def test_system_events_have_the_server_as_requestor(self, state: AppState) -> None:
        with transaction(state.sessions) as session:
            state.audit.append(session, event(
                event_type="key_event", actor_agency=None, recipient_agency=None, purpose=None, decision=None,
                agreement_id=None, rule_id=None, subject_id=None, details={"action": "rotate"},
            ))
            state.audit.append(session, event(
                event_type="denial", decision="deny", actor_agency=None, recipient_agency=None,
                details={"reason": "", "rule_ids": [], "fields": []},
            ))
        from app.audit import export as exporting

        for decrypt in (False, True):
            rows = exporting.iter_rows(state.sessions, 10**6)
            bundle = json.loads(b"".join(exporting.fhir_bundle(rows, state.audit.sealer, state.audit.origin,
                                                               decrypt=decrypt)))
            key_event, denial = validated(bundle)[-2:]
            (server,) = agents(key_event, SERVER)
            assert server["requestor"] is True and requestors(key_event) == [server]
            label = fhir.UNKNOWN_CLIENT if decrypt else fhir.SEALED_CLIENT
            assert [a["who"] for a in requestors(denial)] == [{"display": label}]
            assert agents(denial, SERVER)[0]["requestor"] is False
            assert denial["outcome"] == "4" and denial["outcomeDesc"].startswith("Refused")
            assert SUBJECT not in json.dumps(bundle)
            if decrypt:  # an empty reason, empty rule_ids: omitted, never an empty string
                details = [d["type"] for e in denial["entity"] for d in e.get("detail", [])]
                assert not {"rule_ids", "fields", "reason"} & set(details)


def subject_ids(state: AppState) -> list[str]:
    from sqlalchemy import select

    from app.referrals.models import Referral

    with state.sessions() as session:
        return sorted(set(session.scalars(select(Referral.subject_id))))


def _subject_of(state: AppState, rid: str) -> str:
    from app.referrals.models import Referral

    with state.sessions() as session:
        referral = session.get(Referral, rid)
        assert referral is not None
        return str(referral.subject_id)


class TestAgenciesThatDidNotAsk:
    """A transfer discloses to the receiving coordinator, and an erasure notifies partners: the
    informed agency is a recipient agent, never the requestor."""

    def entries(self, state: AppState, decrypt: bool) -> list[dict[str, Any]]:
        from app.audit import export as exporting

        rows = exporting.iter_rows(state.sessions, 10**6)
        bundle = json.loads(b"".join(exporting.fhir_bundle(rows, state.audit.sealer, state.audit.origin,
                                                           decrypt=decrypt)))
        return validated(bundle)

    def test_transfer_and_withdrawal_notice(self, state: AppState) -> None:
        with transaction(state.sessions) as session:
            state.audit.append(session, event(
                actor_agency="city-municipality", recipient_agency="town-council", purpose="transfer",
                agreement_id=None, rule_id="transfer",
                details={"client_id": COORDINATOR, "record_ids": {"referral_id": "ref_moved"}, "fields": ["status"]},
            ))
            state.audit.append(session, event(
                event_type="withdrawal_notice", actor_agency="school-north", recipient_agency="youth-ngo-bridges",
                purpose=None, decision=None, agreement_id=None, rule_id=None,
                details={"record_ids": {"referral_id": "ref_erased"}, "reason": "erasure"},
            ))
        for decrypt in (False, True):
            transfer, notice = self.entries(state, decrypt)
            (told,) = agents(transfer, IRCP)
            assert ident(told) == (fhir.CB_AGENCY, "town-council") and told["requestor"] is False
            assert ident(agents(transfer, CUSTODIAN)[0]) == (fhir.CB_AGENCY, "city-municipality")
            if decrypt:  # the coordinator who moved it asked, through its client
                assert [ident(a) for a in requestors(transfer)] == [(fhir.CB_CLIENT, COORDINATOR)]
                assert (f"{fhir.CB_RECORD}:referral", "ref_moved") in what_ids(transfer)
            else:  # who moved it is sealed: said so, rather than naming the wrong agency
                assert [a["who"] for a in requestors(transfer)] == [{"display": fhir.SEALED_CLIENT}]
            (author,) = agents(notice, AUT)
            assert ident(author) == (fhir.CB_AGENCY, "school-north") and author["requestor"] is True
            (notified,) = agents(notice, IRCP)
            assert ident(notified) == (fhir.CB_AGENCY, "youth-ngo-bridges") and notified["requestor"] is False
