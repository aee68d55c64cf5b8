"""Activity for the inactivity policy: the last SMART authorization and last API call of each client."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from openpayer.app import create_app
from openpayer.bootstrap import Services
from openpayer.oauth.activity import Seen
from openpayer.oauth.models import oauth_activity
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp

ENV = "sandbox"
REDIRECT = "https://app.example.com/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/Patient.rs"


def register(services: Services) -> str:
    client_id, _ = services.auth.clients.register(
        ENV,
        name="Health Wallet",
        developer="Wallet Inc.",
        privacy_policy_url="https://app.example.com/privacy",
        redirect_uris=[REDIRECT],
        public=True,
    )
    return client_id


def seen(services: Services, client_id: str) -> Seen | None:
    return services.auth.activity.last_seen().get((ENV, client_id))


def test_authorization_and_calls_are_recorded_per_client(
    client: TestClient, services: Services, world: dict[str, str]
) -> None:
    client_id = register(services)
    assert seen(services, client_id) is None
    before = services.clock.now()
    body = SmartApp(client, client_id, REDIRECT).launch(SCOPE, "member-a", TEST_PASSWORD)
    first = seen(services, client_id)
    assert first is not None
    assert first.last_call_at is None
    launched = first.last_authorized_at
    assert launched is not None
    assert before <= launched <= services.clock.now()

    # /metadata without a token, or with a bad one, is nobody's call.
    assert client.get(f"/{ENV}/fhir/metadata").status_code == 200
    assert client.get(f"/{ENV}/fhir/metadata", headers={"Authorization": "Bearer nope"}).status_code == 200
    assert seen(services, client_id) == Seen(launched, None)
    # With the app's token it is the app's API call (what a health check sends).
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get(f"/{ENV}/fhir/metadata", headers=bearer).status_code == 200
    called = seen(services, client_id)
    assert called is not None
    assert called.last_call_at is not None
    assert launched <= called.last_call_at <= services.clock.now()

    # Calls within a minute of the last one kept are coalesced; a later one moves the time forward.
    services.clock.advance(20)
    assert client.get(f"/{ENV}/fhir/Patient/{world['a']}", headers=bearer).status_code == 200
    assert seen(services, client_id) == called
    services.clock.advance(45)
    at = services.clock.now()
    assert client.get(f"/{ENV}/fhir/Patient/{world['a']}", headers=bearer).status_code == 200
    later = seen(services, client_id)
    assert later is not None
    assert later.last_call_at is not None
    assert at <= later.last_call_at
    services.clock.advance(65)
    at = services.clock.now()
    smart = f"/{ENV}/fhir/.well-known/smart-configuration"
    assert client.get(smart, headers=bearer).status_code == 200
    latest = seen(services, client_id)
    assert latest is not None
    assert latest.last_call_at is not None
    assert at <= latest.last_call_at

    # A refresh is not an authorization.
    refreshed = SmartApp(client, client_id, REDIRECT).refresh(body["refresh_token"])
    assert refreshed.status_code == 200
    assert seen(services, client_id) == Seen(launched, latest.last_call_at)


def test_a_running_server_writes_the_marks_without_a_reader(services: Services) -> None:
    """No reader in the process: the guard's background flush (or the one at shutdown) writes the marks."""
    client_id = register(services)
    with TestClient(create_app(services.settings, services=services)):
        services.auth.activity.authorized(ENV, client_id)
    with services.engine.connect() as conn:
        rows = conn.execute(select(oauth_activity.c.client_id)).scalars().all()
    assert rows == [client_id]
