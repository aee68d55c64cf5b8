"""Monitoring accounts: created in the portal per environment, bound to an empty synthetic Patient, used by
`openpayer healthcheck`; their use is activity; they reach no member's records; reports can tell them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from tests.policy.conftest import COLLEAGUE, DEVELOPER, PASSWORD, REDIRECT, SCOPE, World
from tests.portal.pages import csrf

from openpayer import healthcheck
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp
from openpayer.portal.monitoring import SYNTHETIC_TAG


def signed_in(world: World, email: str) -> TestClient:
    people = world.services.portal.people
    person = people.by_email(email)
    assert person is not None
    people.verify_email(people.verification_token(person))
    browser = TestClient(world.http.app, base_url="http://testserver")
    page = browser.get("/portal/signin")
    answer = browser.post(
        "/portal/signin",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return browser


def application_id(world: World) -> int:
    sub = world.services.portal.applications.subscription_by_id(world.sandbox)
    return sub.application_id


def create(browser: TestClient, app_id: int, env: str) -> tuple[int, str, str]:
    page = browser.get(f"/portal/apps/{app_id}/monitoring")
    answer = browser.post(f"/portal/apps/{app_id}/monitoring/{env}", data={"csrf_token": csrf(page.text)})
    username = re.search(r'id="monitoring-username">([^<]+)<', answer.text)
    password = re.search(r'id="monitoring-password" class="secret">([^<]+)<', answer.text)
    return answer.status_code, username.group(1) if username else "", password.group(1) if password else ""


def check(world: World, env: str, username: str, password: str) -> healthcheck.Result:
    return world.healthcheck(env, username, password)


def test_a_monitoring_account_per_environment_runs_health_checks_that_count_as_activity(world: World) -> None:
    browser = signed_in(world, COLLEAGUE)  # any member of the organization
    app_id = application_id(world)
    page = browser.get(f"/portal/apps/{app_id}/monitoring")
    assert page.status_code == 200
    assert "Create the sandbox monitoring account" in page.text
    assert "Create the production monitoring account" in page.text
    status, username, password = create(browser, app_id, "sandbox")
    assert status == 200
    assert username == f"monitor-{app_id}-sandbox"
    assert len(password) >= 20
    again, _, _ = create(browser, app_id, "sandbox")
    assert again == 409  # one per environment
    assert "monitoring" in browser.get(f"/portal/apps/{app_id}/monitoring").text
    assert password not in browser.get(f"/portal/apps/{app_id}/monitoring").text  # shown once

    result = check(world, "sandbox", username, password)
    assert result.ok, result.line()
    status_row = next(s for s in world.services.policy.status() if s.row.subscription_id == world.sandbox)
    assert status_row.row.seen.last_authorized_at is not None
    assert status_row.row.seen.last_call_at is not None
    production = next(s for s in world.services.policy.status() if s.row.subscription_id == world.production)
    assert production.row.seen.last_authorized_at is None  # judged apart
    assert not check(world, "production", username, password).ok  # a sandbox account only

    # A new password: the old one stops.
    page = browser.get(f"/portal/apps/{app_id}/monitoring")
    renewed = browser.post(
        f"/portal/apps/{app_id}/monitoring/sandbox/password", data={"csrf_token": csrf(page.text)}
    )
    new_password = re.search(r'id="monitoring-password" class="secret">([^<]+)<', renewed.text)
    assert new_password
    assert check(world, "sandbox", username, new_password.group(1)).ok
    failed = check(world, "sandbox", username, password)
    assert not failed.ok
    assert failed.step == "sign-in"


def test_a_monitoring_account_reaches_only_its_empty_synthetic_patient(world: World) -> None:
    monitoring = world.services.portal.monitoring
    created = monitoring.create(world.accounts[DEVELOPER], application_id(world), "sandbox")
    account = created.account
    member = world.services.auth.members.authenticate("sandbox", "member-sandbox", TEST_PASSWORD)
    assert member is not None
    token = SmartApp(world.http, world.clients["sandbox"], REDIRECT, env="sandbox").launch(
        SCOPE, account.username, created.password
    )
    assert token["patient"] == account.patient_id
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    own = world.http.get(f"/sandbox/fhir/Patient/{account.patient_id}", headers=bearer)
    assert own.status_code == 200
    patient = own.json()
    assert patient["meta"]["tag"][0]["code"] == SYNTHETIC_TAG["code"]
    assert not {"name", "identifier", "birthDate", "address", "telecom"} & set(patient)
    other = world.http.get(f"/sandbox/fhir/Patient/{member.patient_id}", headers=bearer)
    assert other.status_code in (403, 404)
    search = world.http.get("/sandbox/fhir/Patient", headers=bearer)
    assert [e["resource"]["id"] for e in search.json().get("entry", [])] == [account.patient_id]

    # Reports tell monitoring accounts from members.
    assert monitoring.is_monitoring("sandbox", patient_id=account.patient_id)
    assert monitoring.is_monitoring("sandbox", member_id=account.member_id)
    assert not monitoring.is_monitoring("sandbox", patient_id=member.patient_id)
    assert not monitoring.is_monitoring("production", patient_id=account.patient_id)


def test_only_the_organizations_people_manage_its_monitoring_accounts(world: World) -> None:
    people = world.services.portal.people
    people.create("outsider@elsewhere.example", PASSWORD)
    outsider = signed_in(world, "outsider@elsewhere.example")
    app_id = application_id(world)
    assert outsider.get(f"/portal/apps/{app_id}/monitoring").status_code == 403
    page = outsider.get("/portal/")
    refused = outsider.post(f"/portal/apps/{app_id}/monitoring/sandbox", data={"csrf_token": csrf(page.text)})
    assert refused.status_code == 403
    assert world.services.portal.monitoring.of_application(app_id) == []
    stranger = TestClient(world.http.app, base_url="http://testserver")
    assert stranger.get(f"/portal/apps/{app_id}/monitoring", follow_redirects=False).status_code == 303
    member = signed_in(world, DEVELOPER)
    page = member.get(f"/portal/apps/{app_id}/monitoring")
    bad_env = member.post(f"/portal/apps/{app_id}/monitoring/elsewhere", data={"csrf_token": csrf(page.text)})
    assert bad_env.status_code == 409
    no_csrf = member.post(f"/portal/apps/{app_id}/monitoring/sandbox", data={})
    assert no_csrf.status_code == 403


def test_a_removed_subscriptions_monitoring_account_stops_signing_in(world: World) -> None:
    """Removed by staff or by the inactivity policy, a subscription takes its monitoring account with it:
    the account cannot sign in any more (through any app), and its row stays for the reports."""
    monitoring = world.services.portal.monitoring
    app_id = application_id(world)
    sandbox = monitoring.create(world.accounts[DEVELOPER], app_id, "sandbox")
    production = monitoring.create(world.accounts[DEVELOPER], app_id, "production")
    assert check(world, "sandbox", sandbox.account.username, sandbox.password).ok
    members = world.services.auth.members

    world.services.portal.staff.create(None, account_id=9001, email="admin@plan.example", role="admin")
    world.services.portal.actions.remove_subscription(9001, world.sandbox, reason="retired by the plan")
    assert members.authenticate("sandbox", sandbox.account.username, sandbox.password) is None
    assert not check(world, "sandbox", sandbox.account.username, sandbox.password).ok
    assert monitoring.get(app_id, "sandbox") is not None  # kept: reports still leave its Patient out
    # The other environment's subscription and account are untouched.
    assert members.authenticate("production", production.account.username, production.password) is not None
