"""Every way the authorization code flow must fail, over HTTP (RFC 6749 §4.1.2.1, §5.2; 7636; 9700)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, query_of

ENV = "sandbox"
AUTH = f"/{ENV}/auth"
FHIR = f"/{ENV}/fhir"
REDIRECT = "https://app.example.com/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.read"


@pytest.fixture
def app(client: TestClient, services: Services, world: dict[str, str]) -> SmartApp:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    return SmartApp(client, client_id, REDIRECT)


@pytest.fixture
def confidential(client: TestClient, services: Services, world: dict[str, str]) -> SmartApp:
    client_id, secret = services.auth.clients.register(ENV, name="Portal", redirect_uris=[REDIRECT])
    assert secret is not None
    assert len(secret) >= 43
    return SmartApp(client, client_id, REDIRECT, client_secret=secret)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_redirect(response: object, error: str) -> dict[str, str]:
    assert response.status_code == 302, response.text  # type: ignore[attr-defined]
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith(REDIRECT)
    params = query_of(location)
    assert params["error"] == error
    assert "code" not in params
    assert params["iss"] == f"http://testserver{AUTH}"
    return params


# ---- authorization request -----------------------------------------------------------------------------
def test_unknown_client_shows_error_page_and_never_redirects(app: SmartApp) -> None:
    response = app.authorize(SCOPE, client_id="nobody")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not registered" in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("uri", ["https://evil.example/callback", REDIRECT + "/", REDIRECT + "?x=1", None])
def test_unregistered_redirect_uri_shows_error_page(app: SmartApp, uri: str | None) -> None:
    response = app.authorize(SCOPE, redirect_uri=uri)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_wrong_aud_issues_no_code(app: SmartApp) -> None:
    params = error_redirect(app.authorize(SCOPE, aud="https://other.example/fhir"), "invalid_request")
    assert params["state"] == app.state
    error_redirect(app.authorize(SCOPE, aud=None), "invalid_request")
    error_redirect(app.authorize(SCOPE, aud="http://testserver/production/fhir"), "invalid_request")


def test_plain_or_missing_pkce_is_refused(app: SmartApp) -> None:
    error_redirect(app.authorize(SCOPE, code_challenge_method="plain"), "invalid_request")
    error_redirect(app.authorize(SCOPE, code_challenge_method=None), "invalid_request")
    error_redirect(app.authorize(SCOPE, code_challenge=None), "invalid_request")


def test_state_is_required(app: SmartApp) -> None:
    error_redirect(app.authorize(SCOPE, state=None), "invalid_request")


def test_response_type_must_be_code(app: SmartApp) -> None:
    error_redirect(app.authorize(SCOPE, response_type="token"), "unsupported_response_type")


def test_no_grantable_scope_is_invalid_scope(app: SmartApp) -> None:
    error_redirect(app.authorize("patient/Nonsense.read system/*.rs launch"), "invalid_scope")


def test_authorize_post_starts_a_request(client: TestClient, app: SmartApp) -> None:
    response = app.authorize(SCOPE)
    params = query_of(str(response.request.url))
    posted = client.post(f"{AUTH}/authorize", data=params, follow_redirects=False)
    assert posted.status_code == 200
    assert 'name="username"' in posted.text
    assert 'name="password"' in posted.text


def test_sign_in_errors_are_generic(app: SmartApp) -> None:
    page = app.authorize(SCOPE).text
    wrong = app.sign_in(page, "member-a", "wrong password!")
    unknown = app.sign_in(page, "no-such-member", "wrong password!")
    assert wrong.status_code == unknown.status_code == 401
    assert "incorrect" in wrong.text
    assert wrong.text.replace("member-a", "X") == unknown.text.replace("no-such-member", "X").replace(
        unknown.text.split('name="csrf_token" value="')[1].split('"')[0],
        wrong.text.split('name="csrf_token" value="')[1].split('"')[0],
    )


def test_forms_need_the_csrf_token(client: TestClient, app: SmartApp) -> None:
    page = app.authorize(SCOPE).text
    client.cookies.clear()
    response = app.sign_in(page, "member-a", TEST_PASSWORD)
    assert response.status_code == 403


def test_deny_returns_access_denied(app: SmartApp) -> None:
    consent = app.sign_in(app.authorize(SCOPE).text, "member-a", TEST_PASSWORD)
    back = app.consent(consent.text, decision="deny")
    assert back.status_code == 303
    params = query_of(back.headers["location"])
    assert params["error"] == "access_denied"
    assert params["state"] == app.state
    assert "code" not in params


def test_session_cookie_flags(client: TestClient, app: SmartApp) -> None:
    consent = app.sign_in(app.authorize(SCOPE).text, "member-a", TEST_PASSWORD)
    cookies = consent.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("op_member="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session
    assert f"Path={AUTH}" in session


# ---- token endpoint: codes and PKCE --------------------------------------------------------------------
@pytest.mark.parametrize("verifier", ["", "x" * 43, "short"])
def test_wrong_blank_or_short_verifier_fails(app: SmartApp, verifier: str) -> None:
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    response = app.exchange(code, verifier=verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"


def test_missing_verifier_fails(app: SmartApp) -> None:
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    response = app.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert response.json()["error"] == "invalid_grant"


def test_bad_code_fails(app: SmartApp) -> None:
    app.code(SCOPE, "member-a", TEST_PASSWORD)
    assert app.exchange("not-a-code").json()["error"] == "invalid_grant"


def test_redirect_uri_must_match(app: SmartApp) -> None:
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    response = app.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": app.verifier,
            "redirect_uri": "https://app.example.com/other",
        }
    )
    assert response.json()["error"] == "invalid_grant"


def test_reused_code_fails_and_revokes_its_tokens(
    client: TestClient, app: SmartApp, world: dict[str, str]
) -> None:
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    first = app.exchange(code)
    assert first.status_code == 200
    tokens = first.json()
    assert (
        client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(tokens["access_token"])).status_code == 200
    )
    second = app.exchange(code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert (
        client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(tokens["access_token"])).status_code == 401
    )
    assert app.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_expired_code_fails(services: Services, app: SmartApp) -> None:
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    services.auth.clock.advance(61)
    assert app.exchange(code).json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_client(client: TestClient, services: Services, app: SmartApp) -> None:
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    other_id, _ = services.auth.clients.register(ENV, name="Other", redirect_uris=[REDIRECT], public=True)
    thief = SmartApp(client, other_id, REDIRECT, verifier=app.verifier)
    assert thief.exchange(code).json()["error"] == "invalid_grant"


def test_codes_do_not_cross_environments(client: TestClient, app: SmartApp) -> None:
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    production = SmartApp(client, app.client_id, REDIRECT, env="production", verifier=app.verifier)
    response = production.exchange(code)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# ---- client authentication ------------------------------------------------------------------------------
def test_confidential_client_authenticates(confidential: SmartApp) -> None:
    tokens = confidential.launch(SCOPE, "member-a", TEST_PASSWORD)
    assert "access_token" in tokens


def test_bad_client_secret_is_invalid_client(confidential: SmartApp) -> None:
    code = confidential.code(SCOPE, "member-a", TEST_PASSWORD)
    confidential.client_secret = "wrong"
    response = confidential.exchange(code)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_confidential_client_without_secret_is_invalid_client(
    client: TestClient, confidential: SmartApp
) -> None:
    code = confidential.code(SCOPE, "member-a", TEST_PASSWORD)
    anonymous = SmartApp(client, confidential.client_id, REDIRECT, verifier=confidential.verifier)
    assert anonymous.exchange(code).status_code == 401


def test_client_secret_post_works(client: TestClient, confidential: SmartApp) -> None:
    code = confidential.code(SCOPE, "member-a", TEST_PASSWORD)
    response = client.post(
        f"{AUTH}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": confidential.verifier,
            "client_id": confidential.client_id,
            "client_secret": confidential.client_secret or "",
        },
    )
    assert response.status_code == 200, response.text


def test_token_endpoint_wants_a_form(client: TestClient) -> None:
    response = client.post(f"{AUTH}/token", json={"grant_type": "authorization_code"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    unsupported = client.post(
        f"{AUTH}/token",
        content=urlencode({"grant_type": "password"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert unsupported.json()["error"] == "unsupported_grant_type"


# ---- refresh -------------------------------------------------------------------------------------------
def test_refresh_reuse_revokes_the_grant(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    rotated = app.refresh(tokens["refresh_token"]).json()
    services.auth.clock.advance(11)  # past the grace a just-rotated token has (docs/smart.md)
    reuse = app.refresh(tokens["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    assert app.refresh(rotated["refresh_token"]).json()["error"] == "invalid_grant"
    assert (
        client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(rotated["access_token"])).status_code == 401
    )


def test_refresh_may_narrow_but_not_widen(app: SmartApp) -> None:
    tokens = app.launch("launch/patient offline_access patient/Observation.rs", "member-a", TEST_PASSWORD)
    wider = app.refresh(tokens["refresh_token"], scope="offline_access patient/*.rs")
    assert wider.json()["error"] == "invalid_scope"
    narrow = app.refresh(tokens["refresh_token"], scope="offline_access patient/Observation.rs")
    assert narrow.status_code == 200
    assert narrow.json()["scope"] == "offline_access patient/Observation.rs"


def test_refresh_is_bound_to_the_client(client: TestClient, services: Services, app: SmartApp) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    other_id, _ = services.auth.clients.register(ENV, name="Other", redirect_uris=[REDIRECT], public=True)
    assert (
        SmartApp(client, other_id, REDIRECT).refresh(tokens["refresh_token"]).json()["error"]
        == "invalid_grant"
    )


def test_no_refresh_token_without_offline_access(app: SmartApp) -> None:
    tokens = app.launch("launch/patient patient/*.read", "member-a", TEST_PASSWORD)
    assert "refresh_token" not in tokens
    assert "id_token" not in tokens


def test_refresh_tokens_expire(services: Services, app: SmartApp) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    services.auth.clock.advance(90 * 86400 + 1)
    assert app.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoked_grant_stops_tokens(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    member = services.auth.members.authenticate(ENV, "member-a", TEST_PASSWORD)
    assert member is not None
    (grant,) = services.auth.grants.for_member(ENV, member.id)
    assert grant.client_id == app.client_id
    assert grant.scope == tokens["scope"]
    services.auth.grants.revoke(ENV, grant.id)
    assert (
        client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(tokens["access_token"])).status_code == 401
    )
    assert app.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_suspended_app_stops_working(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    services.auth.clients.set_status(ENV, app.client_id, "suspended")
    services.auth.tokens.forget_all()
    assert (
        client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(tokens["access_token"])).status_code == 401
    )
    assert app.refresh(tokens["refresh_token"]).status_code == 401


def test_expired_access_token_is_refused(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    services.auth.clock.advance(3601)
    response = client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    introspected = client.post(
        f"{AUTH}/introspect", data={"token": tokens["access_token"], "client_id": app.client_id}
    )
    assert introspected.json() == {"active": False}


def test_cookies_are_secure_off_localhost(
    settings: Settings, services: Services, world: dict[str, str]
) -> None:
    from openpayer.app import create_app

    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    with TestClient(
        create_app(settings, services=services), base_url="https://api.example-plan.com"
    ) as remote:
        app = SmartApp(remote, client_id, REDIRECT, origin="https://api.example-plan.com")
        page = app.authorize(SCOPE)
        assert page.status_code == 200
        consent = app.sign_in(page.text, "member-a", TEST_PASSWORD)
        cookies = consent.headers.get_list("set-cookie")
        assert all("Secure" in c for c in cookies)
        assert "form-action 'self' https://app.example.com" in consent.headers["content-security-policy"]


def test_repeated_failures_block_that_address_without_saying_whether_the_account_exists(
    app: SmartApp,
) -> None:
    """Ten failures of one account from one address (Auth0's default) block that pair with 429 and
    `Retry-After`, and the right password is not even checked; unknown usernames block the same way."""
    page = app.authorize(SCOPE).text
    for _ in range(10):
        assert app.sign_in(page, "member-a", "wrong password!").status_code == 401
    blocked = app.sign_in(page, "member-a", TEST_PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many failed sign-in attempts" in blocked.text
    assert 'name="decision"' not in blocked.text
    for _ in range(10):
        assert app.sign_in(page, "nobody-here", "wrong password!").status_code == 401
    unknown = app.sign_in(page, "nobody-here", "wrong password!")
    assert unknown.status_code == 429
    assert "Too many failed sign-in attempts" in unknown.text
