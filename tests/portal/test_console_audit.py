"""The console's audit pages over HTTP: the access audit searched by member, app, time and event from real
FHIR access, the staff actions trail, CSV and JSON exports (themselves audited), `audit:read` both ways."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from openpayer.app import Services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world

from .console_world import REDIRECT, ROLES, developer_world, staff_client, submit

READERS = {"admin", "security_analyst", "auditor"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_enforce": True})


def test_audit_read_both_ways(client: TestClient, services: Services) -> None:
    for role in ROLES:
        http = staff_client(client.app, services, role)
        for url in (
            "/admin/audit",
            "/admin/audit/staff",
            "/admin/audit/export?format=csv",
            "/admin/audit/staff/export?format=json",
        ):
            response = http.get(url)
            expected = 200 if role in READERS else 403
            assert response.status_code == expected, (role, url, response.text[:200])
            if expected == 403:
                assert "audit:read" in response.text


def test_search_the_access_audit_and_export_it(client: TestClient, services: Services) -> None:
    ids = two_member_world(services)
    world = developer_world(services)
    smart = SmartApp(client, world.client_id, REDIRECT, client_secret=world.secret)
    tokens = {}
    for who in ("a", "b"):
        tokens[who] = smart.launch("launch/patient patient/*.rs", f"member-{who}", TEST_PASSWORD)[
            "access_token"
        ]
        client.cookies.clear()  # the next member signs in afresh
    for who in ("a", "b"):
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        assert client.get(f"/sandbox/fhir/Patient/{ids[who]}", headers=headers).status_code == 200
    assert (
        client.get(
            f"/sandbox/fhir/Patient/{ids['b']}", headers={"Authorization": f"Bearer {tokens['a']}"}
        ).status_code
        == 404
    )
    member_a = services.auth.members.authenticate("sandbox", "member-a", TEST_PASSWORD)
    assert member_a is not None

    auditor = staff_client(client.app, services, "auditor")
    by_member = auditor.get(f"/admin/audit?event=fhir:access&member_id={member_a.id}")
    assert by_member.status_code == 200
    assert by_member.text.count("<td>fhir:access</td>") == 2  # a's read and a's refused read of b
    by_app = auditor.get(f"/admin/audit?client_id={world.client_id}&event=auth:token:issued")
    assert by_app.text.count("<td>auth:token:issued</td>") == 2
    today = datetime.fromtimestamp(services.clock.now(), UTC).date()
    tomorrow = today + timedelta(days=1)
    assert "No event matches" in auditor.get(f"/admin/audit?from={tomorrow}").text
    assert "fhir:access" in auditor.get(f"/admin/audit?from={today}&to={today}&env=sandbox").text

    exported = auditor.get(f"/admin/audit/export?format=csv&event=fhir:access&member_id={member_a.id}")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["status"] for r in rows) == ["200", "404"]
    assert {r["patient_id"] for r in rows} == {ids["a"]}
    as_json = auditor.get(f"/admin/audit/export?format=json&client_id={world.client_id}&event=fhir:access")
    events = json.loads(as_json.text)
    assert len(events) == 3
    assert {e["member_id"] for e in events} == {member_a.id, member_a.id + 1} or len(
        {e["member_id"] for e in events}
    ) == 2
    assert all(e["client_id"] == world.client_id for e in events)

    # Exports are staff actions, on record with their filters.
    trail = auditor.get("/admin/audit/staff?action=audit:export")
    assert trail.text.count("<td>audit:export</td>") == 2
    staff_json = json.loads(auditor.get("/admin/audit/staff/export?format=json&action=audit:export").text)
    assert staff_json[0]["after"]["format"] == "json"
    assert staff_json[0]["after"]["filters"]["client_id"] == world.client_id


def test_staff_actions_are_searchable_with_before_and_after(client: TestClient, services: Services) -> None:
    world = developer_world(services)
    admin = staff_client(client.app, services, "admin")
    url = f"/admin/subscriptions/{world.sandbox_subscription}"
    assert submit(admin, url, f"{url}/suspend", reason="Incident 7").status_code == 303
    page = admin.get(f"/admin/audit/staff?target_type=subscription&target_id={world.sandbox_subscription}")
    assert "subscription:suspend" in page.text
    assert "Incident 7" in page.text
    assert "&#34;status&#34;: &#34;active&#34;" in page.text or '"status": "active"' in page.text
    rows = list(
        csv.DictReader(
            io.StringIO(admin.get("/admin/audit/staff/export?format=csv&action=subscription:suspend").text)
        )
    )
    assert len(rows) == 1
    assert json.loads(rows[0]["before"]) == {"status": "active"}
    assert json.loads(rows[0]["after"])["reason"] == "Incident 7"


def test_bad_filters_are_readable(client: TestClient, services: Services) -> None:
    admin = staff_client(client.app, services, "admin")
    for url, words in (
        ("/admin/audit?member_id=abc", "member id is a number"),
        ("/admin/audit?from=2026-13-01", "YYYY-MM-DD"),
        ("/admin/audit?from=2026-02-02&to=2026-02-01", "before the start"),
        ("/admin/audit/export?format=xml", "csv or json"),
        ("/admin/audit/staff?actor=x", "account number"),
    ):
        response = admin.get(url)
        assert response.status_code == 422, url
        assert words in response.text
