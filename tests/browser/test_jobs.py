"""Each role does its job end to end in Chromium, with the pages' real Content-Security-Policy, in English and
then in Arabic: a referral goes round the network and every page shows what its reader may see, and no more.

The referrer refers a person from the form; the coordinator finds the referral on the work list and triages,
accepts and assigns it; the referrer's list shows each step (the closed loop); the assigned caseworker finds
the case and adds a note; the partner reader's summaries and the auditor's log, report and agreements never
carry the narrative or the family name; the auditor answers a subject-access request for the person.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from browser.harness import PREFIX, ROLES, Console, assert_direction, assert_ids_in_bdi, screenshot, submit
from playwright.sync_api import Page, expect

from app.console import i18n
from app.vocabularies.catalog import vocabularies

pytestmark = pytest.mark.xdist_group("browser")

# What only the referral's full view holds: neither may reach the partner reader or the auditor.
MARKERS = {"en": ("Browser-narrative-marker-en", "Mansour-Browserperson"),
           "ar": ("Browser-narrative-marker-ar", "منصور-متصفح")}


def label(vocabulary: str, code: str, language: str) -> str:
    return vocabularies()[vocabulary].label(code, [language])


def said(text: str, language: str) -> str:
    """A console string as the page shows it in the language."""
    return i18n.translations(language).gettext(text)


@pytest.fixture(scope="module")
def people(console: Console) -> Iterator[dict[str, Page]]:
    """Each role's demo person signed in (the second factor where needed), purpose chosen, CSP enforced."""
    pages: dict[str, Page] = {}
    for role, spec in ROLES.items():
        page = console.new_page()
        console.sign_in(page, spec.person)
        console.choose_purpose(page, spec.purpose)
        pages[role] = page
    yield pages


def go(console: Console, page: Page, path: str) -> None:
    page.goto(console.url(path))
    assert page.url.split("?")[0] == console.url(path.split("?")[0]), page.url


def refer(console: Console, page: Page, language: str) -> str:
    """The referrer fills the new-referral form and sends it; the referral's id (from the page it lands on)."""
    narrative, family = MARKERS[language]
    go(console, page, f"{PREFIX}/referrals/new")
    assert_direction(page, language)
    for field, value in (("subject-given_name", "Rami"), ("subject-family_name", family),
                         ("subject-date_of_birth", "2010-05-02"), ("subject-gender", "male"),
                         ("subject-district", "al-mina"), ("concerns", ["online_radicalisation_exposure"]),
                         ("vulnerability_factors", ["social_isolation"]), ("protective_factors", ["supportive_family"]),
                         ("risk_level", "medium"), ("urgency", "routine"), ("consent-status", "given"),
                         ("consent-recorded_by", "school counsellor"), ("requested_services", ["mentoring"]),
                         ("intervention_type", "individual_mentoring"), ("narrative", narrative)):
        enter(page, f"#f-{field}", value)
    screenshot(page, language, "job-referral-form-filled")
    submit(page, "main form button[type=submit]")
    found = re.search(r"/console/referrals/(ref_[A-Za-z0-9_-]+)", page.url)
    assert found, page.url
    expect(page.locator("p.message.ok")).to_have_text(said("The referral was sent.", language))
    assert narrative in page.content()  # the referrer's own referral, in full
    return found.group(1)


def enter(page: Page, selector: str, value: str | list[str]) -> None:
    """Type into a text field or pick from a list, whichever the form built for the schema's field."""
    field = page.locator(selector)
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value if isinstance(value, str) else value[0])


def decide(console: Console, page: Page, referral: str, step: str, *, agencies: tuple[str, ...] = ()) -> None:
    go(console, page, f"{PREFIX}/referrals/{referral}/decide")
    page.check(f"#to-{step}")
    for agency in agencies:
        page.check(f"#agency-{agency}")
    submit(page, "form:has(input[name=to]) button[type=submit]")
    assert page.locator("p.message.error").count() == 0, page.locator("main").inner_text()


def status_shown(console: Console, page: Page, referral: str, status: str, language: str) -> None:
    go(console, page, f"{PREFIX}/referrals/mine")
    row = page.locator("tr", has=page.locator(f"text={referral}"))
    expect(row.first).to_contain_text(label("referral_status", status, language))


def subject_of(console: Console, referral: str) -> str:
    token = console.server.token(ROLES["referrer"].client)
    reply = httpx.get(console.url(f"/v1/referrals/{referral}"), headers={
        "Authorization": f"Bearer {token}", "X-Purpose": ROLES["referrer"].purpose})
    reply.raise_for_status()
    return str(reply.json()["subject"]["id"])


def never_shown(page: Page, language: str) -> None:
    html = page.content()
    for marker in MARKERS[language]:
        assert marker not in html, f"{marker!r} on {page.url}"


@pytest.mark.parametrize("language", ["en", "ar"])
def test_a_referral_goes_round_the_network(console: Console, people: dict[str, Page], language: str) -> None:
    if language == "ar":
        for page in people.values():
            go(console, page, f"{PREFIX}/")
            console.switch_language(page, "ar")
    referrer, coordinator = people["referrer"], people["coordinator"]
    caseworker, partner, auditor = people["caseworker"], people["partner_reader"], people["auditor"]

    referral = refer(console, referrer, language)
    status_shown(console, referrer, referral, "submitted", language)

    go(console, coordinator, f"{PREFIX}/worklist")
    assert_direction(coordinator, language)
    expect(coordinator.locator("main")).to_contain_text(referral)
    if language == "ar":
        assert_ids_in_bdi(coordinator, [referral])
    screenshot(coordinator, language, "job-worklist")
    decide(console, coordinator, referral, "triaged")
    decide(console, coordinator, referral, "accepted")
    decide(console, coordinator, referral, "assigned", agencies=("city-social-services", "youth-ngo-bridges"))
    status_shown(console, referrer, referral, "assigned", language)  # the closed loop
    screenshot(referrer, language, "job-referrals-mine")

    go(console, caseworker, f"{PREFIX}/cases")
    expect(caseworker.locator("main")).to_contain_text(referral)
    go(console, caseworker, f"{PREFIX}/referrals/{referral}/notes/new")
    caseworker.fill("main form textarea", f"First visit planned ({language}).")
    submit(caseworker, "main form button[type=submit]")
    expect(caseworker.locator("p.message.ok")).to_have_text(said("The note was added.", language))

    go(console, partner, f"{PREFIX}/summaries")
    assert_direction(partner, language)
    expect(partner.locator("main")).to_contain_text(referral)  # assigned to the youth NGO, consent given
    never_shown(partner, language)
    screenshot(partner, language, "job-summaries")

    subject = subject_of(console, referral)
    go(console, auditor, f"{PREFIX}/audit/log")
    expect(auditor.locator("main")).to_contain_text(said("verified", language))
    never_shown(auditor, language)
    go(console, auditor, f"{PREFIX}/audit/subject-access")
    auditor.fill("#subject-id", subject)
    submit(auditor, "main form button[type=submit]")
    expect(auditor.locator("#recipients")).to_contain_text("Bridges Youth NGO")
    never_shown(auditor, language)
    screenshot(auditor, language, "job-subject-access")
    go(console, auditor, f"{PREFIX}/agreements/demo-city")
    never_shown(auditor, language)
