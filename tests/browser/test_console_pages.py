"""The staff console's directory, audit, administration and report pages in chromium at phone width: an admin
signs in (password, TOTP), searches, opens each detail page (the organization's shows its remove form),
suspends a subscription with its form, adds a staff member, reads the audit log and the CMS report, and last
removes the organization with its form. Every page passes axe and fits the phone's width."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
from playwright.sync_api import expect
from tests.portal.console_world import developer_world

from openpayer.app import Services


def test_console_pages_in_the_browser(
    server: str,
    phone_page: Any,
    services: Services,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    world = developer_world(services)
    ops_id, _ = services.auth.clients.register(
        "sandbox", name="Ops reporting tool", redirect_uris=["https://ops.plan.example/cb"]
    )
    _, password = services.portal.actions.create_staff(None, email="admin@plan.example", role="admin")
    assert password
    phone = phone_page

    def visit(path: str) -> None:
        phone.goto(server + path)
        check()

    def check() -> None:
        expect(phone.locator("h1")).to_have_count(1)
        assert_accessible(phone)
        assert_fits_width(phone)

    visit("/admin/signin")
    phone.fill("#email", "admin@plan.example")
    phone.fill("#password", password)
    phone.click("button[type=submit].primary")
    secret = phone.locator("#totp-secret").inner_text()
    phone.fill("#code", pyotp.TOTP(secret).at(services.clock.now()))
    phone.click("button[type=submit].primary")
    assert phone.locator("h1").inner_text() == "Two-step sign-in is on"  # the recovery codes, shown once
    check()
    phone.click("main a:has-text('Continue')")
    assert "awaiting review" in phone.locator("h1").inner_text()
    check()

    phone.click("nav.console >> text=Organizations")
    phone.fill("#q", "example")
    phone.click("form.search button")
    check()
    phone.click("text=Example Health Apps, Inc.")
    expect(phone.locator("#reason-remove-organization")).to_be_visible()  # the admin's remove form
    check()
    phone.click("text=My Health Wallet")
    check()
    phone.click("td >> text=sandbox")
    check()
    assert "Last API call" in phone.content()
    phone.fill("#reason-suspend", "Unusual traffic")
    phone.click("button:has-text('Suspend')")
    assert "Suspended" in phone.locator("p.notice").inner_text()
    check()
    assert services.portal.applications.subscription_by_id(world.sandbox_subscription).status == "suspended"

    visit("/admin/applications?q=ops")
    phone.click("text=Ops reporting tool")
    assert f"/admin/clients/sandbox/{ops_id}" in phone.url
    check()
    visit("/admin/people?q=plan.example")
    phone.click("text=admin@plan.example")
    check()

    visit("/admin/staff")
    phone.fill("#email", "support@plan.example")
    phone.select_option("#role", "support")
    phone.click("button:has-text('Create')")
    assert phone.locator("#temporary-password").inner_text()
    check()
    visit("/admin/terms")
    visit("/admin/audit")
    visit("/admin/audit?event=auth:token:issued&env=sandbox")
    visit("/admin/audit/staff")
    assert "subscription:suspend" in phone.content()
    visit("/admin/reports/cms-usage?year=2026&env=sandbox")

    visit(f"/admin/organizations/{world.organization_id}")
    phone.fill("#reason-remove-organization", "Fraud report 9")
    phone.click("button:has-text('Remove organization')")
    assert "Removed: its subscriptions no longer work" in phone.locator("p.notice").inner_text()
    check()
    assert services.portal.organizations.get(world.organization_id).status == "removed"
