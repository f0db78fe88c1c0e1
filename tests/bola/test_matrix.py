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
    NONE,
    R_LIST,
    R_SUMMARIES,
    TARGETS,
    Matrix,
    app_routes,
)
from bola.oracle import CONFERENCE, NOTE_CLASSIFICATIONS, Meeting, Oracle
from fastapi.testclient import TestClient
from httpx import Response

from app.state import AppState

Auth = Callable[..., dict[str, str]]
CITY, TOWN = "municipality-coordinator", "town-coordinator"
SCHOOL, HEALTH, POLICE, SOCIAL = (
    "school-north-referrer", "health-centre-caseworker", "community-police-caseworker", "social-services-caseworker"
)
TOWN_SCHOOL, TOWN_SOCIAL = "town-school-referrer", "town-social-caseworker"
VIEWS = ("referral.full", "referral.case", "referral.summary", "referral.status")
# A referral of each network on no seeded agenda: what a caller tries to put on one.
SPARE = {"demo-city": "city-sn-submitted", "demo-town": "town-ts-submitted"}
SEEDED_MEETINGS = ("city-conference", "city-conference-closed", "town-conference")
FOREIGN_AGENCY = {"demo-city": "town-social-services", "demo-town": "city-social-services"}


def test_every_route_is_in_the_matrix(app_client: TestClient) -> None:
    """A new route that may carry case data cannot slip past the matrix."""
    # The console's pages are not doors of their own: each reads and writes through the API's routes as the
    # signed-in person, so the matrix over those routes is the matrix of the pages too. That every console
    # route is a page of that kind, and imports nothing that reads case data, is
    # tests/console/test_console_routes.py's.
    routes = {r for r in app_routes(app_client.app) if r != "GET /" and " /console/" not in r}
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
    seed_conference(m)


def seed_conference(m: Matrix) -> None:
    """Each network's chair schedules a meeting a week ahead, its items inviting different agencies (a
    statutory partner, police and a partner on a consenting person's case, police on a case whose consent
    was withdrawn, a partner reader's agency); minutes without a decision, actions by the chair, the
    referrer and an assignee.  A second city meeting is minuted and closed.  No record's status moves."""
    city = m.seed_meeting("city-conference", CITY, "demo-city", [
        ("city-sn-triaged", ["city-social-services"]),
        ("city-sn-assigned", ["youth-ngo-bridges", "city-community-police"]),
        ("city-hc-intervention", ["city-health-centre", "religious-council"]),
        ("city-police-assigned", ["city-community-police", "city-social-services"]),
    ])
    m.seed_minutes(city, 1, CITY)
    m.seed_action("city-sn-assigned", CITY, "city-social-services", city, 2)
    m.seed_action("city-sn-assigned", SCHOOL, "youth-ngo-bridges")
    # The police own an action on a case nothing grants them: it is theirs, the case is not.
    m.seed_action("city-hc-intervention", SOCIAL, "city-community-police")
    closed = m.seed_meeting("city-conference-closed", CITY, "demo-city", [
        ("city-ss-closed", ["youth-ngo-bridges", "city-social-services"]),
        ("city-sn-assigned", ["city-community-police"]),
    ])
    m.seed_minutes(closed, 1, CITY)
    m.seed_close(closed, CITY)
    town = m.seed_meeting("town-conference", TOWN, "demo-town", [
        ("town-ts-assigned", ["town-school", "town-social-services"]),
        ("town-tss-intervention", ["town-youth-club"]),
    ])
    m.seed_minutes(town, 2, TOWN)
    m.seed_action("town-ts-assigned", TOWN, "town-social-services", town, 1)


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
    jobs += conference_reads(m)
    run(jobs)


