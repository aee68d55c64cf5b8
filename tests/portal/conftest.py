"""Fixtures for the portal's service tests: an organization with an owner, a registered application, staff."""

from __future__ import annotations

import pytest

from openpayer.app import Services
from openpayer.portal.applications import Application, ApplicationDetails, Credentials
from openpayer.portal.organizations import Organization, OrganizationDetails
from openpayer.portal.services import Portal

OWNER = 1001
COLLEAGUE = 1002
OUTSIDER = 1003
ADMIN = 2001


def org_details(**overrides: str) -> OrganizationDetails:
    values = {
        "legal_name": "Example Health Apps, Inc.",
        "website": "https://example-app.com",
        "domain": "example-app.com",
        "address": "1 Main St, Springfield, IL 62701",
        "technical_contact_name": "Tess Tech",
        "technical_contact_email": "tech@example-app.com",
        "security_contact_name": "Sam Secure",
        "security_contact_email": "security@example-app.com",
    }
    values.update(overrides)
    return OrganizationDetails(**values)


def app_details(**overrides: object) -> ApplicationDetails:
    values: dict[str, object] = {
        "name": "My Health Wallet",
        "description": "Shows members their claims.",
        "website": "https://example-app.com",
        "privacy_policy_url": "https://example-app.com/privacy",
        "support_email": "support@example-app.com",
        "redirect_uris": ("https://example-app.com/callback", "http://127.0.0.1:3000/cb"),
        "client_type": "confidential_secret",
        "scopes": ("openid", "fhirUser", "offline_access", "patient/*.rs"),
    }
    values.update(overrides)
    return ApplicationDetails(**values)  # type: ignore[arg-type]


ANSWERS = {
    "privacy_policy_public": "yes",
    "data_sold": "no",
    "data_shared": "No",
    "secondary_uses": "None",
    "express_consent": "yes",
    "device_data": "None",
    "revocation": "In Settings > Connections; we delete the data within 30 days.",
    "carin_code_of_conduct": "yes",
    "tls_everywhere": "yes",
    "encrypted_storage": "yes",
    "no_persistent_authentication": "yes",
    "owasp_top10": "yes",
    "breach_contact": "security@example-app.com",
    "monitoring_plan": "Alerts on error rates; a health check every 30 days.",
}


@pytest.fixture
def portal(services: Services) -> Portal:
    return services.portal


@pytest.fixture
def organization(portal: Portal) -> Organization:
    return portal.organizations.create(OWNER, org_details())


@pytest.fixture
def registered(portal: Portal, organization: Organization) -> tuple[Application, Credentials]:
    return portal.applications.register(OWNER, organization.id, app_details())


@pytest.fixture
def admin(portal: Portal) -> int:
    portal.staff.create(None, account_id=ADMIN, email="admin@plan.example", role="admin")
    return ADMIN


def mails_to(services: Services, to: str) -> list[str]:
    """The text of every message recorded for `to` (by the email domain), oldest first."""
    from email import message_from_string
    from email.message import EmailMessage
    from email.policy import default

    from sqlalchemy import select

    from openpayer.email.tables import email_message

    with services.engine.connect() as conn:
        rows = conn.execute(
            select(email_message.c.mime).where(email_message.c.recipient == to).order_by(email_message.c.id)
        ).scalars()
        texts = []
        for mime in rows:
            message = message_from_string(mime, policy=default)
            assert isinstance(message, EmailMessage)
            body = message.get_body(("plain",))
            assert body is not None
            texts.append(str(body.get_content()))
    return texts
