"""What the real server process logs during a full SMART launch and FHIR searches: one JSON event per line,
with request ids and route templates, and none of the secrets or member identifiers that passed through."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.observability.conftest import running_server, server_env

from openpayer.app import Services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world

ENV = "sandbox"
REDIRECT = "https://app.example.com/callback"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_enforce": True})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_log_line_of_a_smart_flow_holds_a_secret_or_patient_id(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    world = two_member_world(services, ENV)
    client_id, client_secret = services.auth.clients.register(
        ENV, name="Health Wallet", redirect_uris=[REDIRECT], public=False
    )
    assert client_secret is not None
    env = server_env(
        tmp_path, settings.resolved_database_url, "test-secret", log_format="json", log_level="debug"
    )
    log_path = tmp_path / "server.log"
    secrets: dict[str, str] = {"password": TEST_PASSWORD, "client secret": client_secret}
    with running_server(env, log_path) as (base, _), httpx.Client(base_url=base) as http:
        app = SmartApp(http, client_id, REDIRECT, origin=base, client_secret=client_secret)
        # A wrong password first (logged as a failed sign-in, never with the password tried).
        page = app.authorize("launch/patient openid fhirUser offline_access patient/*.rs")
        assert app.sign_in(page.text, "member-a", "wrong " + TEST_PASSWORD).status_code == 401
        code = app.code(
            "launch/patient openid fhirUser offline_access patient/*.rs", "member-a", TEST_PASSWORD
        )
        secrets["authorization code"] = code
        exchanged = app.exchange(code)
        assert exchanged.status_code == 200, exchanged.text
        tokens = exchanged.json()
        secrets |= {
            "access token": tokens["access_token"],
            "refresh token": tokens["refresh_token"],
            "id token": tokens["id_token"],
        }
        access = bearer(tokens["access_token"])
        assert http.get(f"/{ENV}/fhir/Patient/{world['a']}", headers=access).status_code == 200
        assert http.get(f"/{ENV}/fhir/Patient/{world['b']}", headers=access).status_code == 404
        search = http.get(f"/{ENV}/fhir/Observation", params={"patient": world["a"]}, headers=access)
        assert search.status_code == 200
        assert http.get(f"/{ENV}/fhir/Patient/{world['a']}/$everything", headers=access).status_code == 200
        assert http.get(f"/{ENV}/fhir/Coverage?beneficiary=Patient/{world['a']}", headers=access).is_success
        refreshed = app.refresh(tokens["refresh_token"])
        assert refreshed.status_code == 200
        secrets["rotated refresh token"] = refreshed.json()["refresh_token"]
        secrets["refreshed access token"] = refreshed.json()["access_token"]
        assert http.get(f"/{ENV}/fhir/Observation", headers=bearer("not-a-token")).status_code == 401
        introspect = http.post(
            f"/{ENV}/auth/introspect", data={"token": tokens["access_token"]}, auth=(client_id, client_secret)
        )
        assert introspect.status_code == 200
    lines = log_path.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON event
    requests = [e for e in events if e["event"] == "request"]
    assert len(requests) >= 10
    fhir_reads = [e for e in requests if e.get("route") == "/{env}/fhir/{rtype}/{rid}"]
    assert fhir_reads
    assert all(e["client_id"] == client_id and e["env"] == ENV for e in fhir_reads)
    assert all(
        {"time", "level", "request_id", "status", "duration_ms", "method"} <= e.keys() for e in requests
    )
    assert {e["status"] for e in requests} >= {200, 303, 401, 404}
    members = {"patient id a": world["a"], "patient id b": world["b"]}
    for line in lines:
        for what, value in (secrets | members).items():
            assert value not in line, f"the {what} is in a log line: {line}"
