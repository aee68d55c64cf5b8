"""The CMS usage report computed from real access through the FHIR API (SMART launches, reads, searches,
refusals, /metadata), with the America/Chicago year boundary; shown in the console (`reports:read` both ways),
exported as CSV and JSON, and from `openpayer report cms-usage`."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openpayer.app import Services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world
from openpayer.portal.business_days import CHICAGO

from .console_world import REDIRECT, ROLES, developer_world, staff_client

SCOPE = "launch/patient patient/*.rs"
OPS_REDIRECT = "http://127.0.0.1:4000/cb"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_enforce": True})


def at(services: Services, *moment: int) -> None:
    """Move the one clock to a wall-clock time in Chicago."""
    target = datetime(*moment, tzinfo=CHICAGO).timestamp()  # type: ignore[misc]
    services.clock.advance(target - services.clock.now_float())


def read(client: TestClient, token: str, path: str) -> int:
    return client.get(f"/sandbox/fhir/{path}", headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.fixture
def usage(client: TestClient, services: Services) -> Services:
    """A year of access in the sandbox by two apps (a portal app and an operator-registered one)."""
    at(services, 2030, 6, 10, 12, 0)
    ids = two_member_world(services)
    for who in ("c", "d"):
        ids[who] = str(services.fhir.create("sandbox", "Patient", {"resourceType": "Patient"}).stored.id)
        services.auth.members.create("sandbox", f"member-{who}", TEST_PASSWORD, ids[who])
    world = developer_world(services)
    ops_id, _ = services.auth.clients.register(
        "sandbox", name="Ops app", redirect_uris=[OPS_REDIRECT], public=True, scopes=SCOPE.split()
    )

    def token(who: str, portal_app: bool = True) -> str:
        http = TestClient(client.app, base_url="http://testserver")  # each member in a fresh browser
        smart = (
            SmartApp(http, world.client_id, REDIRECT, client_secret=world.secret)
            if portal_app
            else SmartApp(http, ops_id, OPS_REDIRECT)
        )
        return str(smart.launch(SCOPE, f"member-{who}", TEST_PASSWORD)["access_token"])

    # 10 June: a (two requests, one transfer) and b, through the portal app.
    a = token("a")
    assert read(client, a, f"Patient/{ids['a']}") == 200
    assert read(client, a, f"Observation?patient={ids['a']}") == 200
    assert read(client, token("b"), f"Patient/{ids['b']}") == 200
    # 11 June: b again (a second day); c through both apps (two apps, one day); a only calls /metadata
    # and tries b's record (refused): neither transfers a's data.
    at(services, 2030, 6, 11, 12, 0)
    assert read(client, token("b"), f"Patient/{ids['b']}") == 200
    assert read(client, token("c", portal_app=False), f"Patient/{ids['c']}") == 200
    assert read(client, token("c"), f"Patient/{ids['c']}") == 200
    a = token("a")
    assert client.get("/sandbox/fhir/metadata", headers={"Authorization": f"Bearer {a}"}).status_code == 200
    assert read(client, a, f"Patient/{ids['b']}") == 404
    # New Year's Eve 20:00 in Chicago is already 2031 in UTC: it counts in 2030. 00:30 on 1 January, 2031.
    at(services, 2030, 12, 31, 20, 0)
    assert read(client, token("d", portal_app=False), f"Patient/{ids['d']}") == 200
    at(services, 2031, 1, 1, 0, 30)
    assert read(client, token("a"), f"Patient/{ids['a']}") == 200
    # A monitoring account (health checks) reads its synthetic Patient in 2030: not a patient, not counted.
    at(services, 2030, 7, 1, 12, 0)
    monitor = services.portal.monitoring.create(world.account_id, world.application.id, "sandbox")
    http = TestClient(client.app, base_url="http://testserver")
    smart = SmartApp(http, world.client_id, REDIRECT, client_secret=world.secret)
    synthetic = smart.launch(SCOPE, monitor.account.username, monitor.password)["access_token"]
    assert read(client, str(synthetic), f"Patient/{monitor.account.patient_id}") == 200
    return services


def test_the_report_counts_patients_from_the_access_records(usage: Services) -> None:
    report = usage.portal.reports.cms_usage(None, 2030, "sandbox")
    assert (report.unique_patients, report.more_than_once) == (4, 2)  # a b c d; b (two days), c (two apps)
    assert (report.apps, report.requests) == (2, 7)
    assert report.period_start == "2030-01-01T00:00:00-06:00"
    next_year = usage.portal.reports.cms_usage(None, 2031, "sandbox")
    assert (next_year.unique_patients, next_year.more_than_once, next_year.requests) == (1, 0, 1)
    assert usage.portal.reports.cms_usage(None, 2030, "production").unique_patients == 0


def test_the_console_shows_and_exports_it_to_whom_may_read_it(client: TestClient, usage: Services) -> None:
    for role in ROLES:
        http = staff_client(client.app, usage, role)
        page = http.get("/admin/reports/cms-usage?year=2030&env=sandbox")
        if role not in ("admin", "auditor"):
            assert page.status_code == 403, role
            assert "reports:read" in page.text
            assert http.get("/admin/reports/cms-usage/export?format=csv").status_code == 403
            continue
        assert page.status_code == 200
        assert 'id="unique-patients">4<' in page.text
        assert 'id="more-than-once">2<' in page.text
    auditor = staff_client(client.app, usage, "auditor", email="second.auditor@plan.example")
    exported = auditor.get("/admin/reports/cms-usage/export?format=csv&year=2030&env=sandbox")
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="cms-usage-2030-sandbox.csv"' in exported.headers["content-disposition"]
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["unique_patients"], row["more_than_once"], row["year"]) == ("4", "2", "2030")
    as_json = auditor.get("/admin/reports/cms-usage/export?format=json&year=2031&env=sandbox").json()
    assert (as_json["unique_patients"], as_json["more_than_once"]) == (1, 0)
    assert "America/Chicago" in as_json["method"]
    for bad, words in (("year=twenty", "calendar year"), ("env=moon", "unknown environment")):
        refused = auditor.get(f"/admin/reports/cms-usage?{bad}")
        assert refused.status_code == 422
        assert words in refused.text
    assert auditor.get("/admin/reports/cms-usage/export?format=xml").status_code == 422


def test_the_command_line_prints_the_same_report(
    usage: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENPAYER_HOME", str(settings.home))
    monkeypatch.setenv("OPENPAYER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
    runner = CliRunner()
    as_json = runner.invoke(
        cli_app, ["report", "cms-usage", "--year", "2030", "--env", "sandbox", "--format", "json"]
    )
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output)
    assert (body["unique_patients"], body["more_than_once"], body["env"]) == (4, 2, "sandbox")
    as_csv = runner.invoke(
        cli_app, ["report", "cms-usage", "--year", "2031", "--env", "sandbox", "--format", "csv"]
    )
    [row] = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert (row["unique_patients"], row["more_than_once"]) == ("1", "0")
    text = runner.invoke(cli_app, ["report", "cms-usage", "--year", "2030", "--env", "sandbox"])
    assert "unique patients whose data was transferred: 4" in text.output
    unknown = runner.invoke(cli_app, ["report", "cms-usage", "--year", "2030", "--env", "moon"])
    assert unknown.exit_code == 2
