"""Helpers of the page tests: forms with their CSRF token, mail links, TOTP, sign-up and staff accounts."""

from __future__ import annotations

import json
import re
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openpayer.app import Services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings

from .conftest import mails_to

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SEALED = re.compile(r'name="sealed" value="([^"]+)"')
_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
_RECOVERY_CODE = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


def csrf(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def post(client: TestClient, get_url: str, post_url: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """Load the page with the form (for its CSRF token), then submit it as a browser would."""
    page = client.get(get_url)
    return client.post(
        post_url, data={**data, "csrf_token": csrf(page.text)}, follow_redirects=False, **kwargs
    )


def link_in_last_mail(services: Services, to: str) -> str:
    text = mails_to(services, to)[-1]
    found = re.search(r"http://testserver(\S+)", text)
    assert found, text
    return found.group(1)


def code(services: Services, secret: str) -> str:
    return pyotp.TOTP(secret).at(services.auth.clock.now())


def recovery_codes(page: str) -> list[str]:
    """The recovery codes a page shows (once: at enrolment, a new authenticator or a new set)."""
    return _RECOVERY_CODE.findall(page)


def enrol_totp_with_codes(client: TestClient, services: Services, area: str) -> tuple[str, list[str]]:
    """Turn on two-step sign-in as a browser would: (the TOTP secret, the recovery codes shown once)."""
    page = client.get(f"{area}/totp")
    secret = _SECRET.search(page.text)
    sealed = _SEALED.search(page.text)
    assert secret
    assert sealed
    response = client.post(
        f"{area}/totp",
        data={
            "csrf_token": csrf(page.text),
            "sealed": sealed.group(1),
            "code": code(services, secret.group(1)),
        },
        follow_redirects=False,
    )
    assert response.status_code == 200, response.text
    assert "Two-step sign-in is on" in response.text
    codes = recovery_codes(response.text)
    assert len(codes) == 10
    return secret.group(1), codes


def enrol_totp(client: TestClient, services: Services, area: str) -> str:
    return enrol_totp_with_codes(client, services, area)[0]


def sign_up(client: TestClient, services: Services, email: str) -> None:
    response = post(client, "/portal/signup", "/portal/signup", {"email": email, "password": PASSWORD})
    assert response.status_code == 200
    assert "Check your e-mail" in response.text
    verified = client.get(link_in_last_mail(services, email))
    assert "verified" in verified.text
    signed_in = post(client, "/portal/signin", "/portal/signin", {"email": email, "password": PASSWORD})
    assert signed_in.status_code == 303


ORG = {
    "legal_name": "Example Health Apps, Inc.",
    "website": "https://example-app.com",
    "domain": "example-app.com",
    "address": "1 Main St, Springfield, IL",
    "technical_contact_name": "Tess Tech",
    "technical_contact_email": "tech@example-app.com",
    "security_contact_name": "Sam Secure",
    "security_contact_email": "security@example-app.com",
}
APP = {
    "name": "My Health Wallet",
    "description": "Shows members their claims.",
    "website": "https://example-app.com",
    "privacy_policy_url": "https://example-app.com/privacy",
    "support_email": "support@example-app.com",
    "redirect_uris": "https://example-app.com/callback\nhttp://127.0.0.1:3000/cb",
    "client_type": "confidential_secret",
    "scopes": "openid fhirUser patient/*.rs",
}


def staff_account(cli_settings: Settings, monkeypatch: pytest.MonkeyPatch, email: str, role: str) -> str:
    monkeypatch.setenv("OPENPAYER_HOME", str(cli_settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", cli_settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    result = CliRunner().invoke(cli_app, ["staff", "create", "--email", email, "--role", role, "--json"])
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["temporary_password"])


def staff_sign_in(client: TestClient, services: Services, email: str, password: str) -> None:
    response = post(client, "/admin/signin", "/admin/signin", {"email": email, "password": password})
    assert response.headers["location"] == "/admin/totp"
    enrol_totp(client, services, "/admin")
