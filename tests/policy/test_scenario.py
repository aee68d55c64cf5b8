"""The inactivity policy through every rule, by time travel: the one clock moves to a policy day's noon,
the sweep runs, and a real SMTP server receives the notices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from tests.policy.conftest import COLLEAGUE, DEVELOPER, PASSWORD, World
from typer.testing import CliRunner

from openpayer.cli.main import app as cli_app
from openpayer.config import Settings
from openpayer.policy.engine import add_months
from openpayer.portal.models import portal_organization, portal_subscription

DEV = [DEVELOPER]  # the account that registered the application
STAFF = [COLLEAGUE]  # the organization's other people
CONTACTS = ["tech@example-app.com", "security@example-app.com"]  # the organization's registered contacts


def days_until_escalation(world: World, second_notice_day: int) -> int:
    second = world.day0 + timedelta(days=second_notice_day)
    return (add_months(second, 1) - world.day0).days


def test_silence_runs_the_whole_outreach_then_removes_the_organization(world: World) -> None:
    application_id = world.services.portal.applications.subscription_by_id(world.sandbox).application_id
    monitor = world.services.portal.monitoring.create(world.accounts[DEVELOPER], application_id, "sandbox")
    first_refresh = world.app("sandbox").launch(
        "launch/patient patient/Patient.rs offline_access", "member-sandbox", "correct horse battery staple"
    )
    # Authorizing only (no API call) is not activity: the 60 days count from the subscriptions' creation.
    assert world.sweep(59) == []
    assert world.mail() == []
    assert sorted(world.sweep(60)) == sorted(
        [(world.sandbox, "first_notice"), (world.production, "first_notice")]
    )
    mail = world.mail()
    assert len(mail) == 2
    assert all(to == DEV and "no recent use" in subject for to, subject in mail)
    assert world.sweep(60) == []  # a second sweep the same day (or another host's) sends nothing
    assert world.sweep(73) == []
    assert len(world.sweep(74)) == 2
    assert {subject.split(":")[0] for _, subject in world.mail()} == {"Second notice"}
    escalation = days_until_escalation(world, 74)
    assert world.sweep(escalation - 1) == []
    assert len(world.sweep(escalation)) == 2
    mail = world.mail()
    assert sorted(to[0] for to, _ in mail) == sorted(STAFF * 2)
    assert world.sweep(escalation + 6) == []
    assert world.mail() == []
    removal = world.sweep(escalation + 7)
    assert removal[0] == (world.sandbox, "removed")  # the production one was removed with its organization
    mail = world.mail()
    assert {to[0] for to, _ in mail} == {*DEV, *STAFF, *CONTACTS}  # the whole organization
    assert all("removed for inactivity" in subject for _, subject in mail)
    assert world.sweep(escalation + 30) == []

    # Credentials, tokens and grants stopped at once; the organization's records stay, marked removed.
    refused = world.app("sandbox").refresh(str(first_refresh["refresh_token"]))
    assert refused.status_code in (400, 401)
    page = world.app("sandbox").authorize("launch/patient patient/Patient.rs")
    assert page.status_code == 400
    with world.services.engine.connect() as conn:
        statuses = conn.execute(select(portal_subscription.c.status)).scalars().all()
        org = conn.execute(select(portal_organization.c.status)).scalar_one()
    assert statuses == ["removed", "removed"]
    assert org == "removed"
    # The organization's accounts are gone: nobody signs in; the same people sign up again from step 1.
    portal = world.services.portal
    assert portal.people.authenticate(DEVELOPER, PASSWORD) is None
    assert portal.people.by_email(COLLEAGUE) is None
    assert portal.people.create(DEVELOPER, PASSWORD).email == DEVELOPER
    members = world.services.auth.members  # and the monitoring account signs in no more
    assert members.authenticate("sandbox", monitor.account.username, monitor.password) is None
    assert world.state(world.production) == "removed"  # removed with its organization
    history = world.services.policy.transitions(world.sandbox)
    assert [t["to_state"] for t in history] == ["first_notice", "second_notice", "escalated", "removed"]
    assert history[0]["last_authorized_at"] is not None
    assert history[0]["last_call_at"] is None


@pytest.mark.parametrize("stage", ["first_notice", "second_notice", "escalated"])
def test_a_response_at_any_stage_ends_the_outreach_and_restarts_the_window(world: World, stage: str) -> None:
    world.services.policy.pause(
        world.production, until=world.day0 + timedelta(days=400), reason="x", actor="t"
    )
    days = {"first_notice": 60, "second_notice": 74, "escalated": days_until_escalation(world, 74)}
    for step_day in (60, 74, days["escalated"]):
        world.sweep(step_day)
        if step_day == days[stage]:
            break
    assert world.state(world.sandbox) == stage
    link_mail = world.relay.mail()[-1][1]
    body = link_mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    link = next(line for line in body.decode().splitlines() if "/policy/still-in-use?" in line).strip()
    path = link.removeprefix("http://testserver")
    page = world.http.get(path)
    assert page.status_code == 200
    assert "still" in page.text
    answered = world.http.post(path)
    assert answered.status_code == 200
    assert "Thank you" in answered.text
    assert world.state(world.sandbox) == "active"
    assert world.http.post(path).status_code == 410  # a link answers once (its cycle is over)
    assert world.http.post(path.replace("&t=", "&t=0")).status_code == 403
    world.mail()
    responded = days[stage]
    assert world.sweep(responded + 59) == []
    assert world.sweep(responded + 60) == [(world.sandbox, "first_notice")]


def test_activity_again_ends_the_outreach_and_staff_can_record_a_response(
    world: World, settings: Settings
) -> None:
    world.sweep(60)
    world.at(65)
    world.use("sandbox")
    assert sorted(world.sweep(66)) == [(world.sandbox, "active")]
    assert world.state(world.production) == "first_notice"
    world.at(70)
    runner = CliRunner()
    env = {"OPENPAYER_HOME": str(settings.home), "OPENPAYER_DATABASE_URL": settings.resolved_database_url}
    env["OPENPAYER_SECRET_KEY"] = "test-secret"
    result = runner.invoke(cli_app, ["policy", "respond", str(world.production), "--staff", "ana"], env=env)
    assert result.exit_code == 0, result.output
    assert world.state(world.production) == "active"
    history = world.services.policy.transitions(world.production)
    assert history[-1]["actor"] == "staff:ana"


def test_only_authorizing_or_only_calling_is_inactive_and_environments_are_judged_apart(world: World) -> None:
    world.at(30)
    assert world.authorize("sandbox")["access_token"]  # sandbox authorizes at day 30, never calls
    # production only calls (as an app refreshing an old authorization would): no authorization recorded
    world.services.auth.activity.called("production", world.clients["production"])
    assert sorted(world.sweep(60)) == sorted(
        [(world.sandbox, "first_notice"), (world.production, "first_notice")]
    )
    world.at(61)
    world.use("sandbox")  # sandbox authorizes and calls: active again; production is judged on its own
    assert world.sweep(62) == [(world.sandbox, "active")]
    assert world.state(world.production) == "first_notice"
    assert world.sweep(76) == [(world.production, "second_notice")]
    assert (world.sandbox, "first_notice") not in world.sweep(61 + 59)
    assert (world.sandbox, "first_notice") in world.sweep(61 + 60)


def test_a_paused_subscription_is_left_alone_until_its_pause_ends(world: World) -> None:
    end = world.day0 + timedelta(days=200)
    world.services.policy.pause(
        world.sandbox, until=end, reason="seasonal: open enrollment", actor="staff:ana"
    )
    world.services.policy.pause(world.production, until=end, reason="seasonal", actor="staff:ana")
    for day in (60, 74, 120, 199):
        assert world.sweep(day) == []
    assert sorted(world.sweep(200)) == sorted([(world.sandbox, "active"), (world.production, "active")])
    assert world.sweep(259) == []
    assert len(world.sweep(260)) == 2
    assert world.services.policy.transitions(world.sandbox)[0]["reason"].endswith("open enrollment")


def test_a_health_check_every_30_days_keeps_a_subscription_active_for_a_year(world: World) -> None:
    """`openpayer healthcheck` (its client, over HTTP) as the portal's monitoring account of each
    environment, every 30 days: a year of daily sweeps, no step and no mail."""
    application_id = world.services.portal.applications.subscription_by_id(world.sandbox).application_id
    accounts = {
        env: world.services.portal.monitoring.create(world.accounts[DEVELOPER], application_id, env)
        for env in ("sandbox", "production")
    }
    for day in range(0, 366):
        if day % 30 == 0:
            world.at(day)
            for env, created in accounts.items():
                result = world.healthcheck(env, created.account.username, created.password)
                assert result.ok, result.line()
        assert world.sweep(day) == []
    assert world.mail() == []
    assert world.state(world.sandbox) == "active"
    assert world.state(world.production) == "active"


def test_the_commands_preview_and_sweep_as_of_a_date(world: World, settings: Settings) -> None:
    runner = CliRunner()
    env = {
        "OPENPAYER_HOME": str(settings.home),
        "OPENPAYER_DATABASE_URL": settings.resolved_database_url,
        "OPENPAYER_SECRET_KEY": "test-secret",
        "COLUMNS": "200",
    }
    day60 = (world.day0 + timedelta(days=60)).isoformat()
    dry = runner.invoke(cli_app, ["policy", "sweep", "--as-of", day60, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would move active → first_notice" in dry.output
    assert "2 step(s) (dry run)" in dry.output
    assert world.state(world.sandbox) == "active"
    status = runner.invoke(cli_app, ["policy", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert f"first_notice on {day60}" in status.output
    real = runner.invoke(cli_app, ["policy", "sweep", "--as-of", day60], env=env)
    assert real.exit_code == 0, real.output
    assert "2 step(s)" in real.output
    assert world.state(world.sandbox) == "first_notice"
    bad = runner.invoke(cli_app, ["policy", "sweep", "--as-of", "someday"], env=env)
    assert bad.exit_code == 2
