"""The developer portal and the staff console in chromium: a developer signs up on a phone and gets to a
production request, a reviewer approves it on a desktop, the developer reveals the production credentials.
Every page on the way passes axe (no serious or critical violation) and fits the phone's width."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect
from tests.portal.conftest import mails_to
from typer.testing import CliRunner

from openpayer.app import Services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings

PASSWORD = "correct horse battery staple"


def last_link(services: Services, to: str) -> str:
    text = mails_to(services, to)[-1]
    found = re.search(r"https?://\S+", text)
    assert found, text
    return found.group(0)


def enrol(page: Any, services: Services) -> None:
    secret = page.locator("#totp-secret").inner_text()
    page.fill("#code", pyotp.TOTP(secret).at(services.auth.clock.now()))
    page.click("button[type=submit].primary")
    assert page.locator("h1").inner_text() == "Two-step sign-in is on"  # the recovery codes, shown once
    page.click("main a:has-text('Continue')")


def test_developer_and_reviewer_in_the_browser(
    server: str,
    page: Any,
    phone_page: Any,
    services: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    phone = phone_page

    def check(p: Any) -> None:
        expect(p.locator("h1")).to_have_count(1)
        assert_accessible(p)
        if p is phone:
            assert_fits_width(p)

    phone.goto(server + "/portal/signup")
    check(phone)
    phone.fill("#email", "dev@example-app.com")
    phone.fill("#password", PASSWORD)
    phone.click("text=Create account")
    assert phone.locator("h1").inner_text() == "Check your e-mail"
    phone.goto(last_link(services, "dev@example-app.com"))
    check(phone)
    phone.goto(server + "/portal/signin")
    check(phone)
    phone.fill("#email", "dev@example-app.com")
    phone.fill("#password", PASSWORD)
    phone.click("button[type=submit].primary")
    assert phone.locator("h1").inner_text() == "Your organizations"
    check(phone)
    phone.click("text=Set it up")
    check(phone)
    enrol(phone, services)

    phone.goto(server + "/portal/organizations/new")
    check(phone)
    for field, value in {
        "legal_name": "Example Health Apps, Inc.",
        "website": "https://example-app.com",
        "domain": "example-app.com",
        "address": "1 Main St, Springfield, IL",
        "technical_contact_name": "Tess Tech",
        "technical_contact_email": "tech@example-app.com",
        "security_contact_name": "Sam Secure",
        "security_contact_email": "security@example-app.com",
    }.items():
        phone.fill(f"#{field}", value)
    phone.click("text=Create organization")
    assert phone.locator("h1").inner_text() == "Example Health Apps, Inc."
    check(phone)

    phone.click("text=Register an application")
    check(phone)
    phone.fill("#name", "My Health Wallet")
    phone.fill("#description", "Shows members their claims.")
    phone.fill("#website", "https://example-app.com")
    phone.fill("#privacy_policy_url", "https://example-app.com/privacy")
    phone.fill("#support_email", "support@example-app.com")
    phone.fill("#redirect_uris", "https://example-app.com/callback")
    phone.check("input[value=confidential_secret]")
    phone.click("button[type=submit].primary")
    assert "shown only once" in phone.content()
    check(phone)
    assert phone.locator("#client-secret").inner_text()
    phone.click("text=Continue to the application")
    check(phone)
    app_url = phone.url

    phone.click("text=answer it")
    check(phone)
    for question in phone.locator("fieldset.question").all():
        question.locator("input[value=yes]").check()
    phone.fill("#q-data_shared", "No")
    phone.fill("#q-secondary_uses", "None")
    phone.fill("#q-device_data", "None")
    phone.fill("#q-revocation", "In Settings; data deleted within 30 days.")
    phone.fill("#q-breach_contact", "security@example-app.com")
    phone.fill("#q-monitoring_plan", "Alerts; a health check every 30 days.")
    phone.click("text=Save answers")
    assert phone.url == app_url
    phone.click("a >> text='accept'")
    check(phone)
    phone.check("input[name=agree]")
    phone.click("button[type=submit].primary")
    phone.goto(app_url)
    phone.click("text=Request production access")
    assert "A reviewer answers by" in phone.content()
    check(phone)

    # The reviewer: created from the command line, TOTP at first sign-in, then the queue.
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    created = CliRunner().invoke(
        cli_app, ["staff", "create", "--email", "appsec@plan.example", "--role", "appsec_reviewer", "--json"]
    )
    assert created.exit_code == 0, created.output
    password = json.loads(created.output)["temporary_password"]
    page.goto(server + "/admin/signin")
    check(page)
    page.fill("#email", "appsec@plan.example")
    page.fill("#password", password)
    page.click("button[type=submit].primary")
    check(page)
    enrol(page, services)
    assert page.locator("h1").inner_text() == "Production requests awaiting review"
    check(page)
    page.click("text=My Health Wallet")
    check(page)
    page.click("button[value=approve]")
    assert "approved" in page.locator("main").inner_text()

    phone.goto(app_url)
    phone.click("text=Reveal credentials")
    assert "production credentials" in phone.locator("h1").inner_text()
    assert phone.locator("#client-secret").inner_text()
    check(phone)
