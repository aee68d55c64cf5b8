"""The inactivity policy's fixtures: a real SMTP server (aiosmtpd), an organization with a public app
subscribed in sandbox and production, and a clock the tests move to a policy day's noon."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import message_from_bytes
from email.message import Message

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from fastapi.testclient import TestClient
from pydantic import SecretStr
from tests.portal.conftest import app_details, org_details

from openpayer import healthcheck
from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp

DEVELOPER = "tess@example-app.com"  # registers the organization and the application
COLLEAGUE = "omar@example-app.com"  # invited into the organization: "other staff"
PASSWORD = "a long enough portal password"
REDIRECT = "https://example-app.com/callback"
SCOPE = "launch/patient patient/Patient.rs"


@dataclass
class Relay:
    received: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 2.0.0 OK"

    def mail(self) -> list[tuple[list[str], Message]]:
        out = []
        for envelope in self.received:
            content = envelope.content if isinstance(envelope.content, bytes) else b""
            out.append((list(envelope.rcpt_tos), message_from_bytes(content)))
        return out


@pytest.fixture
def relay() -> Iterator[Relay]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    relay = Relay()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    relay.port = port  # type: ignore[attr-defined]
    yield relay
    controller.stop()


@pytest.fixture
def settings(settings: Settings, relay: Relay) -> Settings:
    port = relay.port  # type: ignore[attr-defined]
    return settings.model_copy(
        update={
            "auth_enforce": True,
            "smtp_url": SecretStr(f"smtp://127.0.0.1:{port}"),
            "public_base_url": "http://testserver",
        }
    )


@dataclass
class World:
    services: Services
    http: TestClient
    relay: Relay
    organization_id: int
    accounts: dict[str, int]  # address -> portal account id
    sandbox: int  # subscription ids
    production: int
    clients: dict[str, str]  # env -> client_id
    day0: date

    def at(self, day: int) -> date:
        """Move the one clock to noon of policy day `day` (day 0: the subscriptions' creation)."""
        target = self.day0 + timedelta(days=day)
        clock = self.services.clock
        clock.advance(self.services.policy.noon(target) - clock.now_float())
        return target

    def sweep(self, day: int) -> list[tuple[int, str]]:
        self.at(day)
        steps = self.services.policy.sweep()
        self.services.background.runner.run_due()  # deliver the mail
        return [(s.subscription_id, s.to_state) for s in steps]

    def state(self, subscription_id: int) -> str:
        return next(
            s.row.state for s in self.services.policy.status() if s.row.subscription_id == subscription_id
        )

    def app(self, env: str) -> SmartApp:
        return SmartApp(self.http, self.clients[env], REDIRECT, env=env)

    def authorize(self, env: str) -> dict[str, object]:
        return self.app(env).launch(SCOPE, f"member-{env}", TEST_PASSWORD)

    def call(self, env: str, token: str) -> None:
        response = self.http.get(f"/{env}/fhir/metadata", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200

    def use(self, env: str) -> None:
        """What a health check does: a SMART authorization and a call to /metadata with its token."""
        self.call(env, str(self.authorize(env)["access_token"]))

    def healthcheck(self, env: str, username: str, password: str) -> healthcheck.Result:
        """`openpayer healthcheck`'s client, over HTTP to this app, as `username` in `env`."""
        options = healthcheck.Options(
            fhir_base=f"http://testserver/{env}/fhir",
            client_id=self.clients[env],
            redirect_uri=REDIRECT,
            username=username,
            password=password,
        )
        return healthcheck.run(options, transport=_Through(self.http))

    def mail(self) -> list[tuple[list[str], str]]:
        """(recipients, subject) of the mail received since the last call."""
        out = [(to, str(message["Subject"])) for to, message in self.relay.mail()]
        self.relay.received.clear()
        return out


class _Through(httpx.BaseTransport):
    """Requests of a plain `httpx.Client` served by the test client's app (its responses read in full)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.client._transport.handle_request(request)
        response.read()
        return httpx.Response(
            response.status_code, headers=response.headers.multi_items(), content=response.content
        )


@pytest.fixture
def world(services: Services, client: TestClient, relay: Relay) -> World:
    portal = services.portal
    owner = portal.people.create(DEVELOPER, PASSWORD).id
    colleague = portal.people.create(COLLEAGUE, PASSWORD).id
    organization = portal.organizations.create(
        owner,
        org_details(),
    )
    _, token = portal.organizations.invite(owner, organization.id, COLLEAGUE)
    portal.organizations.accept(token, colleague, COLLEAGUE)
    application, credentials = portal.applications.register(
        owner,
        organization.id,
        app_details(
            redirect_uris=(REDIRECT,), client_type="public", scopes=("launch/patient", "patient/Patient.rs")
        ),
    )
    production = portal.applications.subscribe_approved(application.id, "production")
    sandbox = portal.applications.subscription(application.id, "sandbox")
    assert sandbox is not None
    for env in ("sandbox", "production"):
        patient = services.fhir.create(env, "Patient", {"resourceType": "Patient"}).stored.id
        services.auth.members.create(env, f"member-{env}", TEST_PASSWORD, str(patient))
    return World(
        services,
        client,
        relay,
        organization.id,
        {DEVELOPER: owner, COLLEAGUE: colleague},
        sandbox.id,
        production.id,
        {"sandbox": credentials.client_id, "production": production.client_id},
        services.policy.local_date(sandbox.created_at),
    )
