"""SMART Backend Services: client_credentials with private_key_jwt (RFC 7523; SMART 2.2 Backend)."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from openpayer.bootstrap import Services

ENV = "sandbox"
TOKEN_URL = f"http://testserver/{ENV}/auth/token"
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(params=["RS384", "ES384"])
def backend(request: pytest.FixtureRequest, services: Services) -> tuple[str, Any, str]:
    alg = request.param
    key = (
        RSAKey.generate_key(2048, parameters={"kid": "k1"})
        if alg == "RS384"
        else ECKey.generate_key("P-384", parameters={"kid": "k1"})
    )
    client_id, secret = services.auth.clients.register(
        ENV,
        name="Plan analytics",
        redirect_uris=[],
        jwks={"keys": [key.as_dict(private=False)]},
        scopes=["system/Patient.rs", "system/Observation.rs"],
    )
    assert secret is None
    return client_id, key, alg


def assertion(client_id: str, key: Any, alg: str, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": secrets.token_hex(8),
    }
    body.update(claims)
    return jwt.encode({"alg": alg, "kid": "k1", "typ": "JWT"}, body, key, algorithms=[alg])


def request_token(client: TestClient, signed: str, scope: str = "system/Patient.rs") -> Any:
    return client.post(
        f"/{ENV}/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION,
            "client_assertion": signed,
        },
    )


def test_backend_token_reads_across_patients(
    client: TestClient, backend: tuple[str, Any, str], world: dict[str, str]
) -> None:
    client_id, key, alg = backend
    response = request_token(client, assertion(client_id, key, alg), "system/Patient.rs system/Coverage.rs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "system/Patient.rs"  # Coverage is not registered for this client
    assert body["expires_in"] <= 300
    assert "refresh_token" not in body
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    patients = client.get(f"/{ENV}/fhir/Patient", headers=headers).json()
    assert {e["resource"]["id"] for e in patients["entry"]} == {world["a"], world["b"]}
    assert client.get(f"/{ENV}/fhir/Coverage", headers=headers).status_code == 403


def test_backend_history_is_limited_to_the_registered_types(
    client: TestClient, services: Services, backend: tuple[str, Any, str], world: dict[str, str]
) -> None:
    client_id, key, alg = backend
    token = request_token(client, assertion(client_id, key, alg), "system/Patient.rs").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    system = client.get(f"/{ENV}/fhir/_history", headers=headers)
    assert system.status_code == 200, system.text
    assert {e["fullUrl"].rsplit("/", 2)[-2] for e in system.json()["entry"]} == {"Patient"}
    patients = client.get(f"/{ENV}/fhir/Patient/_history", headers=headers).json()
    assert {e["resource"]["id"] for e in patients["entry"]} == {world["a"], world["b"]}
    assert client.get(f"/{ENV}/fhir/Coverage/_history", headers=headers).status_code == 403


def test_backend_token_calls_member_match(
    client: TestClient, services: Services, backend: tuple[str, Any, str], world: dict[str, str]
) -> None:
    """Payer-to-payer `Patient/$member-match` (Da Vinci HRex), token from the client_credentials flow."""
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Rivera", "given": ["Ana"]}],
        "birthDate": "1970-02-03",
    }
    pid = services.fhir.create(ENV, "Patient", patient).stored.id
    coverage = {
        "resourceType": "Coverage",
        "status": "active",
        "subscriberId": "SUB-42",
        "beneficiary": {"reference": f"Patient/{pid}"},
        "payor": [{"reference": f"Organization/{world['org']}"}],
    }
    services.fhir.create(ENV, "Coverage", coverage)
    client_id, key, alg = backend
    token = request_token(client, assertion(client_id, key, alg), "system/Patient.rs").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    asked = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "MemberPatient", "resource": {**patient}},
            {
                "name": "CoverageToMatch",
                "resource": {
                    "resourceType": "Coverage",
                    "status": "active",
                    "subscriberId": "SUB-42",
                    "beneficiary": {"display": "Ana"},
                    "payor": [{"display": "Old plan"}],
                },
            },
        ],
    }
    response = client.post(f"/{ENV}/fhir/Patient/$member-match", json=asked, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["parameter"][0]["valueIdentifier"]["value"] == pid
    asked["parameter"][1]["resource"]["subscriberId"] = "SUB-43"  # type: ignore[index]
    assert client.post(f"/{ENV}/fhir/Patient/$member-match", json=asked, headers=headers).status_code == 422


def test_replayed_jti_is_refused(client: TestClient, backend: tuple[str, Any, str]) -> None:
    client_id, key, alg = backend
    signed = assertion(client_id, key, alg)
    assert request_token(client, signed).status_code == 200
    replay = request_token(client, signed)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 600},  # seconds from now (made absolute when the test runs, not when it is collected)
        {"exp": -10},
        {"aud": "https://elsewhere/token"},
        {"sub": "someone"},
        {"jti": ""},
    ],
)
def test_bad_assertions_are_invalid_client(
    client: TestClient, backend: tuple[str, Any, str], claims: dict[str, Any]
) -> None:
    client_id, key, alg = backend
    if "exp" in claims:
        claims = {**claims, "exp": int(time.time()) + claims["exp"]}
    response = request_token(client, assertion(client_id, key, alg, **claims))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_assertion_signed_by_another_key_is_refused(
    client: TestClient, backend: tuple[str, Any, str]
) -> None:
    client_id, _key, alg = backend
    other = (
        RSAKey.generate_key(2048, parameters={"kid": "k1"})
        if alg == "RS384"
        else ECKey.generate_key("P-384", parameters={"kid": "k1"})
    )
    assert request_token(client, assertion(client_id, other, alg)).status_code == 401


@pytest.mark.parametrize("alg", ["RS256", "PS384", "none"])
def test_an_assertion_signed_with_an_algorithm_not_offered_is_refused(
    client: TestClient, services: Services, alg: str
) -> None:
    """Only RS384 and ES384 (discovery's `token_endpoint_auth_signing_alg_values_supported`), even signed
    with the client's registered key."""
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    client_id, _ = services.auth.clients.register(
        ENV,
        name="Plan analytics",
        redirect_uris=[],
        jwks={"keys": [key.as_dict(private=False)]},
        scopes=["system/Patient.rs"],
    )
    assert request_token(client, assertion(client_id, key, "RS384")).status_code == 200
    if alg == "none":  # unsigned, built by hand (joserfc warns against making one)
        signed = assertion(client_id, key, "RS384")
        header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        unsigned = f"{header}.{signed.split('.')[1]}."
    response = request_token(client, unsigned if alg == "none" else assertion(client_id, key, alg))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unregistered_system_scope_is_invalid_scope(
    client: TestClient, backend: tuple[str, Any, str]
) -> None:
    client_id, key, alg = backend
    response = request_token(client, assertion(client_id, key, alg), "system/Coverage.rs")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_symmetric_clients_cannot_use_client_credentials(client: TestClient, services: Services) -> None:
    client_id, secret = services.auth.clients.register(
        ENV, name="Web", redirect_uris=["https://w.example/cb"]
    )
    response = client.post(
        f"/{ENV}/auth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(client_id, secret or ""),
    )
    assert response.json()["error"] == "unauthorized_client"


def test_a_backend_asking_often_is_marked_active_once_a_minute(
    client: TestClient, backend: tuple[str, Any, str], services: Services
) -> None:
    """Each client-credentials token is an authorization for the inactivity policy, kept to the minute: a
    job asking for a token every few seconds writes one activity mark a minute, not one per token."""
    client_id, key, alg = backend
    activity = services.auth.activity

    def authorized_at() -> int | None:
        seen = activity.last_seen().get((ENV, client_id))
        return seen.last_authorized_at if seen else None

    first_at = services.clock.now()
    assert request_token(client, assertion(client_id, key, alg)).status_code == 200
    first = authorized_at()
    assert first is not None
    assert first >= first_at
    services.clock.advance(30)
    assert request_token(client, assertion(client_id, key, alg)).status_code == 200
    assert not activity.due()  # nothing new to write
    assert authorized_at() == first
    services.clock.advance(31)
    later_at = services.clock.now()
    assert request_token(client, assertion(client_id, key, alg)).status_code == 200
    later = authorized_at()
    assert later is not None
    assert later >= later_at > first
