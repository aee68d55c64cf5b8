"""The console's incident-response pages in chromium: an analyst on a phone works an incident (note,
suspension) and matches a queued breach alert; a desktop reads the at-risk list. Every page passes axe
(no serious or critical violation) and fits the phone's width."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pyotp
from playwright.sync_api import expect
from tests.incidents.conftest import STAFF_PASSWORD, register, staff_person

from openpayer.app import Services
from openpayer.incidents.breach import sign

SECRET = "browser-test-secret"


def deliver(server: str, body: bytes) -> httpx.Response:
    stamp = str(int(time.time()))
    headers = {"X-Timestamp": stamp, "X-Signature": sign(SECRET, stamp, body)}
    return httpx.post(f"{server}/security/alerts", content=body, headers=headers, timeout=30)


def sign_in(page: Any, server: str, services: Services, email: str) -> None:
    page.goto(server + "/admin/signin")
    page.fill("#email", email)
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit].primary")
    secret = page.locator("#totp-secret").inner_text()
    page.fill("#code", pyotp.TOTP(secret).at(services.clock.now()))
    page.click("button[type=submit].primary")
    assert page.locator("h1").inner_text() == "Two-step sign-in is on"  # the recovery codes, shown once
    page.click("main a:has-text('Continue')")
    assert page.locator("h1").inner_text() == "Production requests awaiting review"


def test_an_analyst_works_an_incident_and_the_breach_queue(
    server: str,
    page: Any,
    phone_page: Any,
    services: Services,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    services.incidents.breach.secret = SECRET
    registered = register(services)
    staff_person(services, "analyst@plan.example", "security_analyst")
    staff_person(services, "auditor@plan.example", "auditor")
    services.incidents.risk.flag(
        "sandbox",
        registered.client_id,
        "malicious_activity",
        {"detector": "credential_stuffing", "count": 412},
    )
    alert = {
        "alert_id": "rr-browser-1",
        "organization": {"name": "Example Health Apps", "domain": "example-apps.io"},
        "severity": "critical",
        "summary": "Credentials for an admin panel posted publicly",
        "collaboration_invite_url": "https://riskrecon.example/invite/xyz",
    }
    assert deliver(server, json.dumps(alert).encode()).json()["matched"] is False
    assert deliver(server, b"{broken").status_code == 422

    phone = phone_page

    def check(p: Any) -> None:
        expect(p.locator("h1")).to_have_count(1)
        assert_accessible(p)
        if p is phone:
            assert_fits_width(p)

    sign_in(phone, server, services, "analyst@plan.example")
    phone.click("nav.subnav >> text=At risk")
    check(phone)
    assert "credential_stuffing" in phone.content()
    phone.click("text=Open incident")
    assert phone.locator("h1").inner_text().startswith("Incident 1:")
    check(phone)
    phone.fill("#note", "Stuffing from 200 addresses through this app; contacting the developer.")
    phone.click("text=Add note")
    phone.fill("#act-reason", "credential stuffing in progress")
    phone.click("button[value=suspend]")
    timeline = phone.locator("ol.timeline").inner_text()
    assert "contacting the developer" in timeline
    assert "Suspended subscription" in timeline
    check(phone)
    phone.goto(server + "/admin/incidents")
    check(phone)

    phone.click("nav.subnav >> text=Breach alerts")
    check(phone)
    assert "the body is not JSON" in phone.content()
    phone.click("text=rr-browser-1")
    check(phone)
    phone.click("form[action$='/match'] button.primary")
    assert phone.locator("#alert-status").inner_text() == "matched"
    check(phone)

    sign_in(page, server, services, "auditor@plan.example")
    page.goto(server + "/admin/risk")
    check(page)
    assert page.locator("text=Clear").count() == 0  # an auditor reads, changes nothing
    page.goto(server + "/admin/incidents/1")
    check(page)
    assert page.locator("#note").count() == 0
