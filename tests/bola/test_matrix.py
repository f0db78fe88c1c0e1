"""The BOLA matrix (issue 11): every route × every demo client × records of its own agency, a foreign
agency and a foreign network × every purpose, judged by an oracle that reads the YAML itself.

Four counts must be 0: unauthorized 2xx, fields beyond the view, missing log entries, unlogged
denials.  The summary line (size and counts) is printed for the closing note.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from bola.harness import (
    AUDIT_DATA,
    AUDIT_PLAIN,
    COVERED,
    EMERGENCY,
    LIFECYCLE,
    NO_CASE_DATA,
    R_LIST,
    R_SUMMARIES,
    TARGETS,
    Matrix,
    app_routes,
)
from bola.oracle import NOTE_CLASSIFICATIONS, Oracle
from fastapi.testclient import TestClient

from app.state import AppState

Auth = Callable[..., dict[str, str]]
CITY, TOWN = "municipality-coordinator", "town-coordinator"
SCHOOL, HEALTH, POLICE, SOCIAL = (
    "school-north-referrer", "health-centre-caseworker", "community-police-caseworker", "social-services-caseworker"
)
TOWN_SCHOOL, TOWN_SOCIAL = "town-school-referrer", "town-social-caseworker"
VIEWS = ("referral.full", "referral.case", "referral.summary", "referral.status")


def test_every_route_is_in_the_matrix(app_client: TestClient) -> None:
    """A new route that may carry case data cannot slip past the matrix."""
    routes = app_routes(app_client.app)
    unknown = sorted(routes - COVERED - NO_CASE_DATA)
    assert not unknown, f"routes the BOLA matrix does not cover (add them to tests/bola/harness.py): {unknown}"
    gone = sorted(COVERED - routes)
    assert not gone, f"the matrix covers routes the app no longer serves: {gone}"


def seed(m: Matrix) -> None:
    """Referrals in several statuses and consents, by several agencies of both networks."""
    m.create("city-sn-submitted", SCHOOL)
    rid = m.create("city-sn-triaged", SCHOOL, consent="refused")
    m.move(rid, CITY, "triaged")
    rid = m.create("city-sn-accepted", SCHOOL)
    for target in ("triaged", "accepted"):
        m.move(rid, CITY, target)
    rid = m.create("city-sn-assigned", SCHOOL)
    m.move(rid, CITY, "triaged")
    m.move(rid, CITY, "accepted")
    m.move(rid, CITY, "assigned", agencies=["city-social-services", "youth-ngo-bridges", "city-community-police"])
    for client_id, classification in ((SCHOOL, "health"), (SCHOOL, "shared"), (SOCIAL, "restricted"),
                                      (SOCIAL, "social_care"), (CITY, "police"), (POLICE, "police"),
                                      ("youth-ngo-caseworker", "shared")):
        m.add_note(rid, client_id, classification)
    m.place_hold(rid, CITY)
    rid = m.create("city-hc-intervention", HEALTH, consent="not_required", risk_level="medium")
    m.move(rid, CITY, "triaged")
    m.move(rid, CITY, "accepted")
    m.move(rid, CITY, "assigned", agencies=["city-social-services", "school-south"])
    m.move(rid, SOCIAL, "in_intervention")
    for client_id, classification in ((HEALTH, "health"), (SOCIAL, "shared"), ("school-south-referrer", "education")):
        m.add_note(rid, client_id, classification)
    rid = m.create("city-police-assigned", POLICE)
    m.move(rid, CITY, "triaged")
    m.move(rid, CITY, "accepted")
    m.move(rid, CITY, "assigned", agencies=["city-health-centre", "religious-council"])
    m.set_consent(rid, POLICE, "withdrawn")
    rid = m.create("city-ss-closed", SOCIAL)
    m.move(rid, CITY, "triaged")
    m.move(rid, CITY, "accepted")
    m.move(rid, CITY, "assigned", agencies=["youth-ngo-bridges"])
    m.move(rid, CITY, "closed")
    rid = m.create("city-ss-withdrawn", SOCIAL, consent="pending")
    m.move(rid, SOCIAL, "withdrawn")
    # The police know only the health centre's person's ID number (finding 3).
    m.create("city-police-linked", POLICE, same_person_as="city-hc-intervention", identifier_only=True)

    m.create("town-ts-submitted", TOWN_SCHOOL)
    rid = m.create("town-ts-assigned", TOWN_SCHOOL)
    m.move(rid, TOWN, "triaged")
    m.move(rid, TOWN, "accepted")
    m.move(rid, TOWN, "assigned", agencies=["town-social-services", "town-youth-club"])
    for client_id, classification in ((TOWN_SCHOOL, "shared"), (TOWN_SCHOOL, "restricted"), (TOWN_SOCIAL, "health")):
        m.add_note(rid, client_id, classification)
    m.place_hold(rid, TOWN)
    rid = m.create("town-tss-intervention", TOWN_SOCIAL, consent="not_required")
    m.move(rid, TOWN, "triaged")
    m.move(rid, TOWN, "accepted")
    m.move(rid, TOWN, "assigned", agencies=["town-school"])
    m.move(rid, TOWN_SCHOOL, "in_intervention")
    for client_id, classification in ((TOWN_SOCIAL, "social_care"), (TOWN, "shared")):
        m.add_note(rid, client_id, classification)
    # The same person, known in both networks: linked by the identifier, isolated all the same.
    rid = m.create("town-tss-linked", TOWN_SOCIAL, same_person_as="city-sn-assigned")
    m.move(rid, TOWN, "triaged")
    linked = m.recs[rid].subject_id == m.recs[m.labels["city-sn-assigned"]].subject_id
    m.observations.append(f"the person referred in both networks has {'one subject' if linked else 'two subjects'}")


def reads(m: Matrix) -> None:
    """Every read route, every client, every record.

    Purposes: every one on the referral, its notes and the lists, whose answers depend on it;
    on routes that a role or relation decides (holds, subject reports, the log) two per cell,
    rotating so each client meets every purpose there too.  Reads change nothing, so they run
    on a few threads (the log's group commit waits for company).
    """
    records = list(m.labels.values())
    n = len(m.purposes)
    jobs: list[Callable[[], None]] = []
    for i, client_id in enumerate(m.callers):
        for j, rid in enumerate(records):
            rec = m.recs[rid]
            for purpose in m.purposes:
                jobs.append(partial(m.get_referral, client_id, rec, purpose))
                jobs.append(partial(m.get_notes, client_id, rec, purpose))
            for purpose in (m.purposes[(i + j) % n], m.purposes[(i + j + n // 2) % n]):
                jobs.append(partial(m.get_holds, client_id, rec, purpose))
                jobs.append(partial(m.get_report, client_id, rec, purpose))
                jobs.append(partial(m.get_assessments, client_id, rec, purpose))
            # The widest view asked for by name (rule 6: granted only where a permit covers it).
            jobs.append(partial(m.get_referral, client_id, rec, m.purposes[2 + (i + j) % (n - 3)],
                                view=VIEWS[(i + j) % len(VIEWS)]))
        for k, purpose in enumerate(m.purposes):
            jobs.append(partial(m.list_documents, R_LIST, "/v1/referrals?limit=200", client_id, purpose))
            jobs.append(partial(m.get_events, client_id, purpose))
            jobs.append(partial(m.list_documents, R_SUMMARIES, "/v1/summaries?limit=200", client_id, purpose,
                                strip=frozenset({"view", "retain_until"})))
            jobs.append(partial(m.get_statistics, client_id, purpose))
            if k < 2:  # both networks' work lists, once each per client
                jobs.append(partial(m.get_worklist, client_id, ("demo-city", "demo-town")[k], purpose))
            if (i + k) % (n // 2) == 0:  # two purposes per client on the role-decided routes
                jobs.append(partial(m.get_admin_holds, client_id, purpose))
                jobs.append(partial(m.get_grants, client_id, purpose))
                for route, url in AUDIT_DATA.items():
                    jobs.append(partial(m.get_audit, route, url, client_id, purpose, data=True))
                for route, url in AUDIT_PLAIN.items():
                    jobs.append(partial(m.get_audit, route, url, client_id, purpose, data=False))
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def sweep(m: Matrix) -> None:
    """Every change on every record by every client; the purposes rotate across the cells.

    Changes the oracle forbids are all sent: every transition the record's status allows, and
    one it does not (rotating), so a relation check placed after the lifecycle check shows too.
    Permitted ones that would move the record on (transitions, lifting a hold) are left to the
    walks, so each record keeps its status; harmless permitted ones are sent.
    """
    records = list(m.labels.values())
    n = len(m.purposes)
    for i, client_id in enumerate(m.callers):
        for j, rid in enumerate(records):
            open_targets = LIFECYCLE.get(m.recs[rid].status, ())
            closed_targets = [t for t in TARGETS if t not in open_targets]
            targets = [*open_targets, closed_targets[(i + j) % len(closed_targets)]]
            for k, target in enumerate(targets):
                m.transition(client_id, m.recs[rid], target, m.purposes[(i + j + k) % n])
            purpose = m.purposes[(i + j) % n]
            m.consent(client_id, m.recs[rid], purpose)
            m.reassess(client_id, m.recs[rid], purpose)
            m.post_note(client_id, m.recs[rid], purpose, NOTE_CLASSIFICATIONS[(i + j) % len(NOTE_CLASSIFICATIONS)])
            m.place(client_id, m.recs[rid], purpose)
            m.lift(client_id, m.recs[rid], purpose)
            m.emergency(client_id, m.recs[rid], m.purposes[(i + j + 1) % n])


def walk(m: Matrix, rid: str, steps: list[tuple[str, str, dict[str, Any]]], offset: int) -> None:
    """Permitted changes, each replayed (same Idempotency-Key) under every purpose."""
    for index, (client_id, target, extra) in enumerate(steps):
        before = m.recs[rid]
        caller = m.caller(client_id)
        assert m.oracle.may_transition(caller, before, target), f"walk step {target} by {client_id}"
        body = {**m.transition_body(before, caller, target), **extra}
        key = f"walk-{rid}-{index}-{target}"
        purpose = m.purposes[(offset + index) % len(m.purposes)]
        response = m.transition(client_id, before, target, purpose, key=key, send_permitted=True, body=body)
        assert response is not None
        if response.status_code != 200:
            m.observations.append(f"walk of {m.label(rid)} stopped: {target} by {client_id} → "
                                  f"{response.status_code} {response.text[:200]}")
            return
        for again in m.purposes:
            m.transition(client_id, m.recs[rid], target, again, key=key, send_permitted=True, body=body,
                         replay_of=before)


def walks(m: Matrix) -> None:
    for name, owner, coordinator, agency, caseworker in (
        ("city", SCHOOL, CITY, "city-social-services", SOCIAL),
        ("town", TOWN_SCHOOL, TOWN, "town-social-services", TOWN_SOCIAL),
    ):
        rid = m.create(f"{name}-walk", owner)
        walk(m, rid, [(coordinator, "triaged", {}), (coordinator, "accepted", {}),
                      (coordinator, "assigned", {"agencies": [agency, "youth-ngo-bridges" if name == "city"
                                                              else "town-youth-club"]})], 0)
        # A note posted, then replayed under every purpose (finding 5).
        key = f"walk-note-{rid}"
        m.post_note(caseworker, m.recs[rid], m.purposes[2], "health", key=key)
        for purpose in m.purposes:
            m.post_note(caseworker, m.recs[rid], purpose, "health", key=key)
        walk(m, rid, [(caseworker, "in_intervention", {}), (coordinator, "closed", {})], 3)
        walk(m, m.create(f"{name}-walk-withdrawn", owner), [(owner, "withdrawn", {})], 5)
        walk(m, m.create(f"{name}-walk-declined", owner),
             [(coordinator, "triaged", {}), (coordinator, "declined", {})], 6)
        walk(m, m.create(f"{name}-walk-transferred", owner), [(coordinator, "transferred", {})], 1)


def creations(m: Matrix) -> None:
    """Every client creates under every purpose, then replays the same request."""
    for client_id in m.callers:
        for purpose in m.purposes:
            key = f"create-{client_id}-{purpose}"
            m.create_referral(client_id, purpose, key=key, replay=False)
            m.create_referral(client_id, purpose, key=key, replay=True)
        for k, network in enumerate(sorted(m.oracle.networks)):  # into a named network, own or not
            m.create_referral(client_id, m.purposes[k], key=f"create-{client_id}-into-{network}", replay=False,
                              network=network)


def emergencies(m: Matrix) -> None:
    """Emergency reads once grants exist; grant lists and reviews."""
    records = [rid for label, rid in m.labels.items() if "walk" not in label]
    for client_id in m.callers:
        for rid in records:
            m.get_referral(client_id, m.recs[rid], EMERGENCY)
        for purpose in m.purposes:
            m.get_grants(client_id, purpose)
    auditors = [c for c, v in m.callers.items() if "auditor" in v.roles]
    others = [c for c in m.callers if c not in auditors]
    n = len(m.purposes)

    def reviewable(auditor: str, yes: bool) -> list[str]:
        return [g for g in m.grant_ids
                if m.oracle.may_review(m.caller(auditor), m.recs[m.grant_referrals[g]]) is yes]

    for i, client_id in enumerate(others):
        m.review(client_id, ([*m.grant_ids, "emg_none"])[0], m.purposes[i % n])
    flag = None
    for i, client_id in enumerate(auditors):
        foreign = reviewable(client_id, False)
        if foreign:  # a grant of a network the auditor is no party to
            m.review(client_id, foreign[0], m.purposes[i % n])
        mine = [*reviewable(client_id, True), "emg_none", "emg_none"]
        m.review(client_id, mine[0], m.purposes[i % n])
        flag = m.review(client_id, mine[1], m.purposes[(i + 1) % n], "unjustified") or flag
    for i, client_id in enumerate(others + auditors):
        m.clear_flag(client_id, flag or "flag_none", m.purposes[i % n])
    for rid, agency in m.revoked:  # the holder of a revoked grant reads nothing under it
        for client_id in [c for c, v in m.callers.items() if v.agency == agency]:
            m.get_referral(client_id, m.recs[rid], EMERGENCY)


def erasures(m: Matrix) -> None:
    """Throwaway people in each network; only the strictest reading may erase them."""
    throwaways = {"city": ("school-south-referrer", "city-erase"), "town": (TOWN_SOCIAL, "town-erase")}
    for owner, label in throwaways.values():
        m.create(label, owner)
    for i, client_id in enumerate(m.callers):
        for owner, label in throwaways.values():
            if m.erase(client_id, m.recs[m.labels[label]], m.purposes[i % len(m.purposes)]):
                m.create(label, owner)  # erased by someone who should not: a fresh person for the rest
    for _, label in throwaways.values():
        rec = m.recs[m.labels[label]]
        subject_recs = [r for r in m.recs.values() if r.subject_id == rec.subject_id]
        eraser = next(c for c, v in m.callers.items() if m.oracle.may_erase(v, subject_recs))
        m.erase(eraser, rec, m.purposes[3], send_permitted=True)


def admin_and_holds(m: Matrix) -> None:
    """Agency-wide holds (admin only), and the referral holds the sweep left to lift."""
    admin = next(c for c, v in m.callers.items() if "admin" in v.roles)
    held = None
    for i, client_id in enumerate(m.callers):
        hold_id = m.admin_hold(client_id, "religious-council", m.purposes[i % len(m.purposes)])
        held = held or hold_id
    if held is None:
        held = "hold_none"
    for i, client_id in enumerate([c for c in m.callers if c != admin] + [admin]):
        m.admin_lift(client_id, held, m.purposes[i % len(m.purposes)])
    for rid, holds in list(m.holds.items()):
        if holds:
            rec = m.recs[rid]
            lifter = next((c for c, v in m.callers.items() if m.oracle.may_hold(v, rec)), None)
            if lifter:
                m.lift(lifter, rec, m.purposes[2], send_permitted=True)


def test_bola_matrix(
    app_client: TestClient, state: AppState, demo: dict[str, dict[str, Any]], auth: Auth, database_url: str,
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None],
) -> None:
    oracle = Oracle.load(state.settings.policies_dir, state.clock().date())
    m = Matrix(app_client, state, oracle, demo, auth)
    for client_id in m.callers:  # tokens first: the threads share them
        auth(client_id)
    seed(m)
    m.seeded = sorted(m.labels)
    reads(m)
    sweep(m)
    walks(m)
    creations(m)
    emergencies(m)
    erasures(m)
    admin_and_holds(m)
    m.check_log()

    database = database_url.split(":", 1)[0].split("+", 1)[0]
    counts = m.counts()
    summary = m.summary(database)
    record_property("bola_matrix", {"requests": len(m.cells), "routes": len(m.sent), **counts})
    if os.environ.get("CASEBRIDGE_BOLA_REPORT"):
        m.write_failures(os.environ["CASEBRIDGE_BOLA_REPORT"])
    with capsys.disabled():
        print("\n" + summary)
        failures = m.failures()
        if failures:
            print(failures)
    assert not (COVERED - set(m.sent)), f"routes never exercised: {sorted(COVERED - set(m.sent))}"
    assert counts == dict.fromkeys(counts, 0), f"{summary}\n{m.failures()}"
