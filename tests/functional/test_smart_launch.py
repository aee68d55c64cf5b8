"""The SMART standalone launch end to end over HTTP: discovery → authorize → sign-in → consent → token →
FHIR → refresh → introspection → revocation (SMART App Launch 2.2; RFC 6749, 7636, 7662, 7009, 9207)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from openpayer.bootstrap import Services
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp

ENV = "sandbox"
FHIR = f"/{ENV}/fhir"
AUTH = f"/{ENV}/auth"
REDIRECT = "https://app.example.com/callback"
PASSWORD = TEST_PASSWORD


@pytest.fixture
def app(client: TestClient, services: Services) -> SmartApp:
    client_id, _ = services.auth.clients.register(
        ENV,
        name="Health Wallet",
        developer="Wallet Inc.",
        privacy_policy_url="https://app.example.com/privacy",
        redirect_uris=[REDIRECT],
        public=True,
    )
    return SmartApp(client, client_id, REDIRECT)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_discovery_advertises_what_works(client: TestClient) -> None:
    for path in (
        f"{AUTH}/.well-known/smart-configuration",
        f"{FHIR}/.well-known/smart-configuration",
        f"/{ENV}/directory/.well-known/smart-configuration",
    ):
        response = client.get(path, headers={"Origin": "https://anywhere.example"})
        assert response.status_code == 200, path
        assert response.headers["access-control-allow-origin"] == "*"
        config = response.json()
        assert config["code_challenge_methods_supported"] == ["S256"]
        assert config["authorization_endpoint"] == f"http://testserver{AUTH}/authorize"
        assert "permission-v2" in config["capabilities"]
        assert config["authorization_response_iss_parameter_supported"] is True
    oidc = client.get(f"{AUTH}/.well-known/openid-configuration").json()
    assert oidc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert oidc["issuer"] == f"http://testserver{AUTH}"
    metadata = client.get(f"{FHIR}/metadata").json()
    security = metadata["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["token"] == config["token_endpoint"]


def test_standalone_launch_end_to_end(
    client: TestClient, services: Services, app: SmartApp, world: dict[str, str]
) -> None:
    scope = "launch/patient openid fhirUser offline_access patient/*.read"
    tokens = app.launch(scope, "member-a", PASSWORD)
    assert tokens["token_type"] == "Bearer"
    assert tokens["patient"] == world["a"]
    assert tokens["scope"].split() == scope.split()
    assert 0 < tokens["expires_in"] <= 3600
    # ID token: RS256, verifiable with the published JWKS, fhirUser is the member's Patient URL.
    keys = KeySet.import_key_set(client.get(f"{AUTH}/jwks").json())
    claims = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == f"http://testserver{AUTH}"
    assert claims["aud"] == app.client_id
    assert claims["fhirUser"] == f"http://testserver{FHIR}/Patient/{world['a']}"
    userinfo = client.get(f"{AUTH}/userinfo", headers=bearer(tokens["access_token"]))
    assert userinfo.status_code == 200
    assert userinfo.json()["fhirUser"] == claims["fhirUser"]
    assert userinfo.json()["sub"] == claims["sub"]
    # FHIR with the token: own data only.
    own = client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(tokens["access_token"]))
    assert own.status_code == 200
    assert (
        client.get(f"{FHIR}/Patient/{world['b']}", headers=bearer(tokens["access_token"])).status_code == 404
    )
    search = client.get(f"{FHIR}/Observation", headers=bearer(tokens["access_token"])).json()
    assert {e["resource"]["id"] for e in search["entry"]} == {world["a_lab"], world["a_vital"]}
    assert search["total"] == 2
    # Refresh: rotation.
    refreshed = app.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["cache-control"] == "no-store"
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    # Introspection and revocation.
    active = client.post(
        f"{AUTH}/introspect", data={"token": new["access_token"], "client_id": app.client_id}
    )
    assert active.json()["active"] is True
    assert active.json()["patient"] == world["a"]
    revoked = client.post(f"{AUTH}/revoke", data={"token": new["refresh_token"], "client_id": app.client_id})
    assert revoked.status_code == 200
    gone = client.post(f"{AUTH}/introspect", data={"token": new["access_token"], "client_id": app.client_id})
    assert gone.json() == {"active": False}
    assert client.get(f"{FHIR}/Patient/{world['a']}", headers=bearer(new["access_token"])).status_code == 401
    events = services.auth.audit.events(ENV)
    assert any(e["event"] == "fhir:access" and e["status"] == 404 for e in events)
