"""Recovery codes in chromium at phone width: signing in with one in place of the authenticator's code, the
count left on the "Two-step sign-in" page, a new set made there (shown once), and an old code refused on the
page afterwards. Every page passes axe and fits the phone's width."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
from tests.browser.conftest import verified_developer
from tests.portal.conftest import mails_to

from openpayer.app import Services

PASSWORD = "correct horse battery staple"
DEV = "dev@example-app.com"


def test_a_developer_signs_in_with_a_recovery_code_on_a_phone(
    server: str,
    phone_page: Any,
    services: Services,
    check_phone_page: Callable[[str], None],
) -> None:
    people = services.portal.people
    person = verified_developer(services, DEV, PASSWORD)
    secret = people.new_totp_secret()
    old = people.confirm_totp(person, secret, pyotp.TOTP(secret).at(services.clock.now()))
    assert old is not None
    phone, check = phone_page, check_phone_page

    def password_step() -> None:
        phone.goto(server + "/portal/signin")
        phone.fill("#email", DEV)
        phone.fill("#password", PASSWORD)
        phone.click("button[type=submit].primary")
        check("Enter your authenticator code")

    password_step()
    phone.fill("#recovery_code", old[0])
    phone.click("button:has-text('Use a recovery code')")
    check("Your organizations")
    assert "Unused recovery codes left: 9." in mails_to(services, DEV)[-1]

    phone.click("header >> text=Two-step sign-in")
    check("Two-step sign-in")
    assert phone.locator("#recovery-codes-left").inner_text().startswith("9 unused recovery codes left.")
    phone.fill("#codes_password", PASSWORD)
    phone.fill("#codes_code", pyotp.TOTP(secret).at(services.clock.now()))
    phone.click("button:has-text('Make new recovery codes')")
    check("New recovery codes")
    new = phone.locator("#recovery-codes code").all_inner_texts()
    assert len(new) == 10
    assert not set(new) & set(old)
    phone.click("main a:has-text('Continue')")
    check("Your organizations")

    phone.click('header >> text="Sign out"')
    password_step()
    phone.fill("#recovery_code", old[1])
    phone.click("button:has-text('Use a recovery code')")
    check("Enter your authenticator code")
    assert "used already" in phone.locator("[role=alert]").inner_text()
    phone.fill("#recovery_code", new[1])
    phone.click("button:has-text('Use a recovery code')")
    check("Your organizations")
