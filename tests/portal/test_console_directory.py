"""The console's directory over HTTP: search and detail pages with status, contacts, scopes and activity per
environment; suspend, restore, rotate and remove, each permission both ways and each action audited; removing
a whole organization; and clients registered with `openpayer clients register` shown and handled as
operator-registered applications."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from openpayer.app import Services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings
from openpayer.members.models import consent_grant
from openpayer.oauth.models import oauth_token
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world
from openpayer.portal.reviews import ProductionRequest

from .conftest import ANSWERS, app_details, mails_to, org_details
from .console_world import (
    REDIRECT,
    ROLES,
    SCOPES,
    Developer,
    csrf,
    developer_world,
    staff_client,
    submit,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_enforce": True})


def test_search_and_detail_pages_show_contacts_scopes_and_activity(
    client: TestClient, services: Services
) -> None:
    ids = two_member_world(services)
    portal = services.portal
    person = portal.people.create("dev@example-app.com", "correct horse battery staple")
    organization = portal.organizations.create(person.id, org_details())
    application, credentials = portal.applications.register(
        person.id, organization.id, app_details(scopes=SCOPES, redirect_uris=(REDIRECT,))
    )
    support = staff_client(client.app, services, "support")

    found = support.get("/admin/organizations?q=example-app")
    assert "Example Health Apps, Inc." in found.text
    assert "security@example-app.com" in found.text
    assert "No organization matches" in support.get("/admin/organizations?q=nothing-like-it").text
    org_page = support.get(f"/admin/organizations/{organization.id}")
    assert "Tess Tech" in org_page.text
    assert "dev@example-app.com" in org_page.text
    assert f'href="/admin/applications/{application.id}"' in org_page.text

    app_page = support.get(f"/admin/applications/{application.id}")
    assert "patient/*.rs" in app_page.text
    assert "never" in app_page.text  # no activity yet
    sub_link = re.search(r'href="(/admin/subscriptions/\d+)">sandbox<', app_page.text)
    assert sub_link

    # A real SMART launch and FHIR call in the sandbox show up as the last authorization and call.
    smart = SmartApp(client, credentials.client_id, REDIRECT, client_secret=credentials.client_secret)
    token = smart.launch("launch/patient patient/*.rs", "member-a", TEST_PASSWORD)["access_token"]
    read = client.get(f"/sandbox/fhir/Patient/{ids['a']}", headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200
    sub_page = support.get(sub_link.group(1))
    assert sub_page.status_code == 200
    assert sub_page.text.count("never") == 0
    assert "Sam Secure" in sub_page.text
    assert "Suspend" not in sub_page.text  # support may not act

    people = support.get("/admin/people?q=dev@")
    assert "dev@example-app.com" in people.text
    detail = support.get(f"/admin/people/{person.id}")
    assert "Example Health Apps, Inc." in detail.text
    assert "not staff" in detail.text
    assert support.get("/admin/organizations/999").status_code == 404


ACTIONS = {
    # action: (roles allowed, permission named in the refusal)
    "suspend": ({"admin", "security_analyst"}, "subscriptions:suspend"),
    "rotate": ({"admin", "security_analyst"}, "subscriptions:rotate"),
    "remove": ({"admin"}, "organizations:manage"),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_subscription_actions_are_checked_both_ways_and_audited(
    client: TestClient, services: Services, action: str
) -> None:
    world = developer_world(services)
    allowed, permission = ACTIONS[action]
    url = f"/admin/subscriptions/{world.sandbox_subscription}"
    if action == "remove":  # a member's token from before, to be revoked with the subscription
        two_member_world(services)
        SmartApp(client, world.client_id, REDIRECT, client_secret=world.secret).launch(
            "launch/patient patient/*.rs", "member-a", TEST_PASSWORD
        )
    for role in ROLES:
        if role in allowed:
            continue
        http = staff_client(client.app, services, role)
        refused = submit(http, url, f"{url}/{action}", reason="testing")
        assert refused.status_code == 403, (role, refused.text)
        assert permission in refused.text
    admin = staff_client(client.app, services, sorted(allowed)[0])
    done = submit(admin, url, f"{url}/{action}", reason="Incident 42")
    assert done.status_code == 303, done.text
    page = admin.get(done.headers["location"])
    assert page.status_code == 200
    subscription = services.portal.applications.subscription_by_id(world.sandbox_subscription)
    client_row = services.auth.clients.get("sandbox", world.client_id)
    assert client_row is not None
    if action == "suspend":
        assert subscription.status == client_row.status == "suspended"
    elif action == "remove":
        assert subscription.status == client_row.status == "removed"
        with services.engine.connect() as conn:  # revoked, not only refused for the removed client
            t = oauth_token
            revoked = conn.execute(select(t.c.revoked).where(t.c.client_id == world.client_id)).scalars()
            assert list(revoked) == [True]  # the launch's access token
    token = client.post(
        "/sandbox/auth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(world.client_id, world.secret),
    )
    assert token.status_code == 401  # suspended, removed, or the secret no longer works
    trail = services.portal.staff.audit_trail(
        services.portal.staff.all(_admin_id(services))[0].account_id,
        target_type="subscription",
    )
    assert trail[0].action == f"subscription:{action}"
    assert trail[0].actor_account_id is not None
    assert "Incident 42" in json.dumps(trail[0].after)


def test_removing_an_organization_removes_its_subscriptions_tokens_and_accounts(
    client: TestClient, services: Services
) -> None:
    ids = two_member_world(services)
    world = developer_world(services)
    portal = services.portal
    # A staff member who also belongs to the organization keeps their account.
    colleague, _ = portal.actions.create_staff(None, email="ops@example-app.com", role="auditor")
    _, invitation = portal.organizations.invite(
        world.account_id, world.organization_id, "ops@example-app.com", "developer"
    )
    portal.organizations.accept(invitation, colleague.account_id, "ops@example-app.com")
    smart = SmartApp(client, world.client_id, REDIRECT, client_secret=world.secret)
    token = smart.launch("launch/patient patient/*.rs", "member-a", TEST_PASSWORD)["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/sandbox/fhir/Patient/{ids['a']}", headers=bearer).status_code == 200

    url = f"/admin/organizations/{world.organization_id}"
    for role in ROLES:
        if role == "admin":
            continue
        http = staff_client(client.app, services, role)
        assert 'id="reason-remove-organization"' not in http.get(url).text
        refused = submit(http, url, f"{url}/remove", reason="testing")
        assert refused.status_code == 403, (role, refused.text)
        assert "organizations:manage" in refused.text
    admin = staff_client(client.app, services, "admin")
    assert 'id="reason-remove-organization"' in admin.get(url).text
    assert submit(admin, url, f"{url}/remove", reason="").status_code == 422
    assert portal.organizations.get(world.organization_id).status == "active"

    done = submit(admin, url, f"{url}/remove", reason="Fraud report 7")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{url}?done=remove"
    page = admin.get(done.headers["location"])
    assert page.status_code == 200
    assert '<p class="notice" role="status">Removed: its subscriptions no longer work' in page.text
    assert "<dt>Status</dt><dd>removed</dd>" in page.text
    assert 'id="reason-remove-organization"' not in page.text

    subscription = portal.applications.subscription_by_id(world.sandbox_subscription)
    client_row = services.auth.clients.get("sandbox", world.client_id)
    assert client_row is not None
    assert subscription.status == client_row.status == "removed"
    refused_token = client.post(
        "/sandbox/auth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(world.client_id, world.secret),
    )
    assert refused_token.status_code == 401
    assert client.get(f"/sandbox/fhir/Patient/{ids['a']}", headers=bearer).status_code == 401
    with services.engine.connect() as conn:  # revoked too, not only refused for the removed client
        t, g = oauth_token, consent_grant
        tokens = conn.execute(select(t.c.revoked).where(t.c.client_id == world.client_id)).scalars().all()
        grants = conn.execute(select(g.c.revoked_at).where(g.c.client_id == world.client_id)).all()
    assert tokens
    assert all(tokens)
    assert grants
    assert all(r.revoked_at is not None for r in grants)
    assert portal.people.by_email("dev@example-app.com") is None
    assert portal.people.by_email("ops@example-app.com") is not None  # staff

    trail = portal.staff.audit_trail(_admin_id(services), target_type="organization")
    assert trail[0].action == "organization:remove"
    assert trail[0].target_id == str(world.organization_id)
    assert trail[0].before == {"status": "active", "subscriptions": [world.sandbox_subscription]}
    notified = [
        "dev@example-app.com",
        "ops@example-app.com",
        "tech@example-app.com",
        "security@example-app.com",
    ]
    assert trail[0].after == {
        "status": "removed",
        "reason": "Fraud report 7",
        "accounts_deleted": [world.account_id],
        "notified": notified,
    }
    for address in notified:  # the people and the registered contacts, told once; not the staff's reason
        (notice,) = mails_to(services, address)
        assert "Example Health Apps, Inc. was removed from the developer program" in notice
        assert "My Health Wallet" in notice
        assert "Fraud report" not in notice
    assert world.secret not in json.dumps([trail[0].before, trail[0].after])

    assert submit(admin, url, f"{url}/remove", reason="again").status_code == 409
    missing = "/admin/organizations/999999"
    assert submit(admin, url, f"{missing}/remove", reason="x").status_code == 404


def _admin_id(services: Services) -> int:
    person = services.portal.people.by_email("admin@plan.example")
    if person is None:
        member, _ = services.portal.actions.create_staff(None, email="admin@plan.example", role="admin")
        return member.account_id
    return person.id


def test_suspend_then_restore_through_the_pages(client: TestClient, services: Services) -> None:
    world = developer_world(services)
    analyst = staff_client(client.app, services, "security_analyst")
    url = f"/admin/subscriptions/{world.sandbox_subscription}"
    submit(analyst, url, f"{url}/suspend", reason="Odd traffic")
    page = analyst.get(url)
    assert "Restore" in page.text
    restored = submit(analyst, url, f"{url}/restore", reason="Cleared")
    assert restored.status_code == 303
    assert services.portal.applications.subscription_by_id(world.sandbox_subscription).status == "active"
    missing_reason = submit(analyst, url, f"{url}/suspend", reason="")
    assert missing_reason.status_code == 422
    assert submit(analyst, url, f"{url}/explode", reason="x").status_code == 404


def test_operator_registered_clients_appear_and_take_the_same_actions(
    client: TestClient,
    services: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    registered = CliRunner().invoke(
        cli_app,
        [
            "clients",
            "register",
            "sandbox",
            "--name",
            "Ops reporting tool",
            "--redirect-uri",
            "https://ops.plan.example/cb",
            "--confidential",
            "--json",
        ],
    )
    assert registered.exit_code == 0, registered.output
    client_id = json.loads(registered.output)["client_id"]
    developer_world(services)  # a portal application: not listed as operator-registered

    support = staff_client(client.app, services, "support")
    listing = support.get("/admin/applications?q=ops")
    assert "Ops reporting tool" in listing.text
    assert "My Health Wallet" not in listing.text
    url = f"/admin/clients/sandbox/{client_id}"
    assert f'href="{url}"' in listing.text
    page = support.get(url)
    assert "operator-registered" in page.text
    refused = support.post(f"{url}/suspend", data={"csrf_token": csrf(page.text), "reason": "x"})
    assert refused.status_code == 403

    analyst = staff_client(client.app, services, "security_analyst")
    assert submit(analyst, url, f"{url}/suspend", reason="Unused").status_code == 303
    assert services.auth.clients.get("sandbox", client_id).status == "suspended"  # type: ignore[union-attr]
    assert submit(analyst, url, f"{url}/restore", reason="Needed").status_code == 303
    rotated = submit(analyst, url, f"{url}/rotate", reason="Leaked in a log")
    assert rotated.status_code == 200
    secret = re.search(r'id="client-secret" class="secret">([^<]+)<', rotated.text)
    assert secret
    assert secret.group(1) not in analyst.get(url).text  # shown once
    assert submit(analyst, url, f"{url}/remove", reason="x").status_code == 403  # organizations:manage
    admin = staff_client(client.app, services, "admin")
    assert submit(admin, url, f"{url}/remove", reason="Retired").status_code == 303
    assert services.auth.clients.get("sandbox", client_id).status == "removed"  # type: ignore[union-attr]
    actions = [e.action for e in services.portal.staff.audit_trail(_admin_id(services), target_type="client")]
    assert actions == ["client:remove", "client:rotate", "client:restore", "client:suspend"]

    # A subscription's client is not reachable as an operator client.
    world_client = services.portal.applications.subscriptions(
        services.portal.oversight.find_applications(_admin_id(services))[0].id
    )[0].client_id
    assert support.get(f"/admin/clients/sandbox/{world_client}").status_code == 404


def _production_request(services: Services, world: Developer) -> ProductionRequest:
    """The developer answers the questionnaire, accepts the terms and asks for production access."""
    portal = services.portal
    portal.questionnaire.answer(world.account_id, world.application.id, ANSWERS)
    portal.terms.accept(world.account_id, world.organization_id, portal.terms.current().version)
    return portal.reviews.submit(world.account_id, world.application.id)


def test_the_review_shows_the_sandbox_record(client: TestClient, services: Services) -> None:
    ids = two_member_world(services)
    world = developer_world(services)
    request = _production_request(services, world)
    reviewer = staff_client(client.app, services, "appsec_reviewer")
    before = reviewer.get(f"/admin/requests/{request.id}")
    assert "Completed a SMART authorization in the sandbox</dt><dd>no" in before.text
    assert "Made API calls in the sandbox</dt><dd>no" in before.text

    smart = SmartApp(client, world.client_id, REDIRECT, client_secret=world.secret)
    token = smart.launch("launch/patient patient/*.rs", "member-a", TEST_PASSWORD)["access_token"]
    for path in (f"Patient/{ids['a']}", f"Observation?patient={ids['a']}"):
        assert client.get(f"/sandbox/fhir/{path}", headers={"Authorization": f"Bearer {token}"}).is_success
    after = reviewer.get(f"/admin/requests/{request.id}")
    assert "Completed a SMART authorization in the sandbox</dt><dd>yes (last " in after.text
    assert "2 successful FHIR requests" in after.text


def test_a_removed_organizations_production_request_leaves_the_queue_and_cannot_be_approved(
    client: TestClient, services: Services
) -> None:
    world = developer_world(services)
    portal = services.portal
    request = _production_request(services, world)
    reviewer = staff_client(client.app, services, "appsec_reviewer")
    page = f"/admin/requests/{request.id}"
    assert page in reviewer.get("/admin/").text

    admin = staff_client(client.app, services, "admin")
    url = f"/admin/organizations/{world.organization_id}"
    assert submit(admin, url, f"{url}/remove", reason="Fraud report 8").status_code == 303

    assert page not in reviewer.get("/admin/").text
    approved = submit(reviewer, page, f"{page}/decide", action="approve", message="")
    assert approved.status_code == 409
    assert "organization has been removed" in approved.text
    assert portal.reviews.get(request.id).state.value == "submitted"
    assert portal.applications.subscription(world.application.id, "production") is None
