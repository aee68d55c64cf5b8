"""Replacing the authenticator while signed in, in chromium at phone width: the header's "Two-step sign-in"
link, a wrong current code refused on the page, the new key shown and confirmed, and signing in again with a
code from the new authenticator. Every page passes axe and fits the phone's width."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
from tests.browser.conftest import verified_developer
from tests.portal.conftest import mails_to

from openpayer.app import Services

PASSWORD = "correct horse battery staple"
DEV = "dev@example-app.com"


def test_a_developer_replaces_the_authenticator_on_a_phone(
    server: str,
    phone_page: Any,
    services: Services,
    check_phone_page: Callable[[str], None],
) -> None:
    people = services.portal.people
    person = verified_developer(services, DEV, PASSWORD)
    old = people.new_totp_secret()
    assert people.confirm_totp(person, old, pyotp.TOTP(old).at(services.clock.now()))
    phone, check = phone_page, check_phone_page

    def now(secret: str) -> str:
        return pyotp.TOTP(secret).at(services.clock.now())

    phone.goto(server + "/portal/signin")
    phone.fill("#email", DEV)
    phone.fill("#password", PASSWORD)
    phone.click("button[type=submit].primary")
    phone.fill("#code", now(old))
    phone.click("button[type=submit].primary")
    check("Your organizations")
    phone.click("header >> text=Two-step sign-in")
    check("Two-step sign-in")

    phone.fill("#current_password", PASSWORD)
    phone.fill("#code", "000000" if now(old) != "000000" else "111111")
    phone.click("button:has-text('Replace the authenticator')")
    check("Two-step sign-in")
    assert "not right" in phone.locator("[role=alert]").inner_text()

    phone.fill("#current_password", PASSWORD)
    phone.fill("#code", now(old))
    phone.click("button:has-text('Replace the authenticator')")
    check("Add the new authenticator")
    secret = phone.locator("#totp-secret").inner_text()
    assert secret != old
    phone.fill("#code", now(secret))
    phone.click("button:has-text('Use the new authenticator')")
    check("Authenticator replaced")
    assert "was just replaced" in mails_to(services, DEV)[-1]

    phone.click("main a:has-text('Continue')")
    check("Your organizations")  # still signed in
    phone.click('header >> text="Sign out"')
    phone.fill("#email", DEV)
    phone.fill("#password", PASSWORD)
    phone.click("button[type=submit].primary")
    check("Enter your authenticator code")
    phone.fill("#code", now(secret))
    phone.click("button[type=submit].primary")
    check("Your organizations")
