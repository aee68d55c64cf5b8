"""Password reset in chromium at phone width: "Forgot your password?" on the sign-in page, the mailed link
(read from the mail the email service recorded), a refused weak password, the new one, signing in with it,
and "Sign out everywhere". Every page passes axe and fits the phone's width."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import verified_developer
from tests.portal.conftest import mails_to

from openpayer.app import Services

OLD = "correct horse battery staple"
NEW = "a brand new passphrase for me"
DEV = "dev@example-app.com"


def test_a_developer_resets_the_password_on_a_phone(
    server: str,
    phone_page: Any,
    services: Services,
    check_phone_page: Callable[[str], None],
) -> None:
    verified_developer(services, DEV, OLD)
    phone, check = phone_page, check_phone_page

    phone.goto(server + "/portal/signin")
    check("Sign in")
    phone.click("text=Forgot your password?")
    check("Forgot your password?")
    phone.fill("#email", DEV)
    phone.click("text=Send the link")
    check("Check your e-mail")

    link = re.search(r"https?://\S+", mails_to(services, DEV)[-1])
    assert link
    phone.goto(link.group(0))
    check("Choose a new password")
    phone.fill("#password", "password123")
    phone.click("text=Set the new password")
    check("Choose a new password")
    assert "common or breached" in phone.locator("[role=alert]").inner_text()
    phone.fill("#password", NEW)
    phone.click("text=Set the new password")
    check("Password changed")

    phone.click("main a:has-text('Sign in')")
    check("Sign in")
    phone.fill("#email", DEV)
    phone.fill("#password", OLD)
    phone.click("button[type=submit].primary")
    assert "The e-mail address or password is wrong." in phone.locator("[role=alert]").inner_text()
    phone.fill("#email", DEV)
    phone.fill("#password", NEW)
    phone.click("button[type=submit].primary")
    check("Your organizations")
    phone.click("text=Sign out everywhere")
    check("Sign in")
    phone.goto(server + "/portal/organizations/new")
    assert phone.locator("h1").inner_text() == "Sign in"
