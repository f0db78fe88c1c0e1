"""The console in a real browser: Debian's Chromium driven by Playwright, axe-core, screenshots.

Everything the browser tests share: what is needed (and what to install when it is missing), the
demo people and how they sign in (a second factor where their role needs one), the page checks
(axe-core, right-to-left, 360 px, keyboard) and the pages every sweep visits (``SWEEP``).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page
    from support.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Never a downloaded browser: Debian's, with nothing that calls out to the network.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]
AXE_DIR = Path(__file__).parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PREFIX = "/console"
LANGUAGES = ("en", "ar")
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 360, "height": 800}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing() -> str | None:
    """What the browser tests lack on this machine, and how to install it (None: nothing)."""
    if not CHROMIUM.exists():
        return (f"Chromium is not installed at {CHROMIUM}: `apt-get install chromium` (Debian's package; "
                "`make test` tries it, `playwright install` is not used)")
    if not AXE_JS.exists():
        return f"axe-core is not installed: `cd {AXE_DIR.relative_to(ROOT)} && npm ci`"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: `make test` installs requirements/dev.txt"
    return None


# The demo people (app/demo.py DEMO_PEOPLE), one per role's job: who plays each role in the sweep, the
# demo API client of the same agency (to find a referral the person may open) and the purpose they choose.
class Role(NamedTuple):
    person: str
    client: str
    purpose: str


ROLES: dict[str, Role] = {
    "coordinator": Role("amal-coordinator", "municipality-coordinator", "safeguarding_assessment"),
    "referrer": Role("sami-referrer", "school-north-referrer", "safeguarding_assessment"),
    "caseworker": Role("lina-caseworker", "social-services-caseworker", "intervention_planning"),
    "partner_reader": Role("omar-reader", "youth-ngo-reader", "service_provision"),
    "auditor": Role("dana-auditor", "independent-auditor", "subject_access"),
}


class Sweep(NamedTuple):
    """One page of the axe/screenshot sweep, as the role's demo person sees it after choosing a purpose.

    ``{referral}`` in the path is a referral that person may open. ``pending``: a page still being built;
    while its path answers 404 the sweep reports it skipped (remove the flag once the page has landed).
    """

    role: str
    path: str
    name: str
    pending: bool = False


SWEEP: list[Sweep] = [
    Sweep("coordinator", "/console/", "home-coordinator"),
    Sweep("coordinator", "/console/purpose", "purpose-coordinator"),
    Sweep("coordinator", "/console/referrals/{referral}", "referral-coordinator"),
    Sweep("referrer", "/console/", "home-referrer"),
    Sweep("referrer", "/console/purpose", "purpose-referrer"),
    Sweep("referrer", "/console/referrals/{referral}", "referral-referrer"),
    Sweep("caseworker", "/console/", "home-caseworker"),
    Sweep("caseworker", "/console/referrals/{referral}", "referral-caseworker"),
    Sweep("partner_reader", "/console/", "home-partner-reader"),
    Sweep("partner_reader", "/console/referrals/{referral}", "referral-partner-reader"),
    Sweep("auditor", "/console/", "home-auditor"),
    Sweep("auditor", "/console/purpose", "purpose-auditor"),
    Sweep("auditor", "/console/referrals/{referral}", "referral-auditor"),
    # The pages of each role (issue 16).
    Sweep("referrer", "/console/referrals/new", "referral-new"),
    Sweep("referrer", "/console/referrals/mine", "referrals-mine"),
    Sweep("caseworker", "/console/cases", "cases"),
    Sweep("caseworker", "/console/actions", "actions-caseworker"),
    Sweep("coordinator", "/console/worklist", "worklist"),
    Sweep("coordinator", "/console/referrals/{referral}/decide", "decide"),
    Sweep("coordinator", "/console/meetings", "meetings"),
    Sweep("coordinator", "/console/actions", "actions-coordinator"),
    Sweep("partner_reader", "/console/summaries", "summaries"),
    Sweep("auditor", "/console/audit/log", "audit-log"),
    Sweep("auditor", "/console/audit/subject-access", "audit-subject-access"),
    Sweep("auditor", "/console/audit/emergency", "audit-emergency"),
    Sweep("auditor", "/console/audit/processing", "audit-processing"),
    Sweep("referrer", "/console/agreements", "agreements-referrer"),
    Sweep("partner_reader", "/console/agreements", "agreements-partner-reader"),
    Sweep("auditor", "/console/agreements/demo-city", "agreement-demo-city"),
    Sweep("coordinator", "/console/meetings/new", "meeting-new"),
    Sweep("coordinator", "/console/referrals/{referral}/actions/new", "action-new"),
    Sweep("caseworker", "/console/referrals/{referral}/notes/new", "note-new"),
]


@dataclass
class Person:
    id: str
    password: str
    name: str
    agency: str
    roles: list[str]
    totp_secret: str | None = None
    totp_last_step: int = -1


@dataclass
class Console:
    """One running server seen through one browser: the demo people, their sessions, the page checks."""

    server: RunningServer
    browser: Browser
    people: dict[str, Person] = field(default_factory=dict)
    contexts: list[BrowserContext] = field(default_factory=list)
    sessions: dict[str, Page] = field(default_factory=dict)
    referrals: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for row in json.loads((self.server.data_dir / "demo-people.json").read_text()):
            self.people[row["id"]] = Person(row["id"], row["password"], row["name"], row["agency"], row["roles"])

    def url(self, path: str) -> str:
        return f"{self.server.base}{path}"

    def new_page(self, *, axe: bool = False, locale: str = "en-GB", viewport: dict[str, int] | None = None) -> Page:
        """A page in a context of its own (its own cookies). ``axe``: the page's CSP is bypassed so that
        axe-core can be injected; use it for the axe runs only."""
        context = self.browser.new_context(bypass_csp=axe, locale=locale, viewport=viewport or DESKTOP)  # type: ignore[arg-type]
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        return context.new_page()

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()
        self.sessions.clear()

    # Signing in -------------------------------------------------------------------------------

    def totp_code(self, person: Person) -> str:
        """The code of the current 30-second step, waiting for the next step when this one's was used
        (the server refuses a code twice)."""
        import pyotp

        assert person.totp_secret, f"{person.id} has not enrolled a second factor"
        totp = pyotp.TOTP(person.totp_secret)
        step = int(time.time()) // totp.interval
        if step <= person.totp_last_step:
            time.sleep((person.totp_last_step + 1) * totp.interval - time.time() + 0.2)
            step = int(time.time()) // totp.interval
        person.totp_last_step = step
        return totp.at(step * totp.interval)

    def totp_peek(self, person_id: str) -> str:
        """The current code, without using it up."""
        import pyotp

        secret = self.people[person_id].totp_secret
        return pyotp.TOTP(secret).now() if secret else ""

    def sign_in(self, page: Page, person_id: str, *,
                on_step: Callable[[Page, str], None] | None = None, accept_conduct: bool = True) -> None:
        """Sign in through the forms (enrolling or typing the second factor where the role needs it, accepting the
        code of conduct when it is asked for); lands on home. ``on_step(page, step)`` is called on each page on the
        way: "sign-in", "enrol", "second-factor"."""
        person = self.people[person_id]
        page.goto(self.url(f"{PREFIX}/sign-in"))
        if on_step:
            on_step(page, "sign-in")
        page.fill("#person", person.id)
        page.fill("#password", person.password)
        submit(page, "main form button[type=submit]")
        path = page.url.removeprefix(self.server.base)
        if path == f"{PREFIX}/sign-in/enrol":
            if on_step:
                on_step(page, "enrol")
            person.totp_secret = page.locator("#totp-secret").inner_text().strip()
            person.totp_last_step = -1
            self._type_code(page, person)
        elif path == f"{PREFIX}/sign-in/second-factor":
            if on_step:
                on_step(page, "second-factor")
            self._type_code(page, person)
        if accept_conduct and page.url.removeprefix(self.server.base).startswith(f"{PREFIX}/conduct"):
            submit(page, f"main form[action='{PREFIX}/conduct'] button[type=submit]")
        if accept_conduct:
            assert page.url == self.url(f"{PREFIX}/"), f"{person_id} did not land on home: {page.url}"

    def _type_code(self, page: Page, person: Person) -> None:
        page.fill("#code", self.totp_code(person))
        submit(page, "main form button[type=submit]")

    def choose_purpose(self, page: Page, purpose: str) -> None:
        """On the purpose page (opened here unless the page is on it already): the radio, then submit."""
        if not page.url.split("?", 1)[0].endswith(f"{PREFIX}/purpose"):
            page.goto(self.url(f"{PREFIX}/purpose"))
        page.check(f"input[name=purpose][value='{purpose}']")
        submit(page, "main form button[type=submit]")

    def switch_language(self, page: Page, language: str) -> None:
        """The header's language form: the select, then its button (back to the same page)."""
        page.select_option("#language-choice", language)
        submit(page, "form.language button[type=submit]")
        assert page.locator("html").get_attribute("lang") == language

    def session(self, role: str, *, on_step: Callable[[Page, str], None] | None = None,
                locale: str = "en-GB") -> Page:
        """The role's demo person, signed in with the role's purpose chosen, in an axe context (kept for the
        module: one sign-in per person)."""
        if role not in self.sessions:
            spec = ROLES[role]
            page = self.new_page(axe=True, locale=locale)
            self.sign_in(page, spec.person, on_step=on_step)
            self.choose_purpose(page, spec.purpose)
            assert page.url == self.url(f"{PREFIX}/")
            self.sessions[role] = page
        return self.sessions[role]

    def referral_for(self, role: str) -> str:
        """A referral the role's person may open (found through the API as the same agency's demo client)."""
        if role not in self.referrals:
            spec = ROLES[role]
            reply = httpx.get(self.url("/v1/referrals"), headers={
                "Authorization": f"Bearer {self.server.token(spec.client)}", "X-Purpose": spec.purpose})
            reply.raise_for_status()
            items = reply.json()["items"]
            assert items, f"{spec.client} sees no referral for {spec.purpose}"
            # the coordinator's: one still to decide, where there is one
            items.sort(key=lambda r: r.get("status") not in ("submitted", "triaged"))
            self.referrals[role] = str(items[0]["id"])
        return self.referrals[role]

    def path_of(self, entry: Sweep) -> str:
        return entry.path.replace("{referral}", self.referral_for(entry.role)) if "{referral}" in entry.path \
            else entry.path