def run(jobs: list[Callable[[], None]]) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def history_purposes(m: Matrix, client_id: str, rid: str, k: int) -> list[str]:
    """Every purpose that grants the client the record, and three rotating (so each meets every one)."""
    n = len(m.purposes)
    caller, rec = m.caller(client_id), m.recs[rid]
    granted = [p for p in m.purposes if m.history_purpose(p) and m.oracle.referral_bound(caller, rec, p)]
    rotating = [m.purposes[(k + step) % n] for step in (0, n // 3, 2 * n // 3)]
    return list(dict.fromkeys([*granted, *rotating]))


def conference_reads(m: Matrix, meetings: list[Meeting] | None = None,
                     records: list[str] | None = None) -> list[Callable[[], None]]:
    """The case conference's reads: each meeting and each item's referral under every purpose (and a
    named view), the networks' meeting lists, the records' minutes and actions, each client's actions."""
    meetings = [m.meetings[mid] for mid in m.meetings] if meetings is None else meetings
    records = list(m.labels.values()) if records is None else records
    jobs: list[Callable[[], None]] = []
    for i, client_id in enumerate(m.callers):
        for meeting in meetings:
            for purpose in m.purposes:
                jobs.append(partial(m.get_meeting, client_id, meeting, purpose))
                for number in meeting.items:
                    jobs.append(partial(m.get_agenda_referral, client_id, meeting, number, purpose))
            for k, number in enumerate(meeting.items):
                jobs.append(partial(m.get_agenda_referral, client_id, meeting, number, CONFERENCE,
                                    view=VIEWS[(i + k) % len(VIEWS)]))
        for network in sorted(m.oracle.networks):
            jobs.append(partial(m.list_meetings, client_id, network))
        for j, rid in enumerate(records):
            for purpose in history_purposes(m, client_id, rid, i + j):
                jobs.append(partial(m.list_minutes, client_id, m.recs[rid], purpose))
                jobs.append(partial(m.list_referral_actions, client_id, m.recs[rid], purpose))
        for k, purpose in enumerate(m.purposes):
            jobs.append(partial(m.list_my_actions, client_id, purpose, ("all", "due", "overdue")[k % 3]))
    return jobs


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


def conference_sweep(m: Matrix) -> None:
    """Every chair's write on every seeded meeting by every client, and every action by every client
    on every record; the purposes rotate.  A chair's writes that would change the seeded meetings
    are left to the conference walks; scheduling (a new meeting), setting an action and restating an
    action's status are harmless and sent."""
    meetings = [m.meetings[mid] for mid, label in m.meeting_labels.items() if label in SEEDED_MEETINGS]
    actions = list(m.actions.values())
    records = [m.labels[label] for label in m.seeded]
    n = len(m.purposes)
    for i, client_id in enumerate(m.callers):
        agency = m.caller(client_id).agency
        # A meeting inviting itself to a case, in each network the demo fixture holds cases of (the training
        # network, seeded on a first start only, has none here; every other walk covers it).
        for k, network in enumerate(sorted(SPARE)):
            m.schedule(client_id, network, m.purposes[(i + k) % n], [(m.labels[SPARE[network]], [agency])])
            # Another network's referral on the agenda, or another network's agency invited (the chair too).
            elsewhere = next(o for o in sorted(SPARE) if o != network)
            m.schedule(client_id, network, m.purposes[(i + k + 1) % n], [(m.labels[SPARE[elsewhere]], [agency])])
            m.schedule(client_id, network, m.purposes[(i + k + 2) % n],
                       [(m.labels[SPARE[network]], [FOREIGN_AGENCY[network]])])
        for j, meeting in enumerate(meetings):
            purpose = [m.purposes[(i + j + step) % n] for step in range(5)]
            m.add_item(client_id, meeting, m.labels[SPARE[meeting.network]], [agency], purpose[0])
            m.edit_item(client_id, meeting, 1, {"invited": [agency], "attended": [agency]}, purpose[1])
            m.remove_item(client_id, meeting, 1, purpose[2])
            m.record_minutes(client_id, meeting, 1, purpose[3], decision="escalate")
            m.close_meeting(client_id, meeting, purpose[4])
            elsewhere = next(o for o in sorted(SPARE) if o != meeting.network)
            m.add_item(client_id, meeting, m.labels[SPARE[elsewhere]], [agency], purpose[1])
            m.edit_item(client_id, meeting, 1, {"invited": [FOREIGN_AGENCY[meeting.network]]}, purpose[2])
        for j, rid in enumerate(records):
            m.create_action(client_id, m.recs[rid], m.purposes[(i + j) % n])
            if j % 4 == i % 4:  # an action for an agency of the other network
                m.create_action(client_id, m.recs[rid], m.purposes[(i + j + 1) % n],
                                owner=FOREIGN_AGENCY[m.recs[rid].network])
        for j, action in enumerate(actions):
            m.update_action(client_id, action, "open", m.purposes[(i + j) % n])
            m.update_action(client_id, action, "cancelled", m.purposes[(i + j + 1) % n], send_permitted=False)


def succeeded(response: Response | None, what: str) -> None:
    got = f"{response.status_code} {response.text[:300]}" if response is not None else "not sent"
    assert response is not None and response.status_code < 300, f"conference walk: {what} → {got}"


def conference_walks(m: Matrix) -> None:
    """The chair's permitted writes on scratch meetings, each judged (reply, entry): a meeting scheduled
    under every purpose, items added, invitations changed and attendance recorded, minutes, a decision
    that moves a fresh referral, an item removed, the meeting closed and corrected; actions set,
    completed by their owner and cancelled by the chair.  Every client reads the meeting open and closed."""
    n = len(m.purposes)
    for name, owner, chair, network, partner, invitee, reply in (
        ("city", SCHOOL, CITY, "demo-city", "city-social-services", "city-health-centre", CONFERENCE),
        ("town", TOWN_SCHOOL, TOWN, "demo-town", "town-social-services", "town-youth-club", NONE),
    ):
        rid = m.create(f"{name}-conference-walk", owner)
        m.move(rid, chair, "triaged")
        owner_agency = m.caller(owner).agency
        first = m.labels[SPARE[network]]
        meeting = None
        offset = m.purposes.index(reply)  # the first with the agenda shown (city) or a receipt (town)
        for k in range(n):  # then under every other purpose: refusals, an empty meeting shown or a receipt
            purpose = m.purposes[(offset + k) % n]
            made = m.schedule(chair, network, purpose, [(first, [owner_agency]), (rid, [partner])] if
                              meeting is None else [], label=f"{name}-conference-walk" if meeting is None else None)
            meeting = meeting or made
        assert meeting is not None, f"conference walk: {chair} could not schedule in {network}"
        spare = m.labels[f"{name}-walk-withdrawn"]
        succeeded(m.add_item(chair, meeting, spare, [invitee], reply, send_permitted=True), "add an item")
        succeeded(m.edit_item(chair, meeting, 1, {"invited": [owner_agency, invitee], "attended": [owner_agency]},
                              reply, send_permitted=True), "edit an item")
        succeeded(m.edit_item(chair, meeting, 2, {"attended": [partner]}, NONE, send_permitted=True),
                  "record attendance")
        run(conference_reads(m, [meeting], [rid, first, spare]))
        succeeded(m.record_minutes(chair, meeting, 1, NONE, send_permitted=True), "minutes")
        succeeded(m.record_minutes(chair, meeting, 2, reply, decision="accept", send_permitted=True),
                  "a decision")
        assert m.recs[rid].status == "accepted", f"conference walk: {name} decision left {m.recs[rid].status}"
        m.remove_item(chair, meeting, 1, NONE, send_permitted=True)  # minuted: it stays (409)
        succeeded(m.remove_item(chair, meeting, 3, NONE, send_permitted=True), "remove an item")
        done = m.create_action(chair, m.recs[rid], NONE, owner=partner, meeting=meeting, number=2)
        dropped = m.create_action(owner, m.recs[rid], NONE, owner=invitee)
        assert done is not None and dropped is not None, f"conference walk: {name} actions not set"
        for k, client_id in enumerate(m.callers):  # the partner's: its agency or the chair completes it,
            m.update_action(client_id, done, "done", m.purposes[k % n], send_permitted=False)  # the chair cancels
            m.update_action(client_id, done, "cancelled", m.purposes[(k + 1) % n], send_permitted=False)
        succeeded(m.update_action(m.client_of(partner, "caseworker"), done, "done", NONE,
                                  note="Matrix completion marker"), "complete an action")
        succeeded(m.update_action(chair, dropped, "cancelled", NONE), "cancel an action")
        succeeded(m.close_meeting(chair, meeting, NONE, send_permitted=True), "close")
        succeeded(m.record_minutes(chair, meeting, 1, NONE, send_permitted=True), "a correction")
        m.add_item(chair, meeting, spare, [invitee], NONE, send_permitted=True)  # closed: 409
        run(conference_reads(m, [meeting], [rid, first, spare]))
    run([partial(m.list_meetings, c, network) for c in m.callers for network in sorted(m.oracle.networks)])


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
    conference_sweep(m)
    walks(m)
    conference_walks(m)
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
