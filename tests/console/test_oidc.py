"""Sign-in through the identity provider: a real OpenID provider (node, `oidc-provider`), code flow + PKCE.

The provider (tests/console/oidc_provider/provider.mjs) signs in the account the test sets, at once; the
test carries the browser between the provider (an httpx client of its own) and the console (its
TestClient), as a browser's redirects would.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from sqlalchemy import select
from support.settings import suite_settings

from app.audit import queries
from app.config import Settings
from app.console import oidc
from app.console.models import ConsoleSession, Person
from app.main import create_app
from app.state import AppState

ConsoleClient = Any  # tests/console/conftest.py's browser

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
CLIENT_ID = "casebridge-console"
CLIENT_SECRET = "a-test-secret-of-enough-length"  # noqa: S105 - the test provider's only
CONSOLE = "https://testserver"
CALLBACK = f"{CONSOLE}/console/sign-in/oidc/callback"


@dataclass
class Provider:
    issuer: str

    def account(self, sub: str, *, agency: str | None, roles: Any, username: str | None = None,
                name: str | None = None) -> None:
        """The account the provider signs in from now on."""
        body = {"sub": sub, "agency": agency, "roles": roles, "preferred_username": username, "name": name}
        answer = httpx.post(f"{self.issuer}/test/account", json=body, timeout=10)
        assert answer.status_code == 200, answer.text


def _npm_ci() -> None:
    """`npm ci` once (a lock: two pytest-xdist workers may both find node_modules missing)."""
    with open(Path(tempfile.gettempdir()) / "casebridge-oidc-provider-npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
            npm = shutil.which("npm")
            assert npm is not None, "npm is needed to install the test provider (tests/console/oidc_provider)"
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER_DIR,  # noqa: S603
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("the OpenID provider of these tests needs Node.js (`node` is not on PATH)")
    _npm_ci()
    env = {**os.environ, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "REDIRECT_URI": CALLBACK,
           "ACCOUNT_SUB": "nobody", "ACCOUNT_AGENCY": "", "ACCOUNT_ROLES": "[]"}
    process = subprocess.Popen([node, "provider.mjs", "0"], cwd=PROVIDER_DIR, env=env,  # noqa: S603
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the provider's one line, once it listens
        if not line:
            raise AssertionError(f"the provider did not start: {process.stderr.read() if process.stderr else ''}")
        issuer = json.loads(line)["issuer"]
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the provider's discovery did not answer"
            time.sleep(0.1)
        yield Provider(issuer)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        oidc.forget_provider()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, provider: Provider) -> Settings:
    return suite_settings(tmp_path, database_url, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                          oidc_client_secret=CLIENT_SECRET, oidc_redirect_base=CONSOLE)


@pytest.fixture
def console(browser: Callable[[], ConsoleClient], demo: dict[str, Any]) -> Callable[[], ConsoleClient]:
    """Fresh browsers on the console of the demo network (its agencies), which knows the provider."""
    return browser


def to_provider(browser: ConsoleClient, target: str = "/console/") -> str:
    """Start at the console: the URL of the provider it sends the browser to."""
    started = browser.http.get("/console/sign-in/oidc", params={"next": target}, follow_redirects=False)
    assert started.status_code in (302, 303), started.text[:500]
    return str(started.headers["location"])


def at_provider(url: str) -> str:
    """The provider's part, in a browser of its own there: the callback URL it sends the browser back to."""
    with httpx.Client(timeout=10) as there:
        for _ in range(10):
            answer = there.get(url, follow_redirects=False)
            assert answer.status_code in (302, 303), answer.text[:500]
            url = urljoin(url, answer.headers["location"])
            if url.startswith(CONSOLE):
                return url
    raise AssertionError("the provider did not send the browser back")


def callback(browser: ConsoleClient, url: str) -> Any:
    parts = urlsplit(url)
    return browser.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def sign_in(browser: ConsoleClient, target: str = "/console/") -> Any:
    """The whole flow; returns the callback's answer."""
    return callback(browser, at_provider(to_provider(browser, target)))


def sign_ins(state: AppState) -> list[queries.EntryView]:
    with state.sessions() as session:
        return queries.search(session.connection(), state.audit.sealer, queries.EntryFilter(event_type="sign_in"),
                              after=None, limit=1000)