def submit(page: Page, button: str) -> None:
    """Click a form's button and wait for the page it leads to."""
    with page.expect_navigation():
        page.locator(button).click()


# Checks on one page ---------------------------------------------------------------------------


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations (the page's context must bypass the CSP)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    result: dict[str, Any] = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: tags, resultTypes: ['violations']})", AXE_TAGS)
    return [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:8]:
            lines.append(f"    {node['target']}: {node.get('failureSummary', '').splitlines()[-1:]}")
    return "\n".join(lines)


def assert_accessible(page: Page, where: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe-core on {where} ({page.url}):\n{describe(violations)}"


def screenshot(page: Page, language: str, name: str) -> Path:
    path = SCREENSHOTS / language / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_direction(page: Page, language: str) -> None:
    html = page.locator("html")
    expected = "rtl" if language == "ar" else "ltr"
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == (language, expected), page.url
    if language == "ar":
        assert page.locator("html[dir=rtl][lang=ar]").count() == 1


# A Latin id or code as it appears on the pages: lower-case words joined by "-" or "_" (agency ids, purposes,
# vocabulary codes) or a prefixed id (ref_…).
LATIN_ID = re.compile(r"^(?:[a-z][a-z0-9]*(?:[-_][a-z0-9]+)+|ref_[A-Za-z0-9_-]+)$")


def ids_outside_bdi(page: Page, ids: list[str]) -> tuple[list[str], list[str]]:
    """Of the given ids, those in the page's text that are wrapped in <bdi> (or an ltr element), and those
    that are not."""
    found: list[list[str]] = page.evaluate(
        """(ids) => {
          const inside = [], outside = [];
          const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const text = node.textContent;
            const parent = node.parentElement;
            if (!parent || parent.closest('script, style, svg')) continue;
            for (const id of ids) {
              if (!text.includes(id)) continue;
              (parent.closest('bdi, [dir=ltr], code') ? inside : outside).push(id + ' in <' +
                parent.tagName.toLowerCase() + '> "' + text.trim().slice(0, 80) + '"');
            }
          }
          return [inside, outside];
        }""", ids)
    return found[0], found[1]


def assert_ids_in_bdi(page: Page, ids: list[str]) -> None:
    """In Arabic a Latin id is isolated (<bdi>): at least one is on the page, and none is left bare."""
    inside, outside = ids_outside_bdi(page, [i for i in ids if LATIN_ID.match(i)])
    assert inside, f"no Latin id in a <bdi> on {page.url} (looked for {ids})"
    assert not outside, f"Latin ids not isolated in <bdi> on {page.url}: {outside}"


def assert_fits(page: Page, width: int = NARROW["width"]) -> None:
    """No horizontal scroll at this width."""
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    if scroll <= width:
        return
    wide = page.evaluate("""(width) => Array.from(document.body.querySelectorAll('*'))
      .filter(e => { const r = e.getBoundingClientRect(); return r.right > width + 1 || r.left < -1; })
      .filter(e => !e.classList.contains('skip') && (!e.closest('.table-wrap') || e.classList.contains('table-wrap')))
      .slice(0, 6).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
        (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : '') +
        ' [' + Math.round(e.getBoundingClientRect().left) + '..' +
        Math.round(e.getBoundingClientRect().right) + ']')""",
        width)
    raise AssertionError(f"{page.url} scrolls sideways at {width} px: scrollWidth {scroll}; too wide: {wide}")


def assert_skip_link_first(page: Page) -> None:
    """From a fresh load (the page is loaded again), Tab reaches the skip link first, its focus is visible,
    and it leads to <main>."""
    page.goto(page.url)
    page.keyboard.press("Tab")
    focused = page.evaluate("""() => {
      const a = document.activeElement, s = getComputedStyle(a), r = a.getBoundingClientRect();
      return {tag: a.tagName, cls: a.className, href: a.getAttribute('href'), outline: s.outlineStyle,
              outlineWidth: parseFloat(s.outlineWidth), top: r.top, left: r.left, width: r.width, height: r.height,
              vw: window.innerWidth, vh: window.innerHeight};
    }""")
    assert (focused["tag"], focused["cls"], focused["href"]) == ("A", "skip", "#main"), \
        f"the first Tab stop on {page.url} is not the skip link: {focused}"
    assert focused["outline"] != "none" and focused["outlineWidth"] > 0, f"focus is not visible: {focused}"
    assert focused["width"] > 1 and focused["height"] > 1 and 0 <= focused["top"] < focused["vh"] \
        and focused["left"] >= 0 and focused["left"] + focused["width"] <= focused["vw"] + 1, \
        f"the focused skip link is not on screen: {focused}"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement && document.activeElement.id") == "main"
