"""Token rules found wanting in review (issue 13): introspection, refresh reuse and rotation grace, narrowing,
a spent code's message, consent that shares nothing, the `profile` claims, and the CSRF cookie's prefix."""

from __future__ import annotations

import base64
import threading
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from openpayer.app import Services, create_app
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, query_of

ENV = "sandbox"
AUTH = f"/{ENV}/auth"
FHIR = f"/{ENV}/fhir"
REDIRECT = "https://app.example.com/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"
GRACE = 10  # docs/smart.md: a just-rotated refresh token stays usable by its client this long


@pytest.fixture
def app(client: TestClient, services: Services, world: dict[str, str]) -> SmartApp:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    return SmartApp(client, client_id, REDIRECT)


def confidential(client: TestClient, services: Services, name: str) -> SmartApp:
    client_id, secret = services.auth.clients.register(ENV, name=name, redirect_uris=[REDIRECT])
    return SmartApp(client, client_id, REDIRECT, client_secret=secret)


def credentials(app: SmartApp) -> tuple[str, str]:
    assert app.client_secret is not None
    return (app.client_id, app.client_secret)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reads(client: TestClient, world: dict[str, str], token: str) -> int:
    return client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(token)).status_code


# ---- introspection -----------------------------------------------------------------------------------------
def test_an_app_introspects_only_its_own_tokens(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    owner = confidential(client, services, "Owner")
    other = confidential(client, services, "Other")
    tokens = owner.launch(SCOPE, "member-a", TEST_PASSWORD)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        mine = owner.http.post(f"{AUTH}/introspect", data={"token": token}, auth=credentials(owner))
        assert mine.json()["active"] is True
        assert mine.json()["patient"] == world["a"]
        theirs = other.http.post(f"{AUTH}/introspect", data={"token": token}, auth=credentials(other))
        assert theirs.status_code == 200
        assert theirs.json() == {"active": False}


# ---- refresh -----------------------------------------------------------------------------------------------
def test_a_consumed_refresh_token_revokes_the_grant_even_when_the_request_is_wrong(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    rotated = app.refresh(tokens["refresh_token"]).json()
    services.auth.clock.advance(GRACE + 1)
    widened = app.refresh(tokens["refresh_token"], scope=SCOPE + " patient/*.cruds user/*.rs")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_grant"
    assert app.refresh(rotated["refresh_token"]).json()["error"] == "invalid_grant"
    assert reads(client, world, rotated["access_token"]) == 401


def test_a_consumed_refresh_token_presented_by_another_app_revokes_the_grant(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    rotated = app.refresh(tokens["refresh_token"]).json()
    other_id, _ = services.auth.clients.register(ENV, name="Thief", redirect_uris=[REDIRECT], public=True)
    stolen = SmartApp(client, other_id, REDIRECT).refresh(tokens["refresh_token"])
    assert stolen.json()["error"] == "invalid_grant"
    assert app.refresh(rotated["refresh_token"]).json()["error"] == "invalid_grant"
    assert reads(client, world, rotated["access_token"]) == 401


def test_a_narrower_scope_written_differently_is_a_narrowing(app: SmartApp) -> None:
    exact = app.refresh(
        app.launch(SCOPE, "member-a", TEST_PASSWORD)["refresh_token"], scope="patient/ExplanationOfBenefit.rs"
    )
    assert exact.status_code == 200, exact.text  # the example, word for word
    assert exact.json()["scope"] == "patient/ExplanationOfBenefit.rs"
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    narrowed = app.refresh(tokens["refresh_token"], scope="offline_access patient/ExplanationOfBenefit.rs")
    assert narrowed.json()["scope"] == "offline_access patient/ExplanationOfBenefit.rs"
    v1 = app.refresh(
        narrowed.json()["refresh_token"], scope="offline_access patient/ExplanationOfBenefit.read"
    )
    assert v1.status_code == 200, v1.text
    granular = "offline_access patient/ExplanationOfBenefit.r?type=http://terminology.hl7.org/CodeSystem/claim-type|oral"
    narrower = app.refresh(v1.json()["refresh_token"], scope=granular)
    assert narrower.status_code == 200, narrower.text
    wider = app.refresh(narrower.json()["refresh_token"], scope="patient/Observation.rs")
    assert wider.json()["error"] == "invalid_scope"


def test_parallel_refreshes_within_the_grace_all_keep_access(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    tokens = app.launch(SCOPE, "member-a", TEST_PASSWORD)
    barrier = threading.Barrier(10)
    results: list[Any] = [None] * 10

    def refresh(index: int) -> None:
        barrier.wait()
        results[index] = app.refresh(tokens["refresh_token"])

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200] * 10, [r.text for r in results]
    for result in results:
        assert reads(client, world, result.json()["access_token"]) == 200
    newest = results[0].json()["refresh_token"]
    assert app.refresh(newest).status_code == 200
    services.auth.clock.advance(GRACE + 1)
    replay = app.refresh(tokens["refresh_token"])  # after the grace: a reuse, and the grant is revoked
    assert replay.json()["error"] == "invalid_grant"
    assert reads(client, world, results[1].json()["access_token"]) == 401


# ---- codes -------------------------------------------------------------------------------------------------
def test_a_code_spent_by_a_failed_request_says_so(app: SmartApp) -> None:
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    wrong = app.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": app.verifier,
            "redirect_uri": "https://app.example.com/other",
        }
    )
    assert "redirect_uri" in wrong.json()["error_description"]
    retry = app.exchange(code)
    assert retry.json()["error"] == "invalid_grant"
    description = retry.json()["error_description"]
    assert "already used" not in description
    assert "failed" in description
    assert "authorize again" in description


# ---- consent and identity ----------------------------------------------------------------------------------
def test_unticking_every_record_type_is_access_denied(app: SmartApp) -> None:
    consent = app.sign_in(app.authorize(SCOPE).text, "member-a", TEST_PASSWORD)
    back = app.consent(consent.text, untick=("patient/*.rs",))
    assert back.status_code == 303
    params = query_of(back.headers["location"])
    assert params["error"] == "access_denied"
    assert "code" not in params


def test_the_profile_scope_carries_the_members_name(app: SmartApp, world: dict[str, str]) -> None:
    tokens = app.launch("launch/patient openid fhirUser profile patient/*.rs", "member-a", TEST_PASSWORD)
    payload = tokens["id_token"].split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["family_name"] == "Ason"
    assert claims["name"] == "Ason"
    info = app.http.get(f"{AUTH}/userinfo", headers=bearer(tokens["access_token"])).json()
    assert info["family_name"] == "Ason"
    without = app.launch("launch/patient openid fhirUser patient/*.rs", "member-a", TEST_PASSWORD)
    info = app.http.get(f"{AUTH}/userinfo", headers=bearer(without["access_token"])).json()
    assert "name" not in info


# ---- the CSRF cookie ---------------------------------------------------------------------------------------
def test_the_csrf_cookie_is_host_prefixed_over_https(settings: Settings, services: Services) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    with TestClient(
        create_app(settings, services=services), base_url="https://api.example-plan.com"
    ) as remote:
        app = SmartApp(remote, client_id, REDIRECT, origin="https://api.example-plan.com")
        page = app.authorize(SCOPE)
        cookies = page.headers.get_list("set-cookie")
        csrf = next(c for c in cookies if "csrf" in c)
        assert csrf.startswith("__Host-op_csrf=")
        assert "Secure" in csrf
        assert "Path=/;" in csrf or csrf.endswith("Path=/")
        assert "Domain" not in csrf


def test_the_csrf_cookie_keeps_its_plain_name_over_http(app: SmartApp) -> None:
    cookies = app.authorize(SCOPE).headers.get_list("set-cookie")
    assert any(c.startswith("op_csrf=") for c in cookies)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("grant_type=client_credentials&grant_type=refresh_token", "grant_type must not be repeated"),
        ("&".join(f"p{n}=1" for n in range(101)), "at most 100 parameters"),
    ],
)
def test_a_form_with_a_repeated_or_too_many_parameters_is_an_invalid_request(
    client: TestClient, body: str, expected: str
) -> None:
    for endpoint in ("token", "introspect", "revoke"):
        response = client.post(
            f"/{ENV}/auth/{endpoint}",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400, endpoint
        assert response.json()["error"] == "invalid_request"
        assert expected in response.json()["error_description"]
