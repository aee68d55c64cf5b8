"""Fixtures for incident response: the guard on, a webhook secret, two members, an organization whose
application has a sandbox subscription, and staff of each role."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from openpayer.bootstrap import Services
from openpayer.config import Settings
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