def person_of(state: AppState, subject: str) -> list[Person]:
    with state.read_sessions() as session:
        found = list(session.scalars(select(Person).where(Person.oidc_subject == subject)))
        session.expunge_all()
        return found


def test_the_code_flow_signs_in_a_person_made_just_in_time(console, provider, state, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def no_userinfo(*args: Any) -> dict[str, Any]:
        raise AssertionError("the claims parameter puts the claims in the ID token: no userinfo call")

    monkeypatch.setattr(oidc, "userinfo", no_userinfo)
    provider.account("sub-amira-1", agency="school-north", roles=["referrer", "caseworker", "astronaut"],
                     username="Amira.Haddad", name="Amira Haddad")
    browser = console()
    location = to_provider(browser, "/console/purpose")
    asked = parse_qs(urlsplit(location).query)
    assert location.startswith(f"{provider.issuer}/auth?")
    assert asked["response_type"] == ["code"] and asked["code_challenge_method"] == ["S256"]
    assert asked["scope"][0].split() == ["openid", "profile", "agency", "roles"]
    assert "code_verifier" not in asked and len(asked["code_challenge"][0]) == 43
    pending_cookie = browser.http.cookies.get("cb_oidc")
    assert pending_cookie
    anonymous = browser.http.cookies.get("cb_console")

    answer = callback(browser, at_provider(location))
    assert answer.status_code == 200, answer.text[:2000]
    assert answer.headers["refresh"] == "0; url=/console/purpose"
    assert 'href="/console/purpose"' in answer.text and "Amira Haddad" in answer.text
    assert "cb_oidc" not in browser.http.cookies  # the pending request's cookie is gone
    assert browser.http.cookies.get("cb_console") not in (None, anonymous)  # a new session: no fixation
    cookie_line = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("cb_console"))
    assert "samesite=strict" in cookie_line.lower()

    home = browser.get("/console/")
    assert home.status_code == 200
    assert "Amira Haddad" in home.text and "North Secondary School" in home.text
    [person] = person_of(state, "sub-amira-1")
    assert person.id == "amira-haddad" and person.agency_id == "school-north"
    assert person.roles == ["caseworker", "referrer"] and person.password_hash is None
    assert person.oidc_issuer == provider.issuer
    with state.read_sessions() as session:  # the anonymous session that held the request is gone
        rows = list(session.scalars(select(ConsoleSession)))
        assert [(r.person_id, r.stage) for r in rows] == [("amira-haddad", "signed_in")]
    [entry] = sign_ins(state)
    assert entry.decision == "permit" and entry.actor_agency == "school-north"
    assert entry.details is not None
    assert entry.details["method"] == "oidc" and entry.details["reason"] == "ok"
    assert entry.details["client_id"] == "amira-haddad"
    # The person reaches case data through the API as themself: the purpose page lists their agreements.
    assert browser.get("/console/purpose").status_code == 200


def test_a_second_sign_in_is_the_same_person_with_the_claims_roles(console, provider, state) -> None:  # type: ignore[no-untyped-def]
    provider.account("sub-amira-2", agency="school-north", roles=["referrer", "caseworker"], username="amira")
    assert sign_in(console()).status_code == 200
    provider.account("sub-amira-2", agency="school-north", roles="referrer unknown-role", username="amira")
    again = console()
    assert sign_in(again).status_code == 200
    [person] = person_of(state, "sub-amira-2")
    assert person.id == "amira" and person.roles == ["referrer"]
    with state.read_sessions() as session:
        from app.agencies.models import ApiClient

        client = session.get(ApiClient, "amira")
        assert client is not None and client.roles == ["referrer"]
    assert [e.details["reason"] for e in sign_ins(state) if e.details] == ["ok", "ok"]
    # Another person whose user name is taken gets an id of their own.
    provider.account("sub-amira-other", agency="school-south", roles=["referrer"], username="Amira")
    assert sign_in(console()).status_code == 200
    [other] = person_of(state, "sub-amira-other")
    assert other.id == "amira-2" and other.agency_id == "school-south"


def refusals(state: AppState) -> list[str]:
    return [str(e.details.get("reason")) for e in sign_ins(state) if e.details and e.decision == "deny"]


