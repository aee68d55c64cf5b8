"""The member's side of issue 10 over HTTP: the consent page's attestations, notice and choices; the
connected-apps page and revocation (the app's tokens stop at once); the app gallery; member education."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.portal.conftest import ANSWERS, app_details, org_details
from tests.portal.test_validation import png

from openpayer.accounts.sessions import SESSION_COOKIE
from openpayer.app import create_app
from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, hidden, query_of

ENV = "sandbox"
PROD = "production"
REDIRECT = "https://example-app.com/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Coverage.rs"
OWNER, ADMIN = 1001, 2001


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def portal_app(services: Services, *, approve: bool, answers: dict[str, str] | None = None) -> dict[str, Any]:
    """A public application registered through the portal (sandbox at once); with `approve`, its production
    request approved and its production client id revealed."""
    portal = services.portal
    org = portal.organizations.create(OWNER, org_details())
    details = app_details(redirect_uris=(REDIRECT,), client_type="public")
    application, sandbox = portal.applications.register(OWNER, org.id, details, logo=png(64, 64))
    found: dict[str, Any] = {"application": application, "sandbox": sandbox.client_id}
    if answers is not None or approve:
        portal.questionnaire.answer(OWNER, application.id, answers or ANSWERS)
    if approve:
        portal.terms.accept(OWNER, org.id, portal.terms.current().version)
        request = portal.reviews.submit(OWNER, application.id)
        portal.staff.create(None, account_id=ADMIN, email="admin@plan.example", role="admin")
        _, subscription = portal.reviews.approve(ADMIN, request.id)
        found["production"] = portal.applications.reveal_credentials(OWNER, subscription.id).client_id
    return found


def consent_page(app: SmartApp, scope: str = SCOPE, username: str = "member-a") -> Any:
    page = app.authorize(scope)
    if 'name="decision"' in page.text:
        return page
    return app.sign_in(page.text, username, TEST_PASSWORD)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---- the consent page ----------------------------------------------------------------------------------
def test_consent_shows_the_attestations_in_plain_language(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    answers = {**ANSWERS, "data_shared": "With our analytics partner, Acme Metrics."}
    found = portal_app(services, approve=False, answers=answers)
    page = consent_page(SmartApp(client, found["sandbox"], REDIRECT))
    text = text_of(page.text)
    assert "Example Health Apps, Inc." in text  # the developer organization
    assert "Says it does not sell your data." in text
    assert "Note: May share your data with others: With our analytics partner, Acme Metrics." in text
    assert "Encrypts your data where it stores it." in text
    assert "has not answered" not in text
    assert "Signed in as member-a" in text
    assert re.search(r"until \d{1,2} \w+ 20\d\d", text)  # how long offline access lasts, as a date
    assert "60 minutes" in text


def test_consent_says_when_the_app_has_not_attested(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(
        ENV, name="Operator App", developer="Ops Inc.", redirect_uris=[REDIRECT], public=True
    )
    text = text_of(consent_page(SmartApp(client, client_id, REDIRECT)).text)
    assert "This app has not answered Your health plan's privacy and security questions." in text
    assert "Ops Inc." in text
    # An app registered in the portal without answers gets the same notice.
    found = portal_app(services, approve=False)
    client.cookies.clear()
    text = text_of(consent_page(SmartApp(client, found["sandbox"], REDIRECT)).text)
    assert "has not answered" in text


def test_identity_and_offline_access_can_be_declined(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    app = SmartApp(client, client_id, REDIRECT)
    page = consent_page(app)
    assert 'value="openid fhirUser"' in page.text
    assert 'value="offline_access"' in page.text
    back = app.consent(page.text, untick=("openid fhirUser", "offline_access"))
    assert back.status_code == 303, back.text
    tokens = app.exchange(query_of(back.headers["location"])["code"]).json()
    assert tokens["scope"] == "launch/patient patient/Observation.rs patient/Coverage.rs"
    assert "refresh_token" not in tokens
    assert "id_token" not in tokens
    # Keeping identity but not offline access: an ID token, still no refresh token.
    back = app.consent(consent_page(app).text, untick=("offline_access",))
    tokens = app.exchange(query_of(back.headers["location"])["code"]).json()
    assert "id_token" in tokens
    assert "refresh_token" not in tokens


@pytest.mark.parametrize(
    ("scope", "untick"),
    [
        (SCOPE, ("openid fhirUser", "offline_access", "patient/Observation.rs", "patient/Coverage.rs")),
        (SCOPE, ("patient/Observation.rs", "patient/Coverage.rs")),  # identity alone is not shared
        ("openid fhirUser", ("openid fhirUser",)),  # an identity-only request, identity unticked
    ],
)
def test_unticking_everything_is_access_denied(
    client: TestClient, services: Services, world: dict[str, str], scope: str, untick: tuple[str, ...]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    app = SmartApp(client, client_id, REDIRECT)
    back = app.consent(consent_page(app, scope).text, untick=untick)
    params = query_of(back.headers["location"])
    assert params["error"] == "access_denied"
    assert "code" not in params


# ---- connected apps and revocation ---------------------------------------------------------------------
def test_connected_apps_lists_and_revocation_stops_the_tokens_at_once(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    found = portal_app(services, approve=False, answers=ANSWERS)
    app = SmartApp(client, found["sandbox"], REDIRECT)
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    assert client.get(f"/{ENV}/fhir/Observation", headers=bearer(tokens["access_token"])).status_code == 200

    page = client.get(f"/{ENV}/auth/account")  # the session of the authorize flow
    assert page.status_code == 200
    text = text_of(page.text)
    assert "My Health Wallet" in text
    assert "Example Health Apps, Inc." in text
    assert "Lab results, vital signs and other observations: read and search" in text
    assert "Insurance coverage: read and search" in text
    assert "Who you are" in text
    assert "Not used yet" not in text  # the FHIR read above is its last use
    assert "Signed in as member-a" in text

    form = hidden(page.text)
    missing_csrf = client.post(f"/{ENV}/auth/account/revoke", data={"client_id": found["sandbox"]})
    assert missing_csrf.status_code == 403
    assert client.get(f"/{ENV}/fhir/Observation", headers=bearer(tokens["access_token"])).status_code == 200

    revoked = client.post(
        f"/{ENV}/auth/account/revoke",
        data={"csrf_token": form["csrf_token"], "client_id": found["sandbox"], "return_to": "account"},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert revoked.headers["location"] == f"/{ENV}/auth/account"
    after = client.get(f"/{ENV}/fhir/Observation", headers=bearer(tokens["access_token"]))
    assert after.status_code == 401
    assert app.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert "No app is connected to your data." in client.get(f"/{ENV}/auth/account").text
    events = [e["event"] for e in services.auth.audit.events(ENV)]
    assert "auth:consent:revoke" in events


def test_a_member_revokes_only_their_own_connections(
    client: TestClient, settings: Settings, services: Services, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    tokens = SmartApp(client, client_id, REDIRECT).launch(SCOPE, "member-a", TEST_PASSWORD)
    with TestClient(create_app(settings, services=services), base_url="http://testserver") as other:
        signin = other.get(f"/{ENV}/auth/account/signin")
        signed_in = other.post(
            f"/{ENV}/auth/account/signin",
            data={**hidden(signin.text), "username": "member-b", "password": TEST_PASSWORD},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        page = other.get(f"/{ENV}/auth/account")
        assert "No app is connected to your data." in page.text
        other.post(
            f"/{ENV}/auth/account/revoke",
            data={"csrf_token": hidden(page.text)["csrf_token"], "client_id": client_id},
        )
    assert client.get(f"/{ENV}/fhir/Observation", headers=bearer(tokens["access_token"])).status_code == 200


def test_sign_in_and_sign_out_of_the_member_pages(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    first = client.get(f"/{ENV}/auth/account", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == f"/{ENV}/auth/account/signin"
    signin = client.get(first.headers["location"])
    assert signin.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in signin.headers["content-security-policy"]
    wrong = client.post(
        f"/{ENV}/auth/account/signin",
        data={**hidden(signin.text), "username": "member-a", "password": "wrong password"},
    )
    assert wrong.status_code == 401
    assert "incorrect" in wrong.text
    no_csrf = client.post(
        f"/{ENV}/auth/account/signin", data={"username": "member-a", "password": TEST_PASSWORD}
    )
    assert no_csrf.status_code == 403
    page = client.post(
        f"/{ENV}/auth/account/signin",
        data={**hidden(signin.text), "username": "member-a", "password": TEST_PASSWORD},
    )
    assert page.status_code == 200
    assert "Signed in as member-a" in page.text
    assert "Your health plan" in page.text
    assert f"/{ENV}/auth/plan-logo" in page.text
    refused = client.post(f"/{ENV}/auth/account/signout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert client.get(f"/{ENV}/auth/account").status_code == 200  # still signed in
    assert client.get("/nowhere/auth/account").status_code == 404
    copied = client.cookies.get(SESSION_COOKIE)  # a copy, as a thief or another tab would keep it
    assert copied
    out = client.post(f"/{ENV}/auth/account/signout", data={"csrf_token": hidden(page.text)["csrf_token"]})
    assert out.status_code == 200
    assert "You have signed out" in out.text
    again = client.get(f"/{ENV}/auth/account", follow_redirects=False)
    assert again.status_code == 303
    # The copy stopped working too: the session ended on the server, not only in this browser.
    client.cookies.set(SESSION_COOKIE, copied, path=f"/{ENV}/auth")
    assert client.get(f"/{ENV}/auth/account", follow_redirects=False).status_code == 303


def test_sign_out_from_the_consent_page_keeps_the_request(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    app = SmartApp(client, client_id, REDIRECT)
    page = consent_page(app)
    fields = hidden(page.text)
    out = client.post(
        f"/{ENV}/auth/authorize",
        data={"step": "signout", "auth_request": fields["auth_request"], "csrf_token": fields["csrf_token"]},
    )
    assert out.status_code == 200
    assert 'name="username"' in out.text
    consent = app.sign_in(out.text, "member-b", TEST_PASSWORD)
    assert "Signed in as member-b" in consent.text


# ---- the gallery, logos and education ------------------------------------------------------------------
def test_gallery_lists_approved_apps_and_the_member_can_revoke_there(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    found = portal_app(services, approve=True)
    services.portal.applications.register(  # not approved: never in the gallery
        OWNER, found["application"].organization_id, app_details(name="Unreviewed App")
    )
    gallery = client.get(f"/{PROD}/auth/apps")
    assert gallery.status_code == 200
    text = text_of(gallery.text)
    assert "My Health Wallet" in text
    assert "Unreviewed App" not in text
    assert "Shows members their claims." in text
    assert "Example Health Apps, Inc." in text
    assert "Says it does not sell your data." in text
    assert 'href="https://example-app.com/privacy"' in gallery.text
    assert "Sign in" in text
    assert "Connected" not in text
    logo = client.get(f"/{PROD}/auth/apps/{found['production']}/logo")
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/png"
    assert client.get(f"/{PROD}/auth/apps/nobody/logo").status_code == 404
    # The same approved app is listed in the sandbox, with its sandbox client.
    assert found["sandbox"] in client.get(f"/{ENV}/auth/apps").text

    tokens = SmartApp(client, found["sandbox"], REDIRECT).launch(SCOPE, "member-a", TEST_PASSWORD)
    gallery = client.get(f"/{ENV}/auth/apps")
    assert "Connected" in gallery.text
    assert 'id="gallery-signin"' not in gallery.text  # no invitation to sign in when signed in
    assert "Disconnect My Health Wallet" in gallery.text
    back = client.post(
        f"/{ENV}/auth/account/revoke",
        data={
            "csrf_token": hidden(gallery.text)["csrf_token"],
            "client_id": found["sandbox"],
            "return_to": "apps",
        },
        follow_redirects=False,
    )
    assert back.headers["location"] == f"/{ENV}/auth/apps"
    assert client.get(f"/{ENV}/fhir/Patient", headers=bearer(tokens["access_token"])).status_code == 401


def test_education_page_default_and_the_plans_own_text(
    client: TestClient, settings: Settings, services: Services, tmp_path: Path
) -> None:
    page = client.get(f"/{ENV}/auth/education")
    assert page.status_code == 200
    text = text_of(page.text)
    for needle in ("Before you choose an app", "Protect your data", "Office for Civil Rights", "FTC"):
        assert needle in text
    assert "Your health plan must share" in text  # $plan_name filled in
    assert client.get("/nowhere/auth/education").status_code == 404

    own = tmp_path / "education.md"
    own.write_text("# Apps and $plan_name\n\nCall us. <script>alert(1)</script>\n")
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(32, 32))
    custom = settings.model_copy(
        update={"member_education_path": own, "member_plan_name": "Acme Health", "member_plan_logo": logo}
    )
    services.auth.settings = custom
    with TestClient(create_app(custom, services=services), base_url="http://testserver") as other:
        page = other.get(f"/{ENV}/auth/education")
        assert "<h1>Apps and Acme Health</h1>" in page.text
        assert "<script>" not in page.text
        assert "&lt;script&gt;" in page.text
        assert other.get(f"/{ENV}/auth/plan-logo").headers["content-type"] == "image/png"
    services.auth.settings = settings
    shipped = client.get(f"/{ENV}/auth/plan-logo")
    assert shipped.headers["content-type"] == "image/svg+xml"
