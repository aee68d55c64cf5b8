"""Issue 10, "How it will be checked": the whole journey in chromium, every mail through a real SMTP server.

A developer signs up and verifies the address from the mail, sets up two-step sign-in, creates an
organization and invites a colleague (who signs up and joins), registers a public sandbox app and completes
the SMART flow in the sandbox with it, answers the questionnaire, accepts the terms and requests production.
A reviewer (created with `openpayer staff create`) signs in to the console, asks for a change; the developer
answers; the reviewer approves. The developer reveals the production credentials once and completes a
production SMART flow as a member created with the CLI (`openpayer load`, `openpayer members create`). The
member sees the app in the production gallery and in their connected apps, disconnects it, and the app's
token stops working at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pyotp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from pydantic import SecretStr
from tests.browser.conftest import DESKTOP, _open_page
from tests.live import free_port
from typer.testing import CliRunner

from openpayer.bootstrap import Services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, pkce_pair, query_of, two_member_world

# Generous timeouts: the machine running the tests may be busy (the default is 5 s).
http_get = partial(httpx.get, timeout=120)
http_post = partial(httpx.post, timeout=120)

PASSWORD = "correct horse battery staple"
DEV, COLLEAGUE = "dev@example-app.com", "colleague@example-app.com"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"


@dataclass
class Mailbox:
    """What the test SMTP server received (aiosmtpd, in this process)."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = message_from_bytes(content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 2.0.0 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def settings(settings: Settings, mailbox: tuple[Mailbox, int]) -> Settings:
    """Mail goes to the test SMTP server (delivered when the test runs the job runner)."""
    return settings.model_copy(update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{mailbox[1]}")})


@pytest.fixture
def other_pages(browser: Any) -> Iterator[Callable[[], Any]]:
    """More desktop pages, each its own browser context (a colleague, a reviewer), under the same watch."""
    opened: list[Iterator[Any]] = []

    def open_page() -> Any:
        generator = _open_page(browser, viewport=DESKTOP)
        opened.append(generator)
        return next(generator)

    yield open_page
    for generator in opened:
        next(generator, None)  # closes the context and checks for external requests and errors


def link_in_mail(services: Services, box: Mailbox, to: str, subject_has: str = "") -> str:
    """Deliver what is queued (the job runner), then the first link of the newest mail to `to`."""
    services.background.runner.run_due()
    for recipients, message in reversed(box.messages):
        if to in recipients and subject_has in str(message["subject"]):
            body = message.get_body(("plain",))
            assert body is not None
            found = re.search(r"https?://\S+", str(body.get_content()))
            assert found, body.get_content()
            return found.group(0)
    raise AssertionError(f"no mail to {to} ({[m[0] for m in box.messages]})")


def fill(page: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"#{name}", value)


def sign_up(page: Any, server: str, services: Services, box: Mailbox, email: str) -> None:
    page.goto(server + "/portal/signup")
    fill(page, {"email": email, "password": PASSWORD})
    page.click("text=Create account")
    assert page.locator("h1").inner_text() == "Check your e-mail"
    page.goto(link_in_mail(services, box, email))
    assert "verified" in page.locator("main").inner_text()
    page.goto(server + "/portal/signin")
    fill(page, {"email": email, "password": PASSWORD})
    page.click("button[type=submit].primary")


def enrol_totp(page: Any, services: Services) -> None:
    secret = page.locator("#totp-secret").inner_text()
    page.fill("#code", pyotp.TOTP(secret).at(services.auth.clock.now()))
    page.click("button[type=submit].primary")
    page.locator("h1", has_text="Two-step sign-in is on").wait_for()  # the recovery codes, shown once
    page.click("main a:has-text('Continue')")


def smart_flow(page: Any, server: str, env: str, client_id: str, username: str, password: str) -> str:
    """Authorize in the browser as `username`, allow everything, exchange the code; the access token."""
    redirect = f"{server}/app-callback"
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": SCOPE,
        "state": f"journey-{env}",
        "aud": f"{server}/{env}/fhir",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto(f"{server}/{env}/auth/authorize?{urlencode(query)}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    assert "Example Health Apps, Inc." in page.inner_text("#developer")
    assert "Says it does not sell your data." in page.inner_text("#attestations")
    with page.expect_navigation():
        page.click("button[name=decision][value=allow]")
    params = query_of(page.url)
    assert params["state"] == f"journey-{env}"
    response = http_post(
        f"{server}/{env}/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": redirect,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    patient = http_get(
        f"{server}/{env}/fhir/Patient/{tokens['patient']}",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert patient.status_code == 200, patient.text
    return str(tokens["access_token"])


def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_whole_journey(
    server: str,
    page: Any,
    phone_page: Any,
    other_pages: Callable[[], Any],
    services: Services,
    settings: Settings,
    mailbox: tuple[Mailbox, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    assert_accessible: Callable[[Any], None],
    assert_fits_width: Callable[[Any], None],
) -> None:
    box = mailbox[0]
    dev = page
    two_member_world(services, "sandbox")

    # ---- the developer: account, two-step sign-in, organization, a colleague -------------------------
    sign_up(dev, server, services, box, DEV)
    assert dev.locator("h1").inner_text() == "Your organizations"
    dev.click("text=Set it up")
    enrol_totp(dev, services)
    dev.goto(server + "/portal/organizations/new")
    fill(
        dev,
        {
            "legal_name": "Example Health Apps, Inc.",
            "website": "https://example-app.com",
            "domain": "example-app.com",
            "address": "1 Main St, Springfield, IL",
            "technical_contact_name": "Tess Tech",
            "technical_contact_email": "tech@example-app.com",
            "security_contact_name": "Sam Secure",
            "security_contact_email": "security@example-app.com",
        },
    )
    dev.click("text=Create organization")
    org_url = dev.url
    dev.fill("#invite-email", COLLEAGUE)
    dev.click("text=Send invitation")
    assert COLLEAGUE in dev.locator("main").inner_text()  # pending
    invitation = link_in_mail(services, box, COLLEAGUE)
    colleague = other_pages()
    sign_up(colleague, server, services, box, COLLEAGUE)
    colleague.goto(invitation)
    colleague.click("text=Accept the invitation")
    assert colleague.locator("h1").inner_text() == "Example Health Apps, Inc."
    dev.goto(org_url)
    assert "colleague@example-app.com developer" in dev.locator("main").inner_text()

    # ---- a sandbox app, and the SMART flow in the sandbox with it ------------------------------------
    dev.click("text=Register an application")
    fill(
        dev,
        {
            "name": "My Health Wallet",
            "description": "Shows members their claims.",
            "website": "https://example-app.com",
            "privacy_policy_url": "https://example-app.com/privacy",
            "support_email": "support@example-app.com",
            "redirect_uris": f"{server}/app-callback",
        },
    )
    dev.check("input[value=public]")
    dev.click("button[type=submit].primary")
    sandbox_client = dev.locator("#client-id").inner_text()
    dev.click("text=Continue to the application")
    app_url = dev.url

    dev.click("text=answer it")
    for question in dev.locator("fieldset.question").all():
        question.locator("input[value=yes]").check()
    dev.locator("fieldset.question").filter(has_text="sold").locator("input[value=no]").check()
    fill(
        dev,
        {
            "q-data_shared": "No",
            "q-secondary_uses": "None",
            "q-device_data": "None",
            "q-revocation": "In Settings; data deleted within 30 days.",
            "q-breach_contact": "security@example-app.com",
            "q-monitoring_plan": "Alerts; a health check every 30 days.",
        },
    )
    dev.click("text=Save answers")
    smart_flow(dev, server, "sandbox", sandbox_client, "member-a", TEST_PASSWORD)

    dev.goto(app_url)
    dev.click("a >> text='accept'")
    dev.check("input[name=agree]")
    dev.click("button[type=submit].primary")
    dev.goto(app_url)
    dev.click("text=Request production access")
    assert "A reviewer answers by" in dev.locator("main").inner_text()

    # ---- the reviewer asks for a change, the developer answers, the reviewer approves ----------------
    created = cli(
        settings,
        monkeypatch,
        "staff",
        "create",
        "--email",
        "appsec@plan.example",
        "--role",
        "appsec_reviewer",
        "--json",
    )
    reviewer = other_pages()
    reviewer.goto(server + "/admin/signin")
    fill(reviewer, {"email": "appsec@plan.example", "password": json.loads(created)["temporary_password"]})
    reviewer.click("button[type=submit].primary")
    enrol_totp(reviewer, services)
    reviewer.click("text=My Health Wallet")
    request_url = reviewer.url
    reviewer.fill("#message", "Please link your privacy policy from the sign-in screen.")
    reviewer.click("button[value=request_changes]")
    assert "privacy policy from the sign-in screen" in link_in_mail_text(services, box, DEV)

    dev.goto(app_url)
    assert "privacy policy from the sign-in screen" in dev.locator("main").inner_text()
    dev.locator("textarea[id^=reply-]").fill("Linked it from the sign-in screen.")
    dev.click("section.request button[type=submit]")
    reviewer.goto(request_url)
    assert "Linked it from the sign-in screen." in reviewer.locator("main").inner_text()
    reviewer.click("button[value=approve]")
    assert "approved" in reviewer.locator("main").inner_text()

    # ---- production credentials, once; a production member from the CLI; a production SMART flow -----
    dev.goto(app_url)
    dev.click("text=Reveal credentials")
    assert "production credentials" in dev.locator("h1").inner_text()
    production_client = dev.locator("#client-id").inner_text()
    assert production_client != sandbox_client
    dev.goto(app_url)
    assert dev.locator("text=Reveal credentials").count() == 0  # shown once

    patient = tmp_path / "patient.ndjson"
    patient.write_text(
        json.dumps({"resourceType": "Patient", "id": "prod-1", "name": [{"family": "Rivera"}]})
    )
    cli(settings, monkeypatch, "load", "production", str(patient), "--workers", "0", "--quiet")
    cli(
        settings,
        monkeypatch,
        "members",
        "create",
        "production",
        "--username",
        "rivera",
        "--password",
        "Rivera-Member-1!",
        "--patient",
        "prod-1",
    )
    token = smart_flow(dev, server, "production", production_client, "rivera", "Rivera-Member-1!")

    # ---- the member: the gallery, their connected apps, disconnect; the token stops at once ----------
    member = phone_page
    member.goto(f"{server}/production/auth/apps")
    assert "My Health Wallet" in member.locator("#gallery").inner_text()
    member.goto(f"{server}/production/auth/account")
    member.fill("#username", "rivera")
    member.fill("#password", "Rivera-Member-1!")
    member.click("button[type=submit].primary")
    entry = member.locator(f"li[data-client-id='{production_client}']")
    assert "My Health Wallet" in entry.inner_text()
    assert_accessible(member)
    assert_fits_width(member)
    fhir = f"{server}/production/fhir/Patient/prod-1"
    assert http_get(fhir, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with member.expect_navigation():
        entry.locator("button.danger").click()
    assert member.locator("#no-connections").is_visible()
    assert http_get(fhir, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def link_in_mail_text(services: Services, box: Mailbox, to: str) -> str:
    """The plain text of the newest mail to `to`, after delivering what is queued."""
    services.background.runner.run_due()
    for recipients, message in reversed(box.messages):
        if to in recipients:
            body = message.get_body(("plain",))
            assert body is not None
            return str(body.get_content())
    raise AssertionError(f"no mail to {to}")
