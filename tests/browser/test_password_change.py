"""Changing the password while signed in, in chromium at phone width: the header's "Change password" link,
a wrong current password refused on the page, the change confirmed, and signing in again with the new
password. Every page passes axe and fits the phone's width."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.browser.conftest import verified_developer
from tests.portal.conftest import mails_to

from openpayer.app import Services

OLD = "correct horse battery staple"
NEW = "a brand new passphrase for me"
DEV = "dev@example-app.com"


def test_a_developer_changes_the_password_on_a_phone(
    server: str,
    phone_page: Any,
    services: Services,
    check_phone_page: Callable[[str], None],
) -> None:
    verified_developer(services, DEV, OLD)
    phone, check = phone_page, check_phone_page

    phone.goto(server + "/portal/signin")
    phone.fill("#email", DEV)
    phone.fill("#password", OLD)
    phone.click("button[type=submit].primary")
    check("Your organizations")
    phone.click("header >> text=Change password")
    check("Change your password")

    phone.fill("#current_password", "not my password")
    phone.fill("#new_password", NEW)
    phone.fill("#confirm_password", NEW)
    phone.click("text=Change the password")
    check("Change your password")
    assert phone.locator("[role=alert]").inner_text() == "The current password is wrong."

    phone.fill("#current_password", OLD)
    phone.fill("#new_password", NEW)
    phone.fill("#confirm_password", NEW)
    phone.click("text=Change the password")
    check("Password changed")
    assert "was just changed by someone signed in" in mails_to(services, DEV)[-1]

    phone.click("main a:has-text('Continue')")
    check("Your organizations")  # still signed in
    phone.click('header >> text="Sign out"')
    phone.fill("#email", DEV)
    phone.fill("#password", NEW)
    phone.click("button[type=submit].primary")
    check("Your organizations")
