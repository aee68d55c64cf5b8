"""Fixtures for incident response: the guard on, a webhook secret, two members, an organization whose
application has a sandbox subscription, and staff of each role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_string
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.email.tables import email_message
from openpayer.oauth.testing import two_member_world
from openpayer.portal.applications import ApplicationDetails
from openpayer.portal.organizations import OrganizationDetails

OWNER = 1001
ADMIN = 2001
ANALYST = 2002
SUPPORT = 2003
REDIRECT = "https://example-app.com/callback"
WEBHOOK_SECRET = "breach-webhook-test-secret"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"auth_enforce": True, "breach_webhook_secret": SecretStr(WEBHOOK_SECRET)}
    )


@pytest.fixture
def world(services: Services) -> dict[str, str]:
    return two_member_world(services, "sandbox")


@dataclass(frozen=True)
class Registered:
    organization_id: int
    application_id: int
    subscription_id: int
    client_id: str


def organization_details(domain: str = "example-app.com") -> OrganizationDetails:
    return OrganizationDetails(
        legal_name="Example Health Apps, Inc.",
        website=f"https://{domain}",
        domain=domain,
        address="1 Main St, Springfield, IL 62701",
        technical_contact_name="Tess Tech",
        technical_contact_email=f"tech@{domain}",
        security_contact_name="Sam Secure",
        security_contact_email=f"security@{domain}",
    )


def register(services: Services, domain: str = "example-app.com", owner: int = OWNER) -> Registered:
    """An organization with one public application and its sandbox subscription."""
    portal = services.portal
    organization = portal.organizations.create(owner, organization_details(domain))
    details = ApplicationDetails(
        name="My Health Wallet",
        description="Shows members their claims.",
        website=f"https://{domain}",
        privacy_policy_url=f"https://{domain}/privacy",
        support_email=f"support@{domain}",
        redirect_uris=(REDIRECT,),
        client_type="public",  # type: ignore[arg-type]
        scopes=("openid", "fhirUser", "offline_access", "launch/patient", "patient/*.rs"),
    )
    application, credentials = portal.applications.register(owner, organization.id, details)
    subscription = portal.applications.subscription(application.id, "sandbox")
    assert subscription is not None
    return Registered(organization.id, application.id, subscription.id, credentials.client_id)


@pytest.fixture
def registered(services: Services) -> Registered:
    return register(services)


@pytest.fixture
def staff(services: Services) -> dict[str, int]:
    create = services.portal.staff.create
    create(None, account_id=ADMIN, email="admin@plan.example", role="admin")
    create(None, account_id=ANALYST, email="analyst@plan.example", role="security_analyst")
    create(None, account_id=SUPPORT, email="support@plan.example", role="support")
    return {"admin": ADMIN, "analyst": ANALYST, "support": SUPPORT}


# ---- the console over HTTP ---------------------------------------------------------------------------
STAFF_PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SEALED = re.compile(r'name="sealed" value="([^"]+)"')
_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


def csrf(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def staff_person(services: Services, email: str, role: str) -> int:
    """A portal account with a staff role (as `openpayer staff create` makes one); its account id."""
    person = services.portal.people.create(email, STAFF_PASSWORD)
    services.portal.staff.create(None, account_id=person.id, email=email, role=role)
    return person.id


def console(app: Any, services: Services, email: str) -> TestClient:
    """A browser-like client signed in to the console: password, then TOTP enrolment."""
    http = TestClient(app, base_url="http://testserver")
    page = http.get("/admin/signin")
    signed = http.post(
        "/admin/signin",
        data={"email": email, "password": STAFF_PASSWORD, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/admin/totp", signed.text
    enrol = http.get("/admin/totp")
    secret, sealed = _SECRET.search(enrol.text), _SEALED.search(enrol.text)
    assert secret
    assert sealed
    done = http.post(
        "/admin/totp",
        data={
            "csrf_token": csrf(enrol.text),
            "sealed": sealed.group(1),
            "code": pyotp.TOTP(secret.group(1)).at(services.clock.now()),
        },
        follow_redirects=False,
    )
    assert done.status_code == 200, done.text  # the recovery codes, shown once
    return http


def submit(http: TestClient, page_url: str, action: str, data: dict[str, str]) -> Any:
    """Load the page (for its CSRF token) and post the form as a browser would."""
    page = http.get(page_url)
    return http.post(action, data={**data, "csrf_token": csrf(page.text)}, follow_redirects=False)


def mails_to(services: Services, to: str) -> list[tuple[str, str]]:
    """(subject, plain text) of every message recorded for `to`, oldest first."""
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(email_message.c.mime).where(email_message.c.recipient == to).order_by(email_message.c.id)
        ).scalars()
        out = []
        for mime in rows:
            message = message_from_string(mime, policy=default)
            assert isinstance(message, EmailMessage)
            body = message.get_body(("plain",))
            assert body is not None
            out.append((str(message["Subject"]), str(body.get_content())))
    return out
