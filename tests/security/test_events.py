"""The security event stream over HTTP: what each endpoint records, the keyed account hash, the token
endpoint's 429, patient walking attributed to the app, the default risk sink, and `openpayer security`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openpayer.app import create_app
from openpayer.bootstrap import Services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world
from openpayer.security.events import AccountHasher, EventKind, Outcome

ENV = "sandbox"
REDIRECT = "https://app.example.com/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/Patient.read patient/Observation.read"


@pytest.fixture
def http(settings: Settings, services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(settings, services=services), client=("127.0.0.1", 1)) as client:
        yield client


@pytest.fixture
def world(services: Services) -> dict[str, str]:
    return two_member_world(services, ENV)


def from_address(http: TestClient, address: str) -> None:
    http.headers["X-Forwarded-For"] = address


def test_sign_ins_are_recorded_with_a_keyed_account_hash_and_no_username(
    http: TestClient, services: Services, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    app = SmartApp(http, client_id, REDIRECT)
    from_address(http, "203.0.113.5")
    page = app.authorize(SCOPE)
    assert app.sign_in(page.text, "member-a", "wrong password").status_code == 401
    assert app.sign_in(page.text, "MEMBER-A", "password1").status_code == 401  # on the breached list
    assert 'name="decision"' in app.sign_in(page.text, "member-a", TEST_PASSWORD).text
    events = services.security.events.query(kinds=[EventKind.SIGNIN_MEMBER])
    assert [(e.outcome, e.detail) for e in reversed(events)] == [
        ("failure", None),
        ("failure", "breached-password"),
        ("success", None),
    ]
    assert {e.address for e in events} == {"203.0.113.5"}
    assert {e.client_id for e in events} == {client_id}
    assert {e.env for e in events} == {ENV}
    accounts = {e.account for e in events}
    assert len(accounts) == 1  # one account, whatever the case typed
    account = accounts.pop()
    assert account is not None
    assert "member" not in account
    assert account == services.security.account("signin:member:sandbox", "member-a")
    # Under another deployment secret the same username hashes differently: no guessing names offline.
    assert AccountHasher("another secret")("signin:member:sandbox", "member-a") != account


def test_token_endpoint_records_client_authentication_and_throttles_guessing(
    http: TestClient, services: Services, world: dict[str, str]
) -> None:
    backend, secret = services.auth.clients.register(ENV, name="Backend", redirect_uris=[REDIRECT])
    assert secret is not None
    from_address(http, "203.0.113.77")
    form = {"grant_type": "client_credentials", "scope": "system/Patient.read"}
    answers = [http.post(f"/{ENV}/auth/token", data=form, auth=(backend, f"guess{n}")) for n in range(12)]
    assert [a.status_code for a in answers[:11]] == [401] * 11
    throttled = answers[11]
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert int(throttled.headers["retry-after"]) >= 1
    assert throttled.headers["cache-control"] == "no-store"
    from_address(http, "192.0.2.10")  # the app's own server, elsewhere, is not slowed
    ok = http.post(f"/{ENV}/auth/token", data=form, auth=(backend, secret))
    assert ok.status_code in (200, 400), ok.text  # authenticated (the scope may not be granted)
    events = services.security.events.query(kinds=[EventKind.CLIENT_AUTH, EventKind.RATE_LIMITED])
    outcomes = [(e.kind, e.outcome, e.address) for e in reversed(events)]
    assert outcomes[:11] == [("token:client-auth", "failure", "203.0.113.77")] * 11
    assert outcomes[11] == ("rate-limit", "throttled", "203.0.113.77")
    assert outcomes[12] == ("token:client-auth", "success", "192.0.2.10")
    assert all(e.client_id == backend for e in events if e.kind == "token:client-auth")
    detections = services.security.detections(kinds=["client_secret_guessing"])
    assert {d.subject for d in detections} == {f"client_id={backend}", "address=203.0.113.77"}
    assert all(d.client_id is None for d in detections)  # the target is not flagged


def test_refused_fhir_requests_reuse_introspection_and_revocation_are_recorded(
    http: TestClient, services: Services, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    app = SmartApp(http, client_id, REDIRECT)
    from_address(http, "198.51.100.23")
    code = app.code(SCOPE, "member-a", TEST_PASSWORD)
    tokens = app.exchange(code).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http.get(f"/{ENV}/fhir/Observation").status_code == 401
    assert http.get(f"/{ENV}/fhir/Coverage", headers=bearer).status_code == 403
    assert http.get(f"/{ENV}/fhir/Patient/{world['b']}", headers=bearer).status_code == 404
    assert app.exchange(code).status_code == 400  # reused (and the grant's tokens revoked)
    introspected = http.post(f"/{ENV}/auth/introspect", data={"token": "x", "client_id": client_id})
    assert introspected.status_code == 200
    revoked = http.post(f"/{ENV}/auth/revoke", data={"token": "x", "client_id": client_id})
    assert revoked.status_code == 200
    kinds = [(e.kind, e.outcome, e.status) for e in reversed(services.security.events.query())]
    assert ("token:code-reuse", "refused", 400) in kinds
    assert ("fhir:refused", "failure", 401) in kinds
    assert ("token:introspect", "success", None) in kinds
    assert ("token:revoke", "success", None) in kinds
    refused = services.security.events.query(kinds=[EventKind.FHIR_REFUSED], outcome=Outcome.REFUSED)
    assert {(e.status, e.detail, e.client_id) for e in refused} == {
        (403, "Coverage", client_id),
        (404, f"Patient/{world['b']}", client_id),
    }


def test_a_token_walking_patient_ids_flags_its_app_through_the_default_sink(
    http: TestClient, services: Services, world: dict[str, str]
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Walker", redirect_uris=[REDIRECT], public=True)
    app = SmartApp(http, client_id, REDIRECT)
    from_address(http, "198.51.100.99")
    token = app.launch(SCOPE, "member-a", TEST_PASSWORD)["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    for n in range(services.settings.detect_walk_targets):
        assert http.get(f"/{ENV}/fhir/Patient/member-{n:06d}", headers=bearer).status_code == 404
    found = services.security.detections()
    walking = [d for d in found if d.kind == "patient_walking"]
    assert len(walking) == 1
    assert walking[0].client_id == client_id
    assert walking[0].count == services.settings.detect_walk_targets
    flagged = [d for d in found if d.kind == "app_flagged"]
    assert len(flagged) == 1
    assert flagged[0].client_id == client_id
    assert flagged[0].evidence["reason"] == "patient_walking"
    assert flagged[0].evidence["detection_id"] == walking[0].id
    assert len(flagged[0].evidence["event_ids"]) == services.settings.detect_walk_targets
    assert services.security.detections() == found  # scanning again adds nothing in the same window


def test_the_cli_lists_events_and_detections(
    http: TestClient,
    services: Services,
    settings: Settings,
    world: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    app = SmartApp(http, client_id, REDIRECT)
    from_address(http, "203.0.113.44")
    page = app.authorize(SCOPE)
    for _ in range(services.settings.detect_brute_force_failures):
        assert app.sign_in(page.text, "member-b", "wrong password").status_code == 401
    services.security.flush()
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["security", "events", "--kind", "signin:member", "--since", "1h"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("203.0.113.44") == services.settings.detect_brute_force_failures
    assert "member-b" not in listed.output
    none = runner.invoke(cli_app, ["security", "events", "--kind", "token:revoke"])
    assert "0 events." in none.output
    detections = runner.invoke(cli_app, ["security", "detections", "--kind", "brute_force"])
    assert detections.exit_code == 0, detections.output
    assert "brute_force" in detections.output
    assert "1 detections." in detections.output
    bad = runner.invoke(cli_app, ["security", "events", "--since", "yesterday"])
    assert bad.exit_code == 2


def test_member_pages_and_introspection_answer_429_when_throttled(
    http: TestClient, services: Services, world: dict[str, str]
) -> None:
    from openpayer.oauth.testing import hidden

    from_address(http, "203.0.113.61")
    form = hidden(http.get(f"/{ENV}/auth/account/signin").text)
    for _ in range(services.settings.detect_brute_force_failures):
        data = {**form, "username": "member-a", "password": "wrong password"}
        assert http.post(f"/{ENV}/auth/account/signin", data=data).status_code == 401
    blocked = http.post(
        f"/{ENV}/auth/account/signin", data={**form, "username": "member-a", "password": TEST_PASSWORD}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many failed sign-in attempts" in blocked.text
    client_id, _ = services.auth.clients.register(ENV, name="Backend", redirect_uris=[REDIRECT])
    answers = [
        http.post(f"/{ENV}/auth/introspect", data={"token": "t"}, auth=(client_id, f"guess{n}")).status_code
        for n in range(services.settings.detect_token_address_failures + 2)
    ]
    assert answers[-1] == 429
    assert answers.count(401) == services.settings.detect_token_address_failures + 1


def test_only_events_a_detector_counts_start_a_scan(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy token endpoint records a success per request; those cost a write, not a scan of every
    detector. A failure, a refusal or a breached-password sign-in does start one."""
    monitor = services.security
    scans: list[int] = []
    real_scan = monitor.scan
    monkeypatch.setattr(monitor, "scan", lambda now=None: scans.append(1) or real_scan(now))
    before = len(monitor.events.query(kinds=[EventKind.CLIENT_AUTH]))
    for _ in range(3):
        monitor.record(
            EventKind.CLIENT_AUTH, Outcome.SUCCESS, env=ENV, address="203.0.113.9", client_id="app"
        )
    monitor.flush()
    assert len(monitor.events.query(kinds=[EventKind.CLIENT_AUTH])) == before + 3  # written all the same
    assert scans == []
    monitor.record(EventKind.SIGNIN_MEMBER, Outcome.SUCCESS, env=ENV, account="h", detail="breached-password")
    monitor.flush()
    assert len(scans) == 1
    monitor.flush()  # nothing new
    assert len(scans) == 1
    monitor.record(EventKind.CLIENT_AUTH, Outcome.FAILURE, env=ENV, address="203.0.113.9", client_id="app")
    monitor.flush()
    assert len(scans) == 2