def test_a_wrong_state_is_refused_and_logged(console, provider, state) -> None:  # type: ignore[no-untyped-def]
    provider.account("sub-state", agency="school-north", roles=["referrer"], username="stella")
    browser = console()
    back = at_provider(to_provider(browser))
    parts = urlsplit(back)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    first = query["state"][0]
    query["state"] = ("y" if first == "x" else "x") + query["state"][1:]  # always a different state
    answer = browser.get(f"{parts.path}?{urlencode(query)}", follow_redirects=False)
    assert answer.status_code == 400
    assert "Sign-in through your organisation did not succeed." in answer.text
    assert 'name="password"' in answer.text  # the sign-in page again, its form usable
    assert refusals(state) == ["state-mismatch"]
    assert person_of(state, "sub-state") == []
    assert browser.get("/console/", follow_redirects=False).status_code == 303  # not signed in
    # The request is used up: the right state now comes too late.
    assert callback(browser, back).status_code == 400
    assert refusals(state) == ["state-mismatch", "no-pending-request"]


def test_a_callback_without_a_pending_request_is_refused(console, provider, state) -> None:  # type: ignore[no-untyped-def]
    answer = console().get("/console/sign-in/oidc/callback?code=abc&state=def", follow_redirects=False)
    assert answer.status_code == 400 and "did not succeed" in answer.text
    assert refusals(state) == ["no-pending-request"]


def test_an_unknown_agency_is_refused(console, provider, state) -> None:  # type: ignore[no-untyped-def]
    provider.account("sub-nowhere", agency="atlantis-council", roles=["referrer"], username="nemo")
    browser = console()
    answer = sign_in(browser)
    assert answer.status_code == 403 and "did not succeed" in answer.text
    assert refusals(state) == ["unknown-agency"]
    assert person_of(state, "sub-nowhere") == []
    assert browser.get("/console/", follow_redirects=False).status_code == 303


def test_no_known_role_is_refused(console, provider, state) -> None:  # type: ignore[no-untyped-def]
    provider.account("sub-norole", agency="school-north", roles=["astronaut", "Referrer"], username="noah")
    answer = sign_in(console())
    assert answer.status_code == 403
    assert refusals(state) == ["no-known-role"]
    assert person_of(state, "sub-norole") == []


def test_an_agency_other_than_the_persons_is_refused(console, provider, state) -> None:  # type: ignore[no-untyped-def]
    provider.account("sub-mover", agency="school-north", roles=["referrer"], username="mover")
    assert sign_in(console()).status_code == 200
    provider.account("sub-mover", agency="school-south", roles=["referrer"], username="mover")
    assert sign_in(console()).status_code == 403
    assert refusals(state) == ["agency-mismatch"]
    [person] = person_of(state, "sub-mover")
    assert person.agency_id == "school-north"


def test_a_disabled_person_is_refused(console, provider, state) -> None:  # type: ignore[no-untyped-def]
    from app.console import people
    from app.db import transaction

    provider.account("sub-gone", agency="school-north", roles=["referrer"], username="gone")
    assert sign_in(console()).status_code == 200
    with transaction(state.sessions) as session:
        people.set_disabled(session, session.get(Person, "gone"), True)
    assert sign_in(console()).status_code == 403
    assert refusals(state) == ["disabled"]


def test_a_replayed_callback_is_refused(console, provider, state) -> None:  # type: ignore[no-untyped-def]
    provider.account("sub-replay", agency="school-north", roles=["referrer"], username="ray")
    browser = console()
    location = to_provider(browser)
    [pending] = [c for c in browser.http.cookies.jar if c.name == "cb_oidc"]
    back = at_provider(location)
    assert callback(browser, back).status_code == 200
    # The same answer again, with the pending cookie put back (an attacker who kept both): used up.
    attacker = console()
    attacker.http.cookies.jar.set_cookie(pending)
    assert callback(attacker, back).status_code == 400
    # The same code within a new request of this browser (its own state): the provider refuses it.
    fresh = urlsplit(to_provider(attacker))
    state_now = parse_qs(fresh.query)["state"][0]
    code = parse_qs(urlsplit(back).query)["code"][0]
    replay = attacker.get("/console/sign-in/oidc/callback?" + urlencode(
        {"code": code, "state": state_now, "iss": provider.issuer}), follow_redirects=False)
    assert replay.status_code == 401
    assert refusals(state) == ["no-pending-request", "token-refused: invalid_grant"]
    assert attacker.get("/console/", follow_redirects=False).status_code == 303


