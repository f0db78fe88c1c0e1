"""Every console page in Chromium, in English and Arabic: axe-core (no serious or critical WCAG 2.1 AA
violation), right-to-left with ids isolated, no sideways scroll at 360 px, the skip link first on the
keyboard with a visible focus, and a full-page screenshot (test-artifacts/screenshots/<lang>/<name>.png).

The pages come from harness.SWEEP: one line per page. Each demo person signs in once per module
(with the second factor where the role needs one) and chooses the purpose of their job.
"""

from __future__ import annotations

import pytest
from browser.harness import (
    LANGUAGES,
    NARROW,
    PREFIX,
    ROLES,
    SWEEP,
    Console,
    Sweep,
    assert_accessible,
    assert_direction,
    assert_fits,
    assert_ids_in_bdi,
    assert_skip_link_first,
    screenshot,
    submit,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.xdist_group("browser")


def check_page(console: Console, page: Page, language: str, name: str, *, ids: list[str] | None = None,
               keyboard: bool = True) -> None:
    """Everything a page must pass, in the language it is shown in; its screenshots (wide and 360 px)."""
    assert_direction(page, language)
    assert_accessible(page, f"{name} ({language})")
    screenshot(page, language, name)
    if language == "ar" and ids:
        assert_ids_in_bdi(page, ids)
    wide = page.viewport_size
    page.set_viewport_size(NARROW)
    try:
        screenshot(page, language, f"{name}-360")  # first: a failure below has its picture
        assert_fits(page)
    finally:
        page.set_viewport_size(wide or {"width": 1280, "height": 900})
    if keyboard:
        assert_skip_link_first(page)


def ids_of(console: Console, role: str) -> list[str]:
    """Latin ids that may be on the role's pages (each must be in a <bdi> in Arabic)."""
    spec = ROLES[role]
    person = console.people[spec.person]
    return [spec.purpose, person.agency, console.referral_for(role)]


def in_language(console: Console, page: Page, language: str) -> None:
    if page.locator("html").get_attribute("lang") != language:
        console.switch_language(page, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sign_in_page(console: Console, language: str) -> None:
    page = console.new_page(axe=True, locale="ar" if language == "ar" else "en-GB")
    page.goto(console.url(f"{PREFIX}/sign-in"))
    check_page(console, page, language, "sign-in")
    # A failed sign-in: the message is announced and tied to the field.
    page.fill("#person", "nobody-here")
    page.fill("#password", "not the password at all")
    submit(page, "main form button[type=submit]")
    expect(page.locator("#sign-in-error[role=alert]")).to_be_visible()
    assert page.locator("#person").get_attribute("aria-describedby") == "sign-in-error"
    check_page(console, page, language, "sign-in-error", keyboard=False)


def test_the_language_switch_on_the_sign_in_page(console: Console) -> None:
    page = console.new_page(locale="en-GB")
    page.goto(console.url(f"{PREFIX}/sign-in"))
    assert_direction(page, "en")
    console.switch_language(page, "ar")
    assert_direction(page, "ar")
    assert page.url == console.url(f"{PREFIX}/sign-in")
    assert page.locator("#language-choice").input_value() == "ar"
    console.switch_language(page, "en")
    assert_direction(page, "en")


@pytest.mark.parametrize("role", list(ROLES))
def test_each_person_signs_in_lands_on_home_and_chooses_a_purpose(console: Console, role: str) -> None:
    """The coordinator enrols a second factor in English, the auditor in Arabic; the others need none."""
    spec = ROLES[role]
    person = console.people[spec.person]
    language = "ar" if role == "auditor" else "en"
    steps: list[str] = []

    def on_step(page: Page, step: str) -> None:
        steps.append(step)
        if step == "enrol":
            expect(page.locator("#totp-secret")).to_have_attribute("dir", "ltr")
            expect(page.locator("figure.qr svg")).to_be_visible()
            check_page(console, page, language, "enrol", keyboard=False)

    page = console.new_page(axe=True, locale="ar" if language == "ar" else "en-GB")
    console.sign_in(page, person.id, on_step=on_step)
    assert steps == (["sign-in", "enrol"] if role in ("coordinator", "auditor") else ["sign-in"])
    assert_direction(page, language)
    expect(page.locator("h1")).to_contain_text(person.name)
    expect(page.locator("header .who")).to_contain_text(person.name)
    # No purpose yet: a case page sends the person to choose one, then back.
    referral = console.url(f"{PREFIX}/referrals/{console.referral_for(role)}")
    page.goto(referral)
    assert page.url.split("?", 1)[0] == console.url(f"{PREFIX}/purpose")
    assert page.locator("input[type=radio][name=purpose]").count() >= 1
    console.choose_purpose(page, spec.purpose)
    assert page.url == referral
    expect(page.locator("header .purpose bdi")).to_have_text(spec.purpose)
    expect(page.locator("h1 bdi.id")).to_have_text(console.referral_for(role))
    page.goto(console.url(f"{PREFIX}/"))
    console.sessions[role] = page  # the sweep goes on with this session


SWEEP_CASES = [(language, entry) for language in LANGUAGES for entry in SWEEP]


@pytest.mark.parametrize(("language", "entry"), SWEEP_CASES, ids=[f"{lang}-{e.name}" for lang, e in SWEEP_CASES])
def test_sweep(console: Console, language: str, entry: Sweep) -> None:
    page = console.session(entry.role)
    in_language(console, page, language)
    path = console.path_of(entry)
    response = page.goto(console.url(path))
    assert response is not None
    if entry.pending and response.status == 404:
        pytest.skip(f"{path} answers 404: not built yet")
    assert response.status == 200, f"{path} answered {response.status}"
    assert page.url == console.url(path), f"{path} went to {page.url}"
    assert page.locator("h1").count() == 1, f"{path} has not exactly one <h1>"
    check_page(console, page, language, entry.name, ids=ids_of(console, entry.role))


@pytest.mark.parametrize(("role", "language"), [("coordinator", "en"), ("auditor", "ar")])
def test_the_second_factor_page(console: Console, role: str, language: str) -> None:
    """A second sign-in asks for the code; a wrong one is refused with an announced message."""
    spec = ROLES[role]
    # Enrolled (normally already, by the test above); the language the person chose is remembered for
    # their next sign-in: the second-factor page is in it.
    in_language(console, console.session(role), language)
    steps: list[str] = []

    def on_step(page: Page, step: str) -> None:
        steps.append(step)
        if step == "second-factor":
            check_page(console, page, language, "second-factor")
            page.fill("#code", "000000" if console.totp_peek(spec.person) != "000000" else "111111")
            submit(page, "main form button[type=submit]")
            assert page.url == console.url(f"{PREFIX}/sign-in/second-factor")
            expect(page.locator("#code-error[role=alert]")).to_be_visible()
            check_page(console, page, language, "second-factor-error", keyboard=False)

    page = console.new_page(axe=True, locale="ar" if language == "ar" else "en-GB")
    console.sign_in(page, spec.person, on_step=on_step)
    assert steps == ["sign-in", "second-factor"]
    expect(page.locator("h1")).to_contain_text(console.people[spec.person].name)
