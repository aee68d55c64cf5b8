"""Incidents through the console over HTTP: a timeline of creation, actions, notes and status changes;
suspend and restore that bite at once; rotation; JSON export; every action audited; permissions both ways."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from openpayer.bootstrap import Services
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp
from openpayer.portal.staff import Permission

from .conftest import REDIRECT, Registered, console, csrf, staff_person, submit


def test_an_incident_timeline_with_suspension_restore_notes_and_export(
    client: TestClient, services: Services, world: dict[str, str], registered: Registered
) -> None:
    analyst_id = staff_person(services, "analyst@plan.example", "security_analyst")
    analyst = console(client.app, services, "analyst@plan.example")
    app = SmartApp(client, registered.client_id, REDIRECT)
    token = app.launch("launch/patient patient/*.rs", "member-a", TEST_PASSWORD)["access_token"]
    read = f"/sandbox/fhir/Patient/{world['a']}"
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(read, headers=bearer).status_code == 200

    created = submit(
        analyst,
        "/admin/incidents",
        "/admin/incidents",
        {
            "title": "Credential stuffing through My Health Wallet",
            "severity": "high",
            "summary": "Many failed sign-ins from many addresses",
            "subscriptions": str(registered.subscription_id),
        },
    )
    assert created.status_code == 303
    url = created.headers["location"]
    incident_id = int(url.rsplit("/", 1)[1])

    suspended = submit(
        analyst,
        url,
        f"{url}/act",
        {"action": "suspend", "subscription_id": str(registered.subscription_id), "reason": "stuffing"},
    )
    assert suspended.status_code == 303
    assert client.get(read, headers=bearer).status_code == 401
    assert "This app is suspended" in app.authorize("launch/patient patient/*.rs").text

    submit(analyst, url, f"{url}/note", {"body": "Developer confirms a leaked test account list."})
    submit(analyst, url, f"{url}/change", {"field": "status", "status": "contained"})
    submit(analyst, url, f"{url}/change", {"field": "owner_account_id", "owner_account_id": "me"})  # already
    restored = submit(
        analyst,
        url,
        f"{url}/act",
        {"action": "restore", "subscription_id": str(registered.subscription_id), "reason": "fixed"},
    )
    assert restored.status_code == 303
    assert client.get(read, headers=bearer).status_code == 200
    again = submit(
        analyst,
        url,
        f"{url}/act",
        {"action": "restore", "subscription_id": str(registered.subscription_id), "reason": "twice"},
    )
    assert again.status_code == 409  # already active: refused with a readable page
    assert "already active" in again.text
    submit(analyst, url, f"{url}/change", {"field": "status", "status": "resolved"})

    page = analyst.get(url)
    assert page.status_code == 200
    timeline = page.text.split('id="timeline"')[1]
    assert "by analyst@plan.example" in timeline
    order = [
        "Incident opened (manual)",
        "Suspended subscription",
        "Developer confirms a leaked test account list.",
        "status: open → contained",
        "Restored subscription",
        "status: contained → resolved",
    ]
    positions = [timeline.index(text) for text in order]
    assert positions == sorted(positions)

    exported = analyst.get(f"{url}/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/json")
    assert "attachment" in exported.headers["content-disposition"]
    record = json.loads(exported.text)
    assert record["incident"]["status"] == "resolved"
    assert record["incident"]["owner_account_id"] == analyst_id
    assert record["subscriptions"][0]["client_id"] == registered.client_id
    actions = [e for e in record["timeline"] if e["kind"] == "action"]
    assert [a["data"]["before"]["status"] for a in actions] == ["active", "suspended"]
    assert [a["data"]["after"]["status"] for a in actions] == ["suspended", "active"]

    trail = services.portal.staff.audit_trail(analyst_id, target_type="incident", target_id=str(incident_id))
    assert [e.action for e in reversed(trail)] == [
        "incident:create",
        "incident:suspend",
        "incident:note",
        "incident:status",
        "incident:restore",
        "incident:status",
        "incident:export",
    ]
    assert all(e.actor_account_id == analyst_id and e.address for e in trail)
    subscription_trail = services.portal.staff.audit_trail(
        analyst_id, target_type="subscription", target_id=str(registered.subscription_id)
    )
    assert [e.action for e in reversed(subscription_trail)] == [
        "subscription:suspend",
        "subscription:restore",
    ]
    assert subscription_trail[-1].before == {"status": "active"}


def test_rotating_credentials_from_an_incident(client: TestClient, services: Services) -> None:
    from .conftest import register

    registered = register(services)
    services.portal.applications.update
    staff_person(services, "admin@plan.example", "admin")
    admin = console(client.app, services, "admin@plan.example")
    created = submit(
        admin,
        "/admin/incidents",
        "/admin/incidents",
        {"title": "Leaked secret", "severity": "critical", "subscriptions": str(registered.subscription_id)},
    )
    url = created.headers["location"]
    refused = submit(
        admin,
        url,
        f"{url}/act",
        {"action": "rotate", "subscription_id": str(registered.subscription_id), "reason": "leak"},
    )
    assert refused.status_code == 409  # a public client has no secret to rotate
    assert "no secret" in refused.text or "secret" in refused.text


def test_permissions_both_ways(client: TestClient, services: Services, registered: Registered) -> None:
    roles = {
        "analyst@plan.example": "security_analyst",
        "admin@plan.example": "admin",
        "auditor@plan.example": "auditor",
        "support@plan.example": "support",
        "reviewer@plan.example": "appsec_reviewer",
    }
    for email, role in roles.items():
        staff_person(services, email, role)
    clients = {role: console(client.app, services, email) for email, role in roles.items()}
    incident = services.incidents.incidents.create(
        None, title="From an alert", severity="low", subscriptions=[registered.subscription_id]
    )
    flag_id, _ = _flag(services, registered)
    pages = ["/admin/incidents", f"/admin/incidents/{incident.id}", "/admin/risk", "/admin/breach-alerts"]
    changes = [
        ("/admin/incidents", {"title": "Mine", "severity": "low"}),
        (f"/admin/incidents/{incident.id}/note", {"body": "a note"}),
        (f"/admin/incidents/{incident.id}/change", {"field": "status", "status": "contained"}),
        (
            f"/admin/incidents/{incident.id}/act",
            {"action": "suspend", "subscription_id": str(registered.subscription_id), "reason": "r"},
        ),
        (f"/admin/risk/{flag_id}/incident", {"severity": "high"}),
    ]
    for role, http in clients.items():
        readable = role in ("security_analyst", "admin", "auditor")
        for url in pages:
            assert http.get(url).status_code == (200 if readable else 403), (role, url)
        token = csrf(http.get("/admin/").text)
        for url, data in changes:
            answer = http.post(url, data={**data, "csrf_token": token}, follow_redirects=False)
            if role in ("security_analyst", "admin"):
                assert answer.status_code == 303, (role, url, answer.text)
            else:
                assert answer.status_code == 403, (role, url)
                assert "incidents:manage" in answer.text
        if role == "security_analyst":  # restore for the next role's suspension
            services.portal.applications.set_status(
                _admin(services), registered.subscription_id, "active", reason="test"
            )


def _admin(services: Services) -> int:
    person = services.portal.people.by_email("admin@plan.example")
    assert person is not None
    assert services.portal.staff.require(person.id, Permission.SUBSCRIPTIONS_SUSPEND)
    return person.id


def _flag(services: Services, registered: Registered) -> tuple[int, bool]:
    services.incidents.risk.flag(
        "sandbox", registered.client_id, "malicious_activity", {"detector": "credential_stuffing", "count": 3}
    )
    flag = services.incidents.risk.of_subscriptions([registered.subscription_id])[registered.subscription_id][
        0
    ]
    return flag.id, True
