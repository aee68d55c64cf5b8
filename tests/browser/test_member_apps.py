"""The member's pages in chromium: the consent page with an app's attestations, the connected-apps page and
its disconnect (the app's token stops at once), the app gallery and the education page. Every page passes
axe (no serious or critical violation), fits a phone's width (375 px), and every form carries CSRF."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import expect
from tests.portal.conftest import ANSWERS, app_details, org_details
from tests.portal.test_validation import png

from openpayer.bootstrap import Services
from openpayer.oauth.testing import TEST_PASSWORD, pkce_pair, query_of, two_member_world

# Generous timeouts: the machine running the tests may be busy (the default is 5 s).
http_get = partial(httpx.get, timeout=120)
http_post = partial(httpx.post, timeout=120)

ENV = "sandbox"
OWNER, ADMIN = 1001, 2001
SCOPE = "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Coverage.rs"


def approved_app(services: Services, redirect: str) -> str:
    """A portal application with answers, approved for production; returns its sandbox client id."""
    portal = services.portal
    org = portal.organizations.create(OWNER, org_details())
    details = app_details(redirect_uris=(redirect,), client_type="public")
    application, sandbox = portal.applications.register(OWNER, org.id, details, logo=png(64, 64))
    portal.questionnaire.answer(OWNER, application.id, {**ANSWERS, "data_shared": "With Acme Metrics."})
    portal.terms.accept(OWNER, org.id, portal.terms.current().version)
    request = portal.reviews.submit(OWNER, application.id)
    portal.staff.create(None, account_id=ADMIN, email="admin@plan.example", role="admin")
    portal.reviews.approve(ADMIN, request.id)
    return sandbox.client_id


def forms_carry_csrf(page: Any) -> None:
    posts = page.locator("form[method=post]")
    assert posts.count() == page.locator("form[method=post] input[name=csrf_token]").count()
    for value in page.locator("input[name=csrf_token]").all():
        assert len(value.get_attribute("value") or "") >= 32


@pytest.mark.parametrize("viewport", ["phone_page", "page"])
def test_consent_connected_apps_gallery_and_education(
    server: str,
    services: Services,
    viewport: str,
    request: pytest.FixtureRequest,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    page = request.getfixturevalue(viewport)

    def check(heading: str) -> None:
        assert heading in page.locator("h1").inner_text()
        expect(page.locator("h1")).to_have_count(1)
        assert_accessible(page)
        assert_fits_width(page)
        forms_carry_csrf(page)

    world = two_member_world(services, ENV)
    redirect = f"{server}/app-callback"
    client_id = approved_app(services, redirect)
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": SCOPE,
        "state": "members",
        "aud": f"{server}/{ENV}/fhir",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto(f"{server}/{ENV}/auth/authorize?{urlencode(query)}")
    page.fill("input[name=username]", "member-a")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")

    check("Allow My Health Wallet")
    assert page.inner_text("#developer") == "Example Health Apps, Inc."
    statements = page.inner_text("#attestations")
    assert "Says it does not sell your data." in statements
    assert "Note: May share your data with others: With Acme Metrics." in statements
    assert "Signed in as member-a" in page.inner_text("#signed-in-as")
    assert "until" in page.inner_text("#duration")
    page.uncheck("#choice-offline")
    with page.expect_navigation():
        page.click("button[name=decision][value=allow]")
    code = query_of(page.url)["code"]
    tokens = http_post(
        f"{server}/{ENV}/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    ).json()
    assert "refresh_token" not in tokens  # offline access declined
    fhir = f"{server}/{ENV}/fhir/Observation"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http_get(fhir, headers=headers).status_code == 200

    page.goto(f"{server}/{ENV}/auth/account")
    check("Apps connected to your data")
    entry = page.locator(f"li[data-client-id='{client_id}']")
    assert "Lab results, vital signs and other observations" in entry.inner_text()
    assert "Not used yet" not in entry.inner_text()

    page.goto(f"{server}/{ENV}/auth/apps")
    check("Apps you can connect")
    card = page.locator(f"#gallery li[data-client-id='{client_id}']")
    assert "Connected" in card.inner_text()
    assert "Example Health Apps, Inc." in card.inner_text()
    assert card.locator("img.app-logo").evaluate("img => img.naturalWidth") == 64

    page.goto(f"{server}/{ENV}/auth/education")
    check("Choosing a health app")
    assert "Federal Trade Commission" in page.locator("main").inner_text()

    page.goto(f"{server}/{ENV}/auth/account")
    with page.expect_navigation():
        page.click(f"li[data-client-id='{client_id}'] button.danger")
    check("Apps connected to your data")
    assert page.locator("#no-connections").is_visible()
    assert http_get(fhir, headers=headers).status_code == 401  # the token stopped at once

    page.click("#sign-out")
    check("You have signed out")
    page.goto(f"{server}/{ENV}/auth/account")
    check("Sign in to see the apps")
    assert world["a"]
