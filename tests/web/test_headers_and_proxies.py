"""Security headers on every response, `no-store` on member data, and the client's address and scheme
behind trusted proxies (`OPENPAYER_TRUSTED_PROXIES`), through HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from openpayer.app import Services, build_services, create_app
from openpayer.config import Settings
from openpayer.oauth.testing import SmartApp, hidden, two_member_world
from openpayer.web.headers import API_CSP, PAGE_CSP

ALWAYS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def assert_always(response: httpx.Response) -> None:
    headers = response.headers
    for name, value in ALWAYS.items():
        assert headers[name] == value, name
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_security_headers_everywhere_and_no_store_on_member_data(client: TestClient) -> None:
    patient = client.post("/sandbox/fhir/Patient", json={"resourceType": "Patient"})
    assert patient.status_code == 201
    for response in (
        patient,
        client.get(f"/sandbox/fhir/Patient/{patient.json()['id']}"),
        client.get("/sandbox/fhir/Patient"),
        client.get("/sandbox/fhir/Patient/missing"),
    ):
        assert_always(response)
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
        assert response.headers["content-security-policy"] == API_CSP.decode()
        assert "strict-transport-security" not in response.headers  # plain HTTP
    for public in (
        client.get("/sandbox/fhir/metadata"),
        client.get("/sandbox/directory/Organization"),
        client.get("/healthz"),
        client.get("/nowhere"),
    ):
        assert_always(public)
        assert public.headers.get("cache-control") != "no-store"
    docs = client.get("/docs/api")  # a page with its own policy keeps it
    assert docs.headers.get_list("content-security-policy") == [docs.headers["content-security-policy"]]
    assert docs.headers["content-security-policy"] != PAGE_CSP.decode()


def test_hsts_over_https_and_with_an_https_public_url(settings: Settings, services: Services) -> None:
    with TestClient(create_app(settings, services=services), base_url="https://testserver") as https:
        response = https.get("/sandbox/directory/Organization")
        assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert_always(response)
    public = settings.model_copy(update={"public_base_url": "https://api.example-plan.org"})
    built = build_services(public)
    with TestClient(create_app(public, services=built), base_url="http://testserver") as http:
        assert http.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"
    built.engine.dispose()


@pytest.fixture
def smart(settings: Settings) -> Iterator[Services]:
    built = build_services(
        settings.model_copy(update={"auth_enforce": True, "trusted_proxies": ["10.0.0.0/8", "fd00::/8"]})
    )
    two_member_world(built, "sandbox")
    yield built
    built.engine.dispose()


def test_pages_keep_their_policy_and_auth_answers_are_not_stored(smart: Services) -> None:
    client_id, _ = smart.auth.clients.register(
        "sandbox", name="Wallet", redirect_uris=["https://app.example.com/cb"], public=True
    )
    with TestClient(create_app(smart.settings, services=smart)) as http:
        page = SmartApp(http, client_id, "https://app.example.com/cb").authorize(
            "launch/patient patient/*.rs"
        )
        assert page.status_code == 200
        policies = page.headers.get_list("content-security-policy")
        assert len(policies) == 1
        assert "form-action" in policies[0]
        assert policies[0] != PAGE_CSP.decode()  # the page's own, not the default
        assert page.headers["cache-control"] == "no-store"
        assert_always(page)
        unauthorized = http.get("/sandbox/fhir/Observation")
        assert unauthorized.status_code == 401
        assert unauthorized.headers["cache-control"] == "no-store"
        assert_always(unauthorized)
        token = http.post("/sandbox/auth/token", data={"grant_type": "client_credentials"})
        assert token.status_code in (400, 401)
        assert token.headers["cache-control"] == "no-store"


def failures_from(services: Services, address: str) -> int:
    throttle = services.security.throttle
    return throttle._counter.window(throttle.limits.address, address, time.time()).count


def sign_in_wrongly(http: TestClient, services: Services, headers: dict[str, str]) -> None:
    client_id, _ = services.auth.clients.register(
        "sandbox", name="Wallet", redirect_uris=["https://app.example.com/cb"], public=True
    )
    app = SmartApp(http, client_id, "https://app.example.com/cb")
    page = app.authorize("launch/patient patient/*.rs")
    data = {**hidden(page.text), "username": "member-a", "password": "wrong"}
    response = http.post("/sandbox/auth/authorize", data=data, headers=headers, follow_redirects=False)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("198.51.100.1, 203.0.113.9, 10.0.0.7", "203.0.113.9"),  # the left entries are the client's word
        ("not-an-address", "10.0.0.5"),
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_a_trusted_proxy_names_the_client(smart: Services, forwarded_for: str, client: str) -> None:
    app = create_app(smart.settings, services=smart)
    with TestClient(app, client=("10.0.0.5", 40000)) as http:
        sign_in_wrongly(http, smart, {"X-Forwarded-For": forwarded_for})
        assert failures_from(smart, client) == 1
        proto = http.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert proto.headers["strict-transport-security"] == "max-age=31536000"


def test_an_untrusted_peer_cannot_choose_its_address_or_scheme(smart: Services) -> None:
    app = create_app(smart.settings, services=smart)
    with TestClient(app, client=("198.51.100.7", 40000)) as http:
        sign_in_wrongly(http, smart, {"X-Forwarded-For": "203.0.113.9"})
        assert failures_from(smart, "203.0.113.9") == 0
        assert failures_from(smart, "198.51.100.7") == 1
        plain = http.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in plain.headers


def test_trusted_proxies_must_be_networks() -> None:
    with pytest.raises(ValueError, match="not-a-network"):
        Settings(trusted_proxies="10.0.0.0/8,not-a-network")  # type: ignore[arg-type]
    assert Settings(trusted_proxies="10.0.0.0/8, 192.168.1.10").trusted_proxies == [  # type: ignore[arg-type]
        "10.0.0.0/8",
        "192.168.1.10",
    ]
