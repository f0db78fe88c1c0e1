"""What a real browser does with the console's defences: forms posted from another origin are refused,
forms posted from the console itself are not, the session cookie changes at sign-in, and the pages run
under their Content-Security-Policy without a violation (no axe here: the CSP is not bypassed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser.harness import PREFIX, ROLES, Console, assert_direction, submit
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.xdist_group("browser")
REFERRER = ROLES["referrer"]


class Elsewhere:
    """A second local web server (another origin: another port) serving one page of our making."""

    def __init__(self) -> None:
        self.html = "<!doctype html><title>elsewhere</title>"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                body = outer.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the standard library's name
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[Elsewhere]:
    server = Elsewhere()
    try:
        yield server
    finally:
        server.stop()


def cookie_of(page: Page) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "cb_console"), None)


def signed_in_referrer(console: Console) -> Page:
    page = console.new_page()
    console.sign_in(page, REFERRER.person)
    return page


def attack_form(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())
    return (f'<!doctype html><html lang="en"><title>a prize</title><form method="post" action="{escape(action)}">'
            f'{inputs}<button type="submit" id="go">Claim your prize</button></form></html>')


def test_a_form_posted_from_the_consoles_own_page_is_accepted(console: Console) -> None:
    """The control for the refusals below: the same kind of form, from the console itself, goes through
    (a browser sends `Origin` with it only when the page's Referrer-Policy lets it: `no-referrer` makes
    every form's Origin "null")."""
    page = console.new_page()
    shown = page.goto(console.url(f"{PREFIX}/sign-in"))
    assert shown is not None
    with page.expect_response(console.url(f"{PREFIX}/language")) as answer:
        page.select_option("#language-choice", "ar")
        submit(page, "form.language button[type=submit]")
    assert answer.value.status == 303, (
        f"the console refused its own form ({answer.value.status}): the browser sent "
        f"Origin: {answer.value.request.all_headers().get('origin')!r}, the page having "
        f"Referrer-Policy: {shown.headers.get('referrer-policy')!r}")
    assert_direction(page, "ar")


@pytest.mark.parametrize("with_token", [False, True], ids=["without-token", "with-a-leaked-token"])
def test_a_form_from_another_origin_is_refused(console: Console, elsewhere: Elsewhere, with_token: bool) -> None:
    """A page on another origin (same site: 127.0.0.1, another port, so the SameSite cookie goes along)
    posts the language form to the console: refused (403, the refusal page), even with the session's
    own CSRF token, and nothing changes."""
    page = signed_in_referrer(console)
    token = page.locator("form.language input[name=csrf]").input_value()
    fields = {"language": "ar", "next": f"{PREFIX}/"}
    if with_token:
        fields["csrf"] = token
    elsewhere.html = attack_form(console.url(f"{PREFIX}/language"), fields)
    page.goto(elsewhere.base)
    with page.expect_response(console.url(f"{PREFIX}/language")) as answer:
        submit(page, "#go")
    assert answer.value.status == 403
    assert page.url == console.url(f"{PREFIX}/language")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("main")).to_contain_text("did not come from this page")
    page.goto(console.url(f"{PREFIX}/"))
    assert_direction(page, "en")  # the language did not change
    expect(page.locator("header .who")).to_contain_text(console.people[REFERRER.person].name)  # still signed in


def test_a_form_from_a_data_url_is_refused(console: Console) -> None:
    """An opaque origin (a data: URL) posting the sign-out form: refused, the person stays signed in."""
    page = signed_in_referrer(console)
    token = page.locator("form.language input[name=csrf]").input_value()
    html = attack_form(console.url(f"{PREFIX}/sign-out"), {"csrf": token})
    page.goto("data:text/html;charset=utf-8," + html.replace("#", "%23"))
    with page.expect_response(console.url(f"{PREFIX}/sign-out")) as answer:
        submit(page, "#go")
    assert answer.value.status == 403
    page.goto(console.url(f"{PREFIX}/"))
    assert page.url == console.url(f"{PREFIX}/")
    expect(page.locator("header .who")).to_contain_text(console.people[REFERRER.person].name)


def test_the_session_cookie_changes_at_sign_in(console: Console) -> None:
    """No session fixation: the cookie the sign-in form gave is worthless once the person has signed in."""
    page = console.new_page()
    page.goto(console.url(f"{PREFIX}/sign-in"))
    cookies = [c for c in page.context.cookies() if c["name"] == "cb_console"]
    assert len(cookies) == 1
    cookie = cookies[0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == PREFIX
    before = cookie["value"]
    console.sign_in(page, REFERRER.person)
    after = cookie_of(page)
    assert after and after != before
    # The old value, planted in another browser, opens nothing.
    other = console.new_page()
    other.context.add_cookies([{"name": "cb_console", "value": before, "url": console.url(f"{PREFIX}/")}])
    other.goto(console.url(f"{PREFIX}/"))
    assert other.url.split("?", 1)[0] == console.url(f"{PREFIX}/sign-in")
    # Signing out ends the session: the signed-in cookie's value opens nothing either.
    submit(page, "header .who form button[type=submit]")
    assert page.url.split("?", 1)[0] == console.url(f"{PREFIX}/sign-in")
    third = console.new_page()
    third.context.add_cookies([{"name": "cb_console", "value": after, "url": console.url(f"{PREFIX}/")}])
    third.goto(console.url(f"{PREFIX}/"))
    assert third.url.split("?", 1)[0] == console.url(f"{PREFIX}/sign-in")


def test_the_pages_run_under_their_csp_without_a_violation(console: Console) -> None:
    """No inline script or style anywhere: Chromium reports no CSP violation, and the console's own script
    and style sheet load."""
    page = console.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    loaded: list[str] = []
    page.on("response", lambda r: loaded.append(r.url) if r.ok and "/static/" in r.url else None)
    shown = page.goto(console.url(f"{PREFIX}/sign-in"))
    assert shown is not None and "script-src 'self'" in shown.headers["content-security-policy"]
    console.sign_in(page, REFERRER.person)
    console.choose_purpose(page, REFERRER.purpose)
    page.goto(console.url(f"{PREFIX}/referrals/{console.referral_for('referrer')}"))
    expect(page.locator("h1 bdi.id")).to_have_text(console.referral_for("referrer"))
    console.switch_language(page, "ar")
    console.switch_language(page, "en")
    violations = [e for e in errors if "Content Security Policy" in e or "Refused to" in e]
    assert not violations, violations
    assert any(u.endswith("/static/console.js") for u in loaded) and any(u.endswith("/static/console.css")
                                                                          for u in loaded)
