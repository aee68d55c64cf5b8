"""Helpers for the console's HTTP tests: staff of every role signed in (password, then TOTP enrolment), and a
developer organization with a confidential application subscribed in the sandbox."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from openpayer.app import Services
from openpayer.portal.applications import Application

from .conftest import app_details, org_details

ROLES = ("admin", "appsec_reviewer", "security_analyst", "support", "auditor")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SEALED = re.compile(r'name="sealed" value="([^"]+)"')
_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


def csrf(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def staff_client(app: Any, services: Services, role: str, email: str | None = None) -> TestClient:
    """A browser signed in to the console as a new staff member of `role` (created as the CLI does)."""
    email = email or f"{role}@plan.example"
    _, password = services.portal.actions.create_staff(None, email=email, role=role)
    assert password
    return sign_in_staff(app, services, email, password)


def sign_in_staff(app: Any, services: Services, email: str, password: str) -> TestClient:
    """Sign in to the console for the first time: password, then TOTP enrolment (required for staff)."""
    http = TestClient(app, base_url="http://testserver")
    page = http.get("/admin/signin")
    signed = http.post(
        "/admin/signin",
        data={"email": email, "password": password, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/admin/totp", signed.text
    page = http.get("/admin/totp")
    secret, sealed = _SECRET.search(page.text), _SEALED.search(page.text)
    assert secret
    assert sealed
    code = pyotp.TOTP(secret.group(1)).at(services.clock.now())
    done = http.post(
        "/admin/totp",
        data={"csrf_token": csrf(page.text), "sealed": sealed.group(1), "code": code},
        follow_redirects=False,
    )
    assert done.status_code == 200, done.text  # the recovery codes, shown once
    return http


def submit(http: TestClient, page_url: str, action_url: str, **data: str) -> Any:
    """Load a console page (for its CSRF token) and post a form as the browser would."""
    page = http.get(page_url)
    assert page.status_code == 200, page.text
    return http.post(action_url, data={**data, "csrf_token": csrf(page.text)}, follow_redirects=False)


@dataclass
class Developer:
    account_id: int
    organization_id: int
    application: Application
    sandbox_subscription: int
    client_id: str
    secret: str


SCOPES = ("launch/patient", "openid", "fhirUser", "patient/*.rs")
REDIRECT = "https://example-app.com/callback"


def developer_world(services: Services) -> Developer:
    """A developer's organization and confidential app (redirect `REDIRECT`, `SCOPES`), sandbox subscribed."""
    portal = services.portal
    person = portal.people.create("dev@example-app.com", "correct horse battery staple")
    organization = portal.organizations.create(person.id, org_details())
    application, credentials = portal.applications.register(
        person.id, organization.id, app_details(scopes=SCOPES, redirect_uris=(REDIRECT,))
    )
    subscription = portal.applications.subscription(application.id, "sandbox")
    assert subscription is not None
    assert credentials.client_secret
    return Developer(
        person.id,
        organization.id,
        application,
        subscription.id,
        credentials.client_id,
        credentials.client_secret,
    )
