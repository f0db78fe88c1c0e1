"""The audit API over HTTP: checkpoints, keys, leaves, proofs, queries, exports, reports."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from audit_support import OTHER_SUBJECT, SUBJECT, event, fill, load_reference
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.audit.leaf import parse_leaf
from app.audit.merkle import leaf_hash
from app.audit.models import AuditEntry
from app.audit.note import parse_verifier_key, verify_checkpoint
from app.db import transaction
from app.state import AppState, DbSession, State

ref = load_reference()
Auth = Callable[..., dict[str, str]]
AUDITOR = "independent-auditor"
COORDINATOR = "municipality-coordinator"
REFERRER = "school-north-referrer"
SUBJECT_ACCESS = {"X-Purpose": "subject_access"}


@pytest.fixture
def log(state: AppState, demo: dict[str, Any]) -> AppState:
    """A log of 13 entries about two subjects, with denials and several agencies."""
    fill(state, 5)
    fill(
        state,
        2,
        recipient_agency="youth-ngo-bridges",
        rule_id="assigned-agency-case",
        purpose="service_provision",
        details={
            "fields": ["concerns"],
            "legal_basis": "consent",
            "retention": "P90D",
            "record_ids": ["ref_0009"],
        },
    )
    fill(
        state,
        3,
        subject_id=OTHER_SUBJECT,
        actor_agency="school-north",
        recipient_agency="school-north",
        event_type="access",
    )
    fill(
        state,
        2,
        event_type="denial",
        decision="deny",
        recipient_agency="city-community-police",
        rule_id="no-health-notes-to-police",
        details={"reason": "deny rule", "fields": []},
    )
    fill(
        state,
        1,
        event_type="key_event",
        actor_agency=None,
        recipient_agency=None,
        purpose=None,
        decision=None,
        agreement_id=None,
        rule_id=None,
        subject_id=None,
        details={"key_id": "aud-2", "action": "rotate"},
    )
    return state


def checkpoint(client: TestClient, auth: Auth) -> tuple[str, Any]:
    note = client.get("/v1/audit/checkpoint", headers=auth(AUDITOR)).text
    keys = client.get("/v1/audit/verifier-key", headers=auth(AUDITOR)).text.splitlines()
    return note, verify_checkpoint(note, keys)


def audit_queries(state: AppState) -> list[AuditEntry]:
    with state.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.event_type == "audit_query")
                .order_by(AuditEntry.seq)
            )
        )


class TestAccess:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/audit/checkpoint",
            "/v1/audit/verifier-key",
            "/v1/audit/entries/0/leaf",
            "/v1/audit/proofs/inclusion?leaf_index=0&tree_size=1",
            "/v1/audit/proofs/consistency?first=1&second=2",
            "/v1/audit/entries",
            "/v1/audit/export",
        ],
    )
    def test_only_auditors(
        self, app_client: TestClient, auth: Auth, log: AppState, path: str
    ) -> None:
        assert app_client.get(path).status_code == 401
        for client_id in (COORDINATOR, REFERRER, "municipality-operator"):
            response = app_client.get(path, headers=auth(client_id))
            assert response.status_code == 403, (client_id, response.text)
            assert response.headers["content-type"] == "application/problem+json"

    def test_subject_reports_for_auditors_and_coordinators_only(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        path = f"/v1/subjects/{SUBJECT}/disclosures"
        assert app_client.get(path).status_code == 401
        assert app_client.get(path, headers=auth(REFERRER, **SUBJECT_ACCESS)).status_code == 403
        assert app_client.get(path, headers=auth("youth-ngo-reader", **SUBJECT_ACCESS)).status_code == 403
        assert app_client.get(path, headers=auth(AUDITOR, **SUBJECT_ACCESS)).status_code == 200
        # This person has no referral, so no network: a coordinator answers only for its
        # network's people (tests/audit/test_subject_report_purpose.py).
        assert app_client.get(path, headers=auth(COORDINATOR, **SUBJECT_ACCESS)).status_code == 403


class TestCheckpoint:
    def test_text_checkpoint_signed_by_the_published_key(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        response = app_client.get("/v1/audit/checkpoint", headers=auth(AUDITOR))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        _, parsed = checkpoint(app_client, auth)
        assert parsed.origin == "casebridge.example/disclosure-log"
        assert parsed.tree_size == 13

    def test_signs_a_fresh_one_when_the_log_grew(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        first, _ = checkpoint(app_client, auth)
        again, _ = checkpoint(app_client, auth)
        assert again == first
        fill(log, 2)
        _, grown = checkpoint(app_client, auth)
        assert grown.tree_size == 15


class TestVerifierKey:
    def test_one_c2sp_key_per_line(self, app_client: TestClient, auth: Auth, log: AppState) -> None:
        response = app_client.get("/v1/audit/verifier-key", headers=auth(AUDITOR))
        assert response.headers["content-type"].startswith("text/plain")
        (line,) = response.text.splitlines()
        name, key_id, _ = parse_verifier_key(line)
        assert name == "casebridge.example/disclosure-log" and len(key_id) == 4


class TestLeaf:
    def test_exact_leaf_bytes(self, app_client: TestClient, auth: Auth, log: AppState) -> None:
        body = app_client.get("/v1/audit/entries/3/leaf", headers=auth(AUDITOR)).json()
        leaf = base64.b64decode(body["leaf"])
        assert body["leaf_index"] == 3
        with log.sessions() as session:
            stored = session.get(AuditEntry, 3)
            assert stored is not None and leaf_hash(leaf) == stored.leaf_hash
        assert base64.b64decode(body["leaf_hash"]) == leaf_hash(leaf)
        entry = parse_leaf(leaf)
        assert (entry.seq, entry.event_type, entry.recipient_agency) == (
            3,
            "disclosure",
            "city-municipality",
        )

    def test_beyond_the_log_is_404(self, app_client: TestClient, auth: Auth, log: AppState) -> None:
        response = app_client.get("/v1/audit/entries/13/leaf", headers=auth(AUDITOR))
        assert response.status_code == 404
        assert app_client.get("/v1/audit/entries/-1/leaf", headers=auth(AUDITOR)).status_code == 422

    def test_reading_a_leaf_is_logged(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        app_client.get("/v1/audit/entries/2/leaf", headers=auth(AUDITOR))
        (query,) = audit_queries(log)
        assert query.actor_agency == "independent-auditor"


class TestInclusionProof:
    def test_every_leaf_proves_against_the_checkpoint(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        _, signed = checkpoint(app_client, auth)
        for index in range(signed.tree_size):
            leaf = base64.b64decode(
                app_client.get(f"/v1/audit/entries/{index}/leaf", headers=auth(AUDITOR)).json()[
                    "leaf"
                ]
            )
            response = app_client.get(
                "/v1/audit/proofs/inclusion",
                params={"leaf_index": index, "tree_size": signed.tree_size},
                headers=auth(AUDITOR),
            )
            assert response.status_code == 200
            proof = [base64.b64decode(h) for h in response.json()["hashes"]]
            assert ref.verify_inclusion(
                index, signed.tree_size, leaf_hash(leaf), proof, signed.root_hash
            ), index

    def test_proofs_in_older_trees(self, app_client: TestClient, auth: Auth, log: AppState) -> None:
        _, old = checkpoint(app_client, auth)
        fill(log, 9)
        for index in (0, 6, 12):
            leaf = base64.b64decode(
                app_client.get(f"/v1/audit/entries/{index}/leaf", headers=auth(AUDITOR)).json()[
                    "leaf"
                ]
            )
            hashes = app_client.get(
                "/v1/audit/proofs/inclusion",
                params={"leaf_index": index, "tree_size": 13},
                headers=auth(AUDITOR),
            ).json()["hashes"]
            proof = [base64.b64decode(h) for h in hashes]
            assert ref.verify_inclusion(index, 13, leaf_hash(leaf), proof, old.root_hash)

    @pytest.mark.parametrize(
        ("params", "status"),
        [
            ({"leaf_index": 13, "tree_size": 13}, 400),
            ({"leaf_index": 0, "tree_size": 14}, 400),
            ({"leaf_index": 5, "tree_size": 3}, 400),
            ({"leaf_index": -1, "tree_size": 3}, 422),
            ({"leaf_index": 0, "tree_size": 0}, 422),
            ({"leaf_index": "x", "tree_size": 3}, 422),
            ({"tree_size": 3}, 422),
        ],
    )
    def test_bad_ranges_are_problems(
        self, app_client: TestClient, auth: Auth, log: AppState, params: dict, status: int
    ) -> None:
        response = app_client.get(
            "/v1/audit/proofs/inclusion", params=params, headers=auth(AUDITOR)
        )
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"


class TestConsistencyProof:
    def test_later_checkpoints_extend_earlier_ones(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        sizes_roots = []
        _, signed = checkpoint(app_client, auth)
        sizes_roots.append((signed.tree_size, signed.root_hash))
        for grow in (1, 4, 16):
            fill(log, grow)
            _, signed = checkpoint(app_client, auth)
            sizes_roots.append((signed.tree_size, signed.root_hash))
        for i, (first, first_root) in enumerate(sizes_roots):
            for second, second_root in sizes_roots[i:]:
                response = app_client.get(
                    "/v1/audit/proofs/consistency",
                    params={"first": first, "second": second},
                    headers=auth(AUDITOR),
                )
                assert response.status_code == 200
                proof = [base64.b64decode(h) for h in response.json()["hashes"]]
                if first == second:
                    assert proof == []
                    continue
                assert ref.verify_consistency(first, second, first_root, second_root, proof)

    @pytest.mark.parametrize(
        ("params", "status"),
        [
            ({"first": 5, "second": 4}, 400),
            ({"first": 1, "second": 14}, 400),
            ({"first": 0, "second": 4}, 422),
            ({"first": 1}, 422),
        ],
    )
    def test_bad_ranges_are_problems(
        self, app_client: TestClient, auth: Auth, log: AppState, params: dict, status: int
    ) -> None:
        response = app_client.get(
            "/v1/audit/proofs/consistency", params=params, headers=auth(AUDITOR)
        )
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"


class TestEntries:
    def get(self, client: TestClient, auth: Auth, **params: Any) -> dict[str, Any]:
        response = client.get("/v1/audit/entries", params=params, headers=auth(AUDITOR))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def seqs(self, client: TestClient, auth: Auth, **params: Any) -> list[int]:
        return [e["seq"] for e in self.get(client, auth, limit=200, **params)["items"]]

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({}, list(range(13))),
            ({"subject_id": SUBJECT}, [0, 1, 2, 3, 4, 5, 6, 10, 11]),
            ({"subject_id": OTHER_SUBJECT}, [7, 8, 9]),
            ({"subject_id": "sub_nobody"}, []),
            ({"actor_agency": "school-north"}, [7, 8, 9]),
            ({"recipient_agency": "youth-ngo-bridges"}, [5, 6]),
            ({"purpose": "service_provision"}, [5, 6]),
            ({"event_type": "denial"}, [10, 11]),
            ({"decision": "deny"}, [10, 11]),
            ({"agreement_id": "demo-city", "event_type": "access"}, [7, 8, 9]),
            ({"rule_id": "assigned-agency-case"}, [5, 6]),
            ({"event_type": "key_event"}, [12]),
        ],
    )
    def test_filters(
        self, app_client: TestClient, auth: Auth, log: AppState, params: dict, expected: list[int]
    ) -> None:
        assert self.seqs(app_client, auth, **params) == expected

    def test_time_range(self, app_client: TestClient, auth: Auth, log: AppState) -> None:
        items = self.get(app_client, auth, limit=200)["items"]
        middle = items[6]["time"]
        since = [s for s in self.seqs(app_client, auth, since=middle) if s < 13]  # not queries
        until = self.seqs(app_client, auth, until=middle)
        assert since[0] <= 6 and sorted(since + until) == list(range(13))
        assert self.seqs(app_client, auth, since="2999-01-01T00:00:00") == []

    def test_pages_follow_the_cursor_both_ways(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        for order, expected in (("asc", list(range(13))), ("desc", list(range(12, -1, -1)))):
            seen, cursor = [], None
            while True:
                params: dict[str, Any] = {"limit": 5, "order": order}
                if cursor:
                    params["cursor"] = cursor
                page = self.get(app_client, auth, **params)
                seen += [e["seq"] for e in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert [s for s in seen if s < 13] == expected  # later seqs: these queries

    def test_details_are_decrypted_for_auditors(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        entry = self.get(app_client, auth, event_type="denial")["items"][0]
        assert entry["details"]["reason"] == "deny rule"
        assert entry["decision"] == "deny"
        assert "subject_id" not in entry and SUBJECT not in json.dumps(entry)

    def test_unreadable_details_are_null_not_an_error(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        from app.crypto.keyring import KeyKind

        lost = log.keyring.active(KeyKind.audit)
        log.keyring.rotate(KeyKind.audit)
        log.keyring._entries = tuple(e for e in log.keyring.entries if e.id != lost.id)
        body = self.get(app_client, auth, event_type="access")
        assert [e["details"] for e in body["items"]] == [None, None, None]

    @pytest.mark.parametrize(
        "params",
        [
            {"cursor": "not-a-cursor!"},
            {"cursor": "eyJzZXEiOiAieCJ9"},
            {"event_type": "gossip"},
            {"decision": "maybe"},
            {"limit": 0},
            {"limit": 201},
            {"order": "sideways"},
            {"since": "yesterday"},
        ],
    )
    def test_bad_queries_are_problems(
        self, app_client: TestClient, auth: Auth, log: AppState, params: dict
    ) -> None:
        response = app_client.get("/v1/audit/entries", params=params, headers=auth(AUDITOR))
        assert response.status_code in (400, 422)
        assert response.headers["content-type"] == "application/problem+json"

    def test_each_query_is_logged_without_the_subject_id(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        self.get(app_client, auth, subject_id=SUBJECT, purpose="safeguarding_assessment")
        (query,) = audit_queries(log)
        assert query.subject_index == log.blind_index.digest("audit-subject", SUBJECT)
        assert query.actor_agency == "independent-auditor"
        body = self.get(app_client, auth, event_type="audit_query")
        details = body["items"][0]["details"]
        assert details["query"] == "entries"
        assert details["client_id"] == AUDITOR
        assert details["filters"] == {"purpose": "safeguarding_assessment", "subject": True}
        assert SUBJECT not in json.dumps(details)
        assert len(details["record_ids"]) == 7


class TestSubjectDisclosures:
    def test_every_recipient_with_dates_purposes_basis_and_retention(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        response = app_client.get(
            f"/v1/subjects/{SUBJECT}/disclosures", headers=auth(AUDITOR, **SUBJECT_ACCESS)
        )
        report = response.json()
        assert report["subject_id"] == SUBJECT
        by_agency = {r["agency"]: r for r in report["recipients"]}
        assert set(by_agency) == {"city-municipality", "youth-ngo-bridges"}  # denials excluded
        coordinator = by_agency["city-municipality"]
        assert coordinator["disclosures"] == 5
        assert coordinator["purposes"] == ["safeguarding_assessment"]
        assert coordinator["legal_bases"] == ["public_task"]
        assert coordinator["retention"] == ["P6Y after closed"]
        assert coordinator["first"] <= coordinator["last"]
        assert by_agency["youth-ngo-bridges"]["legal_bases"] == ["consent"]
        assert [i["seq"] for i in report["items"]] == [0, 1, 2, 3, 4, 5, 6]
        assert report["items"][5]["fields"] == ["concerns"]
        assert "justification" not in json.dumps(report)

    def test_accesses_and_other_subjects_are_not_disclosures(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        report = app_client.get(
            f"/v1/subjects/{OTHER_SUBJECT}/disclosures", headers=auth(AUDITOR, **SUBJECT_ACCESS)
        ).json()
        assert report["recipients"] == [] and report["items"] == []

    def test_pages(self, app_client: TestClient, auth: Auth, log: AppState) -> None:
        path = f"/v1/subjects/{SUBJECT}/disclosures"
        first = app_client.get(
            path, params={"limit": 4}, headers=auth(AUDITOR, **SUBJECT_ACCESS)
        ).json()
        second = app_client.get(
            path,
            params={"limit": 4, "cursor": first["next_cursor"]},
            headers=auth(AUDITOR, **SUBJECT_ACCESS),
        ).json()
        assert [i["seq"] for i in first["items"] + second["items"]] == list(range(7))
        assert second["next_cursor"] is None
        assert len(second["recipients"]) == 2

    def test_the_report_is_logged(self, app_client: TestClient, auth: Auth, log: AppState) -> None:
        app_client.get(
            f"/v1/subjects/{SUBJECT}/disclosures", headers=auth(AUDITOR, **SUBJECT_ACCESS)
        )
        (query,) = audit_queries(log)
        assert query.actor_agency == "independent-auditor"
        assert query.purpose == "subject_access"
        assert query.subject_index == log.blind_index.digest("audit-subject", SUBJECT)


class TestExport:
    def test_json_lines_hold_every_entry_and_its_leaf(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        response = app_client.get("/v1/audit/export", headers=auth(AUDITOR))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert response.headers["x-tree-size"] == "13"
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert [r["seq"] for r in lines] == list(range(13))
        for record in lines:
            leaf = base64.b64decode(record["leaf"])
            assert base64.b64encode(leaf_hash(leaf)).decode() == record["leaf_hash"]
            assert parse_leaf(leaf).purpose == record["purpose"]
            assert "details_decrypted" not in record
        assert "weekly case review" not in response.text
        (query,) = audit_queries(log)  # the export itself, after the exported range
        assert query.seq == 13

    def test_decrypted_export(self, app_client: TestClient, auth: Auth, log: AppState) -> None:
        response = app_client.get(
            "/v1/audit/export", params={"decrypt": True}, headers=auth(AUDITOR)
        )
        first = json.loads(response.text.splitlines()[0])
        assert first["details_decrypted"]["justification"] == "weekly case review"

    def test_fhir_bundle_of_audit_events(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        response = app_client.get(
            "/v1/audit/export", params={"format": "fhir", "decrypt": True}, headers=auth(AUDITOR)
        )
        assert response.headers["content-type"].startswith("application/fhir+json")
        bundle = response.json()
        assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
        resources = [e["resource"] for e in bundle["entry"]]
        assert len(resources) == 13 and {r["resourceType"] for r in resources} == {"AuditEvent"}
        assert all(e["fullUrl"] == f"urn:uuid:{e['resource']['id']}" for e in bundle["entry"])
        disclosure, denial, key_event = resources[0], resources[10], resources[12]
        assert disclosure["type"]["code"] == "110106" and disclosure["action"] == "R"
        assert disclosure["outcome"] == "0"
        assert disclosure["purposeOfEvent"][0]["coding"][0]["code"] == "safeguarding_assessment"
        agents = {a["type"]["coding"][0]["code"]: a for a in disclosure["agent"]}
        # BALP: the requestor is the recipient (its agency and its API client), not the discloser
        assert agents["IRCP"]["who"]["identifier"]["value"] == "city-municipality"
        assert agents["IRCP"]["requestor"] is True
        assert agents["110153"]["requestor"] is True
        assert agents["110153"]["who"]["identifier"]["value"] == "municipality-coordinator"
        assert agents["159541003"]["requestor"] is False  # the custodian: the disclosing agency
        assert agents["110150"]["who"]["identifier"]["value"] == log.audit.origin  # the server
        subject = disclosure["entity"][0]
        assert subject["what"]["identifier"]["value"] == log.blind_index.digest(
            "audit-subject", SUBJECT
        )
        assert SUBJECT not in response.text
        data = disclosure["entity"][1]
        assert data["what"]["identifier"]["value"] == "ref_0000"
        entry = disclosure["entity"][-1]  # the log entry itself carries the details
        assert {"type": "legal_basis", "valueString": "public_task"} in entry["detail"]
        assert denial["outcome"] == "4" and denial["outcomeDesc"] == "deny rule"
        denial_requestors = [a for a in denial["agent"] if a["requestor"]]
        assert {"system": "urn:casebridge:agency", "value": "city-community-police"} in [
            a["who"].get("identifier") for a in denial_requestors
        ]
        assert key_event["type"]["code"] == "110113"
        (server,) = key_event["agent"]  # a system event: the service itself acted
        assert server["who"]["display"] == f"CaseBridge {log.audit.origin}"
        assert server["requestor"] is True

    def test_fhir_without_decrypt_carries_the_ciphertext(
        self, app_client: TestClient, auth: Auth, log: AppState
    ) -> None:
        bundle = app_client.get(
            "/v1/audit/export", params={"format": "fhir"}, headers=auth(AUDITOR)
        ).json()
        details = bundle["entry"][0]["resource"]["entity"][1]["detail"]
        assert "details_ciphertext" in {d["type"] for d in details}
        assert "weekly case review" not in json.dumps(bundle)


class TestFailClosed:
    def break_the_log(self, state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
        def broken(*_: object) -> list[int]:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))

        monkeypatch.setattr(state.audit, "_write", broken)

    @pytest.mark.parametrize(
        "path",
        [
            "/v1/audit/entries",
            "/v1/audit/export",
            "/v1/audit/export?format=fhir",
            "/v1/audit/entries/0/leaf",
            f"/v1/subjects/{SUBJECT}/disclosures",
        ],
    )
    def test_auditor_reads_fail_with_503_and_disclose_nothing(
        self,
        app_client: TestClient,
        auth: Auth,
        log: AppState,
        monkeypatch: pytest.MonkeyPatch,
        path: str,
    ) -> None:
        headers = auth(AUDITOR, **SUBJECT_ACCESS)  # the report states its purpose
        self.break_the_log(log, monkeypatch)
        response = app_client.get(path, headers=headers)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == (
            "The disclosure log cannot be written; nothing was disclosed."
        )
        for marker in ("city-municipality", "weekly", '"leaf"', "AuditEvent", "recipients"):
            assert marker not in response.text

    def test_a_read_returns_only_after_its_entry_is_durable(
        self,
        app_client: TestClient,
        auth: Auth,
        log: AppState,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.add_case_read_route(app_client)
        response = app_client.get("/test-case-read")
        assert response.json() == {"record": "ref_0001", "seq": 13}
        with log.sessions() as session:  # another connection sees it: it was committed
            assert session.get(AuditEntry, 13) is not None
        self.break_the_log(log, monkeypatch)
        response = app_client.get("/test-case-read")
        assert response.status_code == 503 and "ref_0001" not in response.text

    def test_a_commit_that_fails_discloses_nothing(
        self, app_client: TestClient, log: AppState, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from sqlalchemy.orm import Session

        self.add_case_read_route(app_client)

        def failing_commit(self: Session) -> None:
            raise OperationalError("COMMIT", {}, Exception("disk full"))

        monkeypatch.setattr(Session, "commit", failing_commit)
        response = app_client.get("/test-case-read")
        assert response.status_code >= 500 and "ref_0001" not in response.text
        monkeypatch.undo()
        with log.sessions() as session:
            assert session.get(AuditEntry, 13) is None

    @staticmethod
    def add_case_read_route(client: TestClient) -> None:
        """A stand-in for a case read: log the disclosure, then return the record."""
        app = client.app

        @app.get("/test-case-read")  # type: ignore[attr-defined,misc]
        def case_read(session: DbSession, state: State) -> dict[str, Any]:
            seq = state.audit.append(session, event())
            return {"record": "ref_0001", "seq": seq}


def test_groups_of_appends_in_one_request(app_client: TestClient, log: AppState) -> None:
    with transaction(log.sessions) as session:
        assert log.audit.append_many(session, [event(), event()]) == [13, 14]