def test_a_person_added_with_an_oidc_subject_signs_in_through_the_provider(  # type: ignore[no-untyped-def]
    console, provider, state, settings, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(settings.keyring_path))
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CASEBRIDGE_OIDC_ISSUER", provider.issuer)
    result = CliRunner().invoke(cli, ["person", "add", "--id", "karim-city", "--agency", "city-municipality",
                                      "--name", "Karim City", "--roles", "coordinator",
                                      "--oidc-subject", "sub-karim", "--json"])
    assert result.exit_code == 0, result.output
    assert "password" not in json.loads(result.stdout)
    provider.account("sub-karim", agency="city-municipality", roles=["coordinator", "auditor"],
                     username="karim.the.coordinator")
    browser = console()
    answer = sign_in(browser)
    assert answer.status_code == 200, answer.text[:2000]
    home = browser.get("/console/")
    assert home.status_code == 200 and "Karim City" in home.text  # no second factor asked: the provider's job
    [person] = person_of(state, "sub-karim")
    assert person.id == "karim-city" and person.roles == ["auditor", "coordinator"]
    assert person.password_hash is None and person.totp_sealed is None


def test_an_unreachable_provider_is_a_503_page(tmp_path, database_url) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = suite_settings(tmp_path, database_url, oidc_issuer=f"http://127.0.0.1:{port}",
                              oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET)
    with TestClient(create_app(settings), base_url=CONSOLE, raise_server_exceptions=False) as client:
        page = client.get("/console/sign-in")
        assert "/console/sign-in/oidc?next=" in page.text
        answer = client.get("/console/sign-in/oidc?next=/console/", follow_redirects=False)
        assert answer.status_code == 503
        assert "sign-in service cannot be reached" in answer.text
        state: AppState = client.app.state.cb  # type: ignore[attr-defined]
        assert [e.details.get("reason") for e in sign_ins(state) if e.details] == ["unreachable: ConnectError"]


# The ID token's checks, on tokens signed here -------------------------------------------------------

ISSUER = "https://id.city.example"


def _token(key: RSAKey, **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "s-1", "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": "n-1",
              "agency": "school-north", "roles": ["referrer"], **changes}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def _check(token: str, keys: KeySet, nonce: str = "n-1") -> dict[str, Any]:
    return oidc.validate_id_token(token, keys=keys, algorithms=["RS256"], issuer=ISSUER, client_id=CLIENT_ID,
                                  nonce=nonce)


def test_the_id_token_is_checked() -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    keys = KeySet([RSAKey.import_key(key.as_dict(private=False))])
    assert _check(_token(key), keys)["sub"] == "s-1"
    refused = {
        "wrong nonce": (_token(key, nonce="n-2"), keys),
        "no nonce": (_token(key, nonce=None), keys),
        "other audience": (_token(key, aud="someone-else"), keys),
        "other issuer": (_token(key, iss="https://evil.example"), keys),
        "expired": (_token(key, exp=int(time.time()) - 3600), keys),
        "no subject": (_token(key, sub=None), keys),
        "another key": (_token(RSAKey.generate_key(2048, parameters={"kid": "k1"})), keys),
    }
    for what, (token, key_set) in refused.items():
        with pytest.raises(oidc.OidcRefused) as caught:
            _check(token, key_set)
        assert caught.value.reason.startswith("id-token-invalid"), what
    unsigned = jwt.encode({"alg": "HS256"}, {"iss": ISSUER, "sub": "s", "aud": CLIENT_ID, "nonce": "n-1",
                                             "exp": int(time.time()) + 60, "iat": int(time.time())},
                          OctKey.import_key("a-shared-secret-of-32-bytes-length!"), algorithms=["HS256"])
    with pytest.raises(oidc.OidcRefused):
        _check(unsigned, keys)  # only the provider's algorithms, with its keys


def test_roles_may_be_a_list_or_words(tmp_path: Path) -> None:
    settings = suite_settings(tmp_path, f"sqlite:///{tmp_path}/unused.db")
    base = {"sub": "s", "agency": "a"}
    assert oidc.identity_of(settings, ISSUER, {**base, "roles": ["referrer", 3]}).roles == ("referrer",)
    assert oidc.identity_of(settings, ISSUER, {**base, "roles": "referrer  caseworker"}).roles == \
        ("referrer", "caseworker")
    assert oidc.identity_of(settings, ISSUER, base).roles == ()
    assert oidc.slug("Ämira.Haddad@city") == "amira-haddad-city"
