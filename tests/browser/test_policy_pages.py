"""The inactivity policy's pages in chromium: the signed "still in use" link of a notice on a phone, and the
console's policy pages (overview, one subscription, a pause) on a desktop. Every page passes axe (no
serious or critical violation); the phone's pages fit its width."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from tests.browser.test_portal_pages import enrol
from tests.portal.conftest import app_details, org_details
from typer.testing import CliRunner

from openpayer.app import Services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings


def subscriptions(services: Services) -> tuple[int, int]:
    portal = services.portal
    owner = portal.people.create("tess@example-app.com", "a long enough portal password").id
    organization = portal.organizations.create(
        owner,
        org_details(),
    )
    application, _ = portal.applications.register(
        owner,
        organization.id,
        app_details(
            redirect_uris=("https://example-app.com/callback",),
            client_type="public",
            scopes=("launch/patient", "patient/Patient.rs"),
        ),
    )
    production = portal.applications.subscribe_approved(application.id, "production")
    sandbox = portal.applications.subscription(application.id, "sandbox")
    assert sandbox is not None
    return sandbox.id, production.id


def test_the_notice_link_and_the_console_policy_pages(
    server: str,
    page: Any,
    phone_page: Any,
    services: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    sandbox, production = subscriptions(services)
    policy = services.policy
    day60 = policy.local_date(services.clock.now()) + timedelta(days=60)
    assert len(policy.sweep(day60)) == 2  # the first notices

    # The developer opens the link of the notice on a phone, then confirms.
    phone = phone_page
    phone.goto(f"{server}/policy/still-in-use?s={sandbox}&c=0&t={policy.sign(sandbox, 0)}")
    assert phone.locator("h1").inner_text() == "Is this integration still in use?"
    assert_accessible(phone)
    assert_fits_width(phone)
    phone.click("text=We still use this integration")
    assert phone.locator("h1").inner_text() == "Thank you"
    assert_accessible(phone)
    assert_fits_width(phone)
    phone.goto(f"{server}/policy/still-in-use?s={sandbox}&c=0&t=forged")
    phone.click("text=We still use this integration")
    assert phone.locator("h1").inner_text() == "This link is not valid"
    assert_accessible(phone)

    # Staff: an admin from the command line, TOTP at first sign-in, then the policy pages.
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    created = CliRunner().invoke(
        cli_app, ["staff", "create", "--email", "ana@plan.example", "--role", "support", "--json"]
    )
    assert created.exit_code == 0, created.output
    page.goto(server + "/admin/signin")
    page.fill("#email", "ana@plan.example")
    page.fill("#password", json.loads(created.output)["temporary_password"])
    page.click("button[type=submit].primary")
    enrol(page, services)
    page.goto(server + "/admin/policy")
    assert page.locator("h1").inner_text() == "Inactivity policy"
    assert_accessible(page)
    page.click(f"a[href='/admin/policy/{production}']")
    assert "first notice" in page.locator("#policy-state").inner_text()
    assert_accessible(page)
    page.fill("#until", (day60 + timedelta(days=90)).isoformat())
    page.fill("#reason", "open enrollment only")
    page.click("button:has-text('Pause')")
    assert page.locator("#policy-state").inner_text() == "paused"
    assert "the pause ends" in page.locator("#policy-next").inner_text()
    assert_accessible(page)
