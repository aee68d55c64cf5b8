"""The developer portal and the staff console over HTTP: the whole journey, CSRF, permissions, refusals."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from openpayer.app import Services
from openpayer.config import Settings

from .conftest import ANSWERS, mails_to
from .pages import APP, ORG, PASSWORD, csrf, enrol_totp, post, sign_up, staff_account, staff_sign_in


def test_the_journey_from_sign_up_to_production_credentials(
    client: TestClient, services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(client, services, "dev@example-app.com")
    assert "Your organizations" in client.get("/portal/").text
    enrol_totp(client, services, "/portal")

    created = post(client, "/portal/organizations/new", "/portal/organizations/new", ORG)
    org_url = created.headers["location"]
    org_id = int(org_url.rsplit("/", 1)[1])
    registered = post(client, f"{org_url}/apps/new", f"{org_url}/apps/new", APP)
    assert registered.status_code == 200
    assert "shown only once" in registered.text
    secret = re.search(r'id="client-secret" class="secret">([^<]+)<', registered.text)
    assert secret
    application = services.portal.applications.of_organization(
        services.portal.people.by_email("dev@example-app.com").id,
        org_id,  # type: ignore[union-attr]
    )[0]
    app_url = f"/portal/apps/{application.id}"
    assert secret.group(1) not in client.get(app_url).text  # shown once, never again

    answered = post(client, f"{app_url}/questionnaire", f"{app_url}/questionnaire", ANSWERS)
    assert answered.status_code == 303
    terms = client.get(f"/portal/organizations/{org_id}/terms")
    version = re.search(r'name="version" value="([^"]+)"', terms.text)
    assert version
    accepted = client.post(
        f"/portal/organizations/{org_id}/terms",
        data={"csrf_token": csrf(terms.text), "version": version.group(1), "agree": "yes"},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    requested = post(client, app_url, f"{app_url}/production", {"note": "Ready."})
    assert requested.status_code == 303
    assert "A reviewer answers by" in client.get(app_url).text

    # The reviewer, created from the command line, signs in with TOTP and asks for a change.
    password = staff_account(settings, monkeypatch, "appsec@plan.example", "appsec_reviewer")
    reviewer = TestClient(client.app, base_url="http://testserver")
    staff_sign_in(reviewer, services, "appsec@plan.example", password)
    queue = reviewer.get("/admin/")
    assert "My Health Wallet" in queue.text
    request_url = re.search(r'href="(/admin/requests/\d+)"', queue.text)
    assert request_url
    detail = reviewer.get(request_url.group(1))
    assert "In Settings &gt; Connections" in detail.text  # the questionnaire answers, escaped
    asked = reviewer.post(
        f"{request_url.group(1)}/decide",
        data={"csrf_token": csrf(detail.text), "action": "request_changes", "message": "Link your policy."},
        follow_redirects=False,
    )
    assert asked.status_code == 303
    assert "Link your policy." in mails_to(services, "dev@example-app.com")[-1]

    # The developer answers (resubmits); the reviewer approves.
    page = client.get(app_url)
    assert "Link your policy." in page.text
    request_id = request_url.group(1).rsplit("/", 1)[1]
    client.post(
        f"/portal/requests/{request_id}/reply",
        data={"csrf_token": csrf(page.text), "message": "Linked it."},
        follow_redirects=False,
    )
    assert "Linked it." in mails_to(services, "appsec@plan.example")[-1]
    detail = reviewer.get(request_url.group(1))
    approved = reviewer.post(
        f"{request_url.group(1)}/decide",
        data={"csrf_token": csrf(detail.text), "action": "approve", "message": ""},
        follow_redirects=False,
    )
    assert approved.status_code == 303

    # Production credentials: revealed once, working at the production token endpoint.
    page = client.get(app_url)
    reveal = re.search(r'action="(/portal/apps/\d+/subscriptions/\d+/reveal)"', page.text)
    assert reveal
    shown = client.post(reveal.group(1), data={"csrf_token": csrf(page.text)})
    assert shown.status_code == 200
    client_id = re.search(r'id="client-id">([^<]+)<', shown.text)
    production_secret = re.search(r'id="client-secret" class="secret">([^<]+)<', shown.text)
    assert client_id
    assert production_secret
    token = client.post(
        "/production/auth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(client_id.group(1), production_secret.group(1)),
    )
    assert token.status_code != 401  # authenticated (a symmetric client may not use client_credentials)
    again = client.post(reveal.group(1), data={"csrf_token": csrf(page.text)})
    assert again.status_code == 409
    assert "already shown" in again.text


def test_forms_need_the_csrf_token(client: TestClient) -> None:
    client.get("/portal/signup")
    response = client.post("/portal/signup", data={"email": "a@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert "form expired" in response.text


def test_weak_passwords_are_refused_with_a_readable_message(client: TestClient) -> None:
    for password, reason in (("short", "at least 8"), ("password123", "common or breached")):
        response = post(
            client, "/portal/signup", "/portal/signup", {"email": "a@example.com", "password": password}
        )
        assert response.status_code == 422
        assert reason in response.text


def test_unverified_accounts_cannot_sign_in(client: TestClient) -> None:
    post(client, "/portal/signup", "/portal/signup", {"email": "new@example.com", "password": PASSWORD})
    response = post(
        client, "/portal/signin", "/portal/signin", {"email": "new@example.com", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "Verify your e-mail" in response.text


def test_pages_need_a_session_and_bad_input_is_readable(client: TestClient, services: Services) -> None:
    assert (
        client.get("/portal/organizations/new", follow_redirects=False).headers["location"]
        == "/portal/signin"
    )
    assert client.get("/admin/", follow_redirects=False).headers["location"] == "/admin/signin"
    missing = client.get("/portal/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    sign_up(client, services, "dev@example-app.com")
    invalid = post(
        client,
        "/portal/organizations/new",
        "/portal/organizations/new",
        {**ORG, "website": "http://x.example"},
    )
    assert invalid.status_code == 422
    assert "https://" in invalid.text
    foreign = client.get("/portal/organizations/999")
    assert foreign.status_code == 403


def test_console_permissions_both_ways(
    client: TestClient, services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(client, services, "dev@example-app.com")
    enrol_totp(client, services, "/portal")
    created = post(client, "/portal/organizations/new", "/portal/organizations/new", ORG)
    org_url = created.headers["location"]
    post(client, f"{org_url}/apps/new", f"{org_url}/apps/new", {**APP, "client_type": "public"})
    person = services.portal.people.by_email("dev@example-app.com")
    assert person is not None
    application = services.portal.applications.of_organization(person.id, int(org_url.rsplit("/", 1)[1]))[0]
    services.portal.questionnaire.answer(person.id, application.id, ANSWERS)
    services.portal.terms.accept(
        person.id, application.organization_id, services.portal.terms.current().version
    )
    request = services.portal.reviews.submit(person.id, application.id)

    support_password = staff_account(settings, monkeypatch, "support@plan.example", "support")
    support = TestClient(client.app, base_url="http://testserver")
    staff_sign_in(support, services, "support@plan.example", support_password)
    detail = support.get(f"/admin/requests/{request.id}")
    assert detail.status_code == 200  # apps:read
    assert "Approve" not in detail.text
    refused = support.post(
        f"/admin/requests/{request.id}/decide",
        data={"csrf_token": csrf(detail.text), "action": "approve"},
    )
    assert refused.status_code == 403
    assert "apps:review" in refused.text

    # A developer account is not staff: the console answers as for a wrong password.
    not_staff = post(
        client, "/admin/signin", "/admin/signin", {"email": "dev@example-app.com", "password": PASSWORD}
    )
    assert not_staff.status_code == 401
