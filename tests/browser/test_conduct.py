"""The code of conduct in a real browser: after sign-in a person reads the network's code in their language and
accepts it before any case page; a case page opened first leads back to the code, and accepting goes on to it.
"""

from __future__ import annotations

import pytest
from browser.harness import PREFIX, ROLES, Console, assert_accessible, assert_direction, assert_fits, screenshot, submit
from playwright.sync_api import expect

pytestmark = pytest.mark.xdist_group("browser")
ACCEPT = f"main form[action='{PREFIX}/conduct'] button[type=submit]"


@pytest.mark.parametrize(("language", "role"), [("en", "referrer"), ("ar", "caseworker")])
def test_the_code_is_read_and_accepted_before_any_case(console: Console, language: str, role: str) -> None:
    spec = ROLES[role]
    page = console.new_page(axe=True, locale="ar" if language == "ar" else "en-GB")
    console.sign_in(page, spec.person, accept_conduct=False)
    assert page.url.split("?", 1)[0] == console.url(f"{PREFIX}/conduct")
    assert_direction(page, language)
    code = page.locator("section.conduct div[lang]")
    expect(code).to_have_attribute("lang", language)
    expect(code).to_have_attribute("dir", "rtl" if language == "ar" else "ltr")
    expect(code.locator("ol li")).to_have_count(6)
    assert_accessible(page, f"conduct ({language})")
    screenshot(page, language, "conduct")
    page.set_viewport_size({"width": 360, "height": 800})
    assert_fits(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    # A case page first: back to the code, which then leads on to that page (through the purpose).
    referral = f"{PREFIX}/referrals/{console.referral_for(role)}"
    page.goto(console.url(referral))
    assert page.url.split("?", 1)[0] == console.url(f"{PREFIX}/conduct")
    submit(page, ACCEPT)
    assert page.url.split("?", 1)[0] == console.url(f"{PREFIX}/purpose")
    console.choose_purpose(page, spec.purpose)
    assert page.url == console.url(referral)
    # Accepted once: home is home.
    page.goto(console.url(f"{PREFIX}/"))
    assert page.url == console.url(f"{PREFIX}/")
