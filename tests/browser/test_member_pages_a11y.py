"""The member's sign-in, second-factor, consent and error pages: axe finds nothing serious, at desktop and
phone width (375 px), and nothing scrolls sideways."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from openpayer.bootstrap import Services
from openpayer.oauth.testing import TEST_PASSWORD, pkce_pair, two_member_world

ENV = "sandbox"


def authorize(server: str, client_id: str, redirect: str) -> str:
    _, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": "launch/patient openid fhirUser offline_access patient/*.rs",
        "state": "a11y",
        "aud": f"{server}/{ENV}/fhir",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{server}/{ENV}/auth/authorize?{urlencode(query)}"


@pytest.mark.parametrize("viewport", ["page", "phone_page"])
def test_member_pages_are_accessible(
    server: str,
    services: Services,
    viewport: str,
    request: pytest.FixtureRequest,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    page = request.getfixturevalue(viewport)
    two_member_world(services, ENV)
    services.auth.members.enroll_totp(ENV, "member-b")
    redirect = f"{server}/app-callback"
    client_id, _ = services.auth.clients.register(
        ENV, name="A11y App", developer="A11y Inc.", redirect_uris=[redirect], public=True
    )

    page.goto(f"{server}/{ENV}/auth/authorize?client_id=nobody&redirect_uri=https://x.example/cb")
    expect(page.locator("h1")).to_have_count(1)  # the error page: no redirect to an unregistered URI
    assert_accessible(page)
    assert_fits_width(page)

    page.goto(authorize(server, client_id, redirect))
    assert_accessible(page)
    assert_fits_width(page)
    page.fill("input[name=username]", "member-a")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert_accessible(page)  # with the error shown
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("button[name=decision]")
    assert_accessible(page)
    assert_fits_width(page)

    page.context.clear_cookies()
    page.goto(authorize(server, client_id, redirect))
    page.fill("input[name=username]", "member-b")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=otp]")
    assert_accessible(page)
    assert_fits_width(page)
