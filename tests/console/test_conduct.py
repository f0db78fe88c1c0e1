"""The code of conduct: no case page before a person accepts the current version of their networks' codes;
accepting is recorded and logged; a new version (or a changed text) is accepted again; the text is the person's
language when the network has it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import select
from support.audit_log import entries
from support.console import ConsoleClient
from support.row_counts import counts
from support.settings import suite_settings

from app.bootstrap import load_policies
from app.conduct.models import ConductAcceptance
from app.config import Settings
from app.console import web
from app.console.models import Person
from app.db import transaction
from app.main import create_app
from app.policy.loader import load_networks
from app.state import AppState

Browser = Callable[[], ConsoleClient]
REPO_ROOT = Path(__file__).resolve().parents[2]
CONDUCT_PAGE = "/console/conduct"
PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
# The pages a person who owes a code may still reach: none shows case data.
BEFORE_CONDUCT = {("POST", "/console/sign-out"), ("POST", "/console/language"), ("GET", CONDUCT_PAGE),
                  ("POST", CONDUCT_PAGE)}


@pytest.fixture
def policies_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "policies", folder, ignore=shutil.ignore_patterns("examples"))
    return folder


@pytest.fixture
def settings(tmp_path: Path, database_url: str, policies_dir: Path) -> Settings:
    return suite_settings(tmp_path, database_url, policies_dir=policies_dir)


def fresh(browser: Browser, person_id: str) -> tuple[ConsoleClient, Any]:
    """A browser signed in (second factor included) that has not accepted the code: the page it lands on."""
    client = browser()
    landed = client.sign_in(person_id, accept_conduct=False)
    assert landed.status_code == 200 and landed.url.path == CONDUCT_PAGE, landed.url
    return client, landed


def acceptances(state: AppState, person_id: str) -> list[tuple[str, int, str, str]]:
    with state.read_sessions() as session:
        rows = session.scalars(select(ConductAcceptance).where(ConductAcceptance.person_id == person_id)
                               .order_by(ConductAcceptance.id))
        return [(r.network_id, r.version, r.content_hash, r.language) for r in rows]


def current_hash(state: AppState, network_id: str) -> str:
    network = state.policies.current.network(network_id)
    assert network is not None and network.conduct is not None
    return network.conduct.content_hash


def test_only_pages_without_case_data_come_before_the_code(tmp_path: Path) -> None:
    app = create_app(suite_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}"))
    marked = {(method, route.path) for route in iter_route_contexts(app.routes)
              for method in getattr(route, "methods", None) or ()
              if getattr(getattr(route, "endpoint", None), "__console_page__", {}).get("before_conduct")}
    assert marked == BEFORE_CONDUCT


@pytest.mark.parametrize("person_id", ["rana-referrer", "karim-coordinator", "maya-auditor"])
def test_no_console_page_before_the_code_is_accepted(
    browser: Browser, console_people: dict[str, str], state: AppState, post_referral: Callable[..., dict[str, Any]],
    person_id: str,
) -> None:
    referral = post_referral()
    client, _ = fresh(browser, person_id)
    before, logged = counts(state), len(entries(state))
    walked = 0
    for route in iter_route_contexts(client.http.app.routes):
        path = getattr(route, "path", "")
        for method in getattr(route, "methods", None) or ():
            if not path.startswith(web.PREFIX + "/") or (method, path) in BEFORE_CONDUCT or method == "HEAD":
                continue
            url = PARAMETER.sub(lambda m: referral["id"] if m.group(1) == "referral_id" else "1", path)
            response = (client.http.get(url, follow_redirects=False) if method == "GET" else
                        client.http.post(url, data={"csrf": client.csrf, "next": "/console/",
                                                    "purpose": "safeguarding_assessment"}, follow_redirects=False))
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith(CONDUCT_PAGE), (method, path, response.headers)
            walked += 1
    assert walked >= 30
    assert counts(state) == before and len(entries(state)) == logged  # nothing read, nothing changed
    assert acceptances(state, person_id) == []


def test_accepting_is_recorded_and_logged_and_lets_the_person_in(
    browser: Browser, console_people: dict[str, str], state: AppState,
) -> None:
    client, page = fresh(browser, "rana-referrer")
    assert "Purpose limitation." in page.text and "data-protection officer" in page.text
    assert 'lang="en"' in page.text and "Demo City Prevention Network" in page.text
    accepted = client.accept_conduct(page)
    assert accepted.status_code == 200 and accepted.url.path == "/console/"
    digest = current_hash(state, "demo-city")
    assert acceptances(state, "rana-referrer") == [("demo-city", 1, digest, "en")]
    (entry,) = entries(state, event_type="conduct_accepted")
    assert entry.actor_agency == "school-north" and entry.details is not None
    assert {k: entry.details[k] for k in ("client_id", "network", "version", "content_hash", "language")} == {
        "client_id": "rana-referrer", "network": "demo-city", "version": 1, "content_hash": digest,
        "language": "en"}
    # Signed in again another day: the code is accepted already.
    again = browser().sign_in("rana-referrer", accept_conduct=False)
    assert again.url.path == "/console/" and len(acceptances(state, "rana-referrer")) == 1
    # The person of the other network owes that network's code, not this one's.
    _, town = fresh(browser, "town-coordinator-person")
    assert "Demo Town Community Action Team" in town.text and "Demo City Prevention Network" not in town.text


def test_a_new_version_or_a_changed_text_is_accepted_again(
    browser: Browser, console_people: dict[str, str], state: AppState, policies_dir: Path,
) -> None:
    client, page = fresh(browser, "rana-referrer")
    client.accept_conduct(page)
    assert client.get("/console/", follow_redirects=False).status_code == 200
    network = policies_dir / "networks" / "demo-city.yaml"
    network.write_text(network.read_text("utf-8").replace("  version: 1\n", "  version: 2\n"), "utf-8")
    assert load_policies(state.policies, state.settings).errors == []
    # The same session, the next page: the new version first.
    gated = client.get("/console/referrals/mine", follow_redirects=False)
    assert gated.status_code == 303
    assert gated.headers["location"] == f"{CONDUCT_PAGE}?next=%2Fconsole%2Freferrals%2Fmine"
    page = client.get(gated.headers["location"])
    assert "Version" in page.text and ">2<" in page.text
    onwards = client.accept_conduct(page)  # on to the page asked for (which asks for a purpose first)
    assert onwards.url.path == "/console/purpose" and onwards.url.params["next"] == "/console/referrals/mine"
    # A text changed without raising the version is a new text all the same.
    text = policies_dir / "networks" / "conduct" / "demo-city.en.md"
    text.write_text(text.read_text("utf-8") + "\n7. **Training.** Keep your training current.\n", "utf-8")
    assert load_policies(state.policies, state.settings).errors == []
    page = client.get("/console/")
    assert page.url.path == CONDUCT_PAGE and "Keep your training current." in page.text
    client.accept_conduct(page)
    versions = [(network, version) for network, version, _, _ in acceptances(state, "rana-referrer")]
    assert versions == [("demo-city", 1), ("demo-city", 2), ("demo-city", 2)]
    assert len({digest for _, _, digest, _ in acceptances(state, "rana-referrer")}) == 3
    assert [e.details["version"] for e in entries(state, event_type="conduct_accepted") if e.details] == [1, 2, 2]


def test_what_was_not_shown_is_not_accepted(browser: Browser, console_people: dict[str, str], state: AppState) -> None:
    client, _ = fresh(browser, "rana-referrer")
    before = counts(state)
    for shown in ({"code:demo-city": "0" * 64}, {}, {"code:demo-city": current_hash(state, "demo-city"),
                                                      "code:demo-town": current_hash(state, "demo-town")}):
        refused = client.post(CONDUCT_PAGE, {**shown, "next": "/console/"}, follow_redirects=False)
        assert refused.status_code == 409 and "changed while you were reading" in refused.text
    without_token = client.http.post(CONDUCT_PAGE, data={"code:demo-city": current_hash(state, "demo-city")},
                                     follow_redirects=False)
    assert without_token.status_code == 403
    after = counts(state)
    assert after["conduct_acceptances"] == 0
    assert {k: v for k, v in after.items() if k != "audit_entries"} == \
        {k: v for k, v in before.items() if k != "audit_entries"}
    assert entries(state, event_type="conduct_accepted") == []


def test_declining_is_signing_out(browser: Browser, console_people: dict[str, str], state: AppState) -> None:
    client, page = fresh(browser, "rana-referrer")
    assert 'action="/console/sign-out"' in page.text
    out = client.post("/console/sign-out", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    home = client.get("/console/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"].startswith("/console/sign-in")
    assert acceptances(state, "rana-referrer") == []


def test_the_code_is_shown_in_the_persons_language(
    browser: Browser, console_people: dict[str, str], state: AppState,
) -> None:
    with transaction(state.sessions) as session:
        for person_id, locale in (("rana-referrer", "ar"), ("hadi-caseworker", "mk")):
            person = session.get(Person, person_id)
            assert person is not None
            person.locale = locale
    client, page = fresh(browser, "rana-referrer")
    assert 'lang="ar" dir="rtl"' in page.text and "تحديد الغرض" in page.text and "Purpose limitation" not in page.text
    assert "أوافق على مدونة السلوك" in page.text  # the button too
    client.accept_conduct(page)
    assert acceptances(state, "rana-referrer")[0][3] == "ar"
    # Macedonian, which demo-city has no text in: the network's first language.
    other, fallback = fresh(browser, "hadi-caseworker")
    assert 'lang="en" dir="ltr"' in fallback.text and "Purpose limitation." in fallback.text
    other.accept_conduct(fallback)
    assert acceptances(state, "hadi-caseworker")[0][3] == "en"


def test_a_code_that_cannot_be_read_keeps_its_network_out(policies_dir: Path) -> None:
    folder = policies_dir / "networks"
    (folder / "conduct" / "demo-town.ar.md").unlink()
    networks, errors = load_networks(folder)
    assert "demo-town" not in networks and "demo-city" in networks
    (error,) = errors
    assert error.file.endswith("demo-town.yaml") and error.path == "code_of_conduct.text.ar"
    assert error.reason == "code of conduct 'conduct/demo-town.ar.md': no such file" and error.line
    town = folder / "demo-town.yaml"
    town.write_text(town.read_text("utf-8").replace("ar: conduct/demo-town.ar.md", "ar: ../../secret.md"), "utf-8")
    _, errors = load_networks(folder)
    assert [e.path for e in errors] == ["code_of_conduct.text.ar"]
