"""The sign-in and consent pages in a real browser (Debian's chromium through Playwright)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pyotp

from openpayer.bootstrap import Services
from openpayer.oauth.testing import TEST_PASSWORD, pkce_pair, query_of, two_member_world

ENV = "sandbox"


def authorize_url(base: str, client_id: str, redirect: str, scope: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "scope": scope,
            "state": "browser-state",
            "aud": f"{base}/{ENV}/fhir",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{base}/{ENV}/auth/authorize?{query}", verifier


def test_sign_in_untick_and_allow(server: str, services: Services, browser_page: Any) -> None:
    page = browser_page
    world = two_member_world(services, ENV)
    redirect = f"{server}/app-callback"
    client_id, _ = services.auth.clients.register(
        ENV,
        name="Browser Wallet",
        developer="Wallet Inc.",
        privacy_policy_url="https://wallet.example/privacy",
        redirect_uris=[redirect],
        public=True,
    )
    url, verifier = authorize_url(
        server,
        client_id,
        redirect,
        "launch/patient openid fhirUser patient/Observation.read patient/Coverage.read",
    )
    page.goto(url)
    page.fill("input[name=username]", "member-a")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "incorrect" in page.inner_text("[role=alert]")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    assert page.inner_text("#app-name") == "Browser Wallet"
    assert page.inner_text("#developer") == "Wallet Inc."
    assert page.get_attribute("#privacy-policy", "href") == "https://wallet.example/privacy"
    assert "Insurance coverage" in page.content()
    page.uncheck("input[value='patient/Coverage.read']")
    with page.expect_navigation():
        page.click("button[name=decision][value=allow]")
    params = query_of(page.url)
    assert page.url.startswith(redirect)
    assert params["state"] == "browser-state"
    assert params["iss"] == f"{server}/{ENV}/auth"
    response = httpx.post(
        f"{server}/{ENV}/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": redirect,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["scope"] == "launch/patient openid fhirUser patient/Observation.read"
    assert tokens["patient"] == world["a"]


def test_second_factor_and_deny(server: str, services: Services, browser_page: Any) -> None:
    page = browser_page
    two_member_world(services, ENV)
    secret = services.auth.members.enroll_totp(ENV, "member-b")
    redirect = f"{server}/app-callback"
    client_id, _ = services.auth.clients.register(ENV, name="MFA App", redirect_uris=[redirect], public=True)
    url, _ = authorize_url(server, client_id, redirect, "launch/patient patient/*.read")
    page.goto(url)
    page.fill("input[name=username]", "member-b")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.fill("input[name=otp]", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text("[role=alert]")
    page.fill("input[name=otp]", pyotp.TOTP(secret).now())
    page.click("button[type=submit]")
    assert "All of your health plan records" in page.content()
    with page.expect_navigation():
        page.click("button[name=decision][value=deny]")
    assert query_of(page.url)["error"] == "access_denied"
