"""Who the notices go to, and what a removal removes, with a real SMTP server."""

from __future__ import annotations

from sqlalchemy import select
from tests.policy.conftest import COLLEAGUE, DEVELOPER, PASSWORD, World
from tests.policy.test_scenario import days_until_escalation

from openpayer.portal.models import portal_organization, portal_subscription


def recipients(world: World) -> list[list[str]]:
    return sorted(to for to, _ in world.mail())


def test_the_developer_is_the_technical_contact_account_once_the_registering_account_left(
    world: World,
) -> None:
    portal = world.services.portal
    tech = portal.people.create("tech@example-app.com", PASSWORD).id
    owner = world.accounts[DEVELOPER]
    _, token = portal.organizations.invite(owner, world.organization_id, "tech@example-app.com", "owner")
    portal.organizations.accept(token, tech, "tech@example-app.com")
    portal.organizations.remove_member(owner, world.organization_id, owner)  # Tess leaves
    world.sweep(60)
    assert recipients(world) == [["tech@example-app.com"]] * 2
    world.sweep(74)
    assert recipients(world) == [["tech@example-app.com"]] * 2
    world.sweep(days_until_escalation(world, 74))
    assert recipients(world) == [[COLLEAGUE]] * 2  # the other person still in the organization


def test_an_organization_without_other_people_escalates_to_its_security_contact(world: World) -> None:
    portal = world.services.portal
    portal.organizations.remove_member(
        world.accounts[COLLEAGUE], world.organization_id, world.accounts[COLLEAGUE]
    )
    world.sweep(60)
    assert recipients(world) == [[DEVELOPER]] * 2
    world.sweep(74)
    world.mail()
    world.sweep(days_until_escalation(world, 74))
    assert sorted(recipients(world)) == [
        ["security@example-app.com"],
        ["security@example-app.com"],
        ["tech@example-app.com"],
        ["tech@example-app.com"],
    ]


def test_only_the_inactive_subscription_is_removed_while_another_is_in_use(world: World) -> None:
    escalation = days_until_escalation(world, 74)
    steps = []
    for day in range(0, escalation + 8):  # production is used every 30 days; sandbox never
        world.at(day)
        if day % 30 == 0:
            world.use("production")
        if day == escalation + 7:
            world.mail()
        steps += [(day, *step) for step in world.sweep(day)]
    sandbox = world.sandbox
    assert steps == [
        (60, sandbox, "first_notice"),
        (74, sandbox, "second_notice"),
        (escalation, sandbox, "escalated"),
        (escalation + 7, sandbox, "removed"),
    ]
    assert recipients(world) == sorted(
        [[DEVELOPER], [COLLEAGUE], ["tech@example-app.com"], ["security@example-app.com"]]
    )
    with world.services.engine.connect() as conn:
        statuses = dict(conn.execute(select(portal_subscription.c.id, portal_subscription.c.status)).all())
        org = conn.execute(select(portal_organization.c.status)).scalar_one()
    assert statuses == {world.sandbox: "removed", world.production: "active"}
    assert org == "active"
    assert world.services.portal.people.authenticate(DEVELOPER, PASSWORD) is not None  # accounts stay
    assert world.state(world.production) == "active"
    token = world.authorize("production")["access_token"]  # production still works
    world.call("production", str(token))
    refused = world.app("sandbox").authorize("launch/patient patient/Patient.rs")
    assert refused.status_code == 400
