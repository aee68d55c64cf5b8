"""At-risk flags: raised through the detectors' RiskSink, mailed once, shown to staff in the console and to
the organization in the portal (with the inactivity policy's state beside them), cleared by staff with a
note, and counted on /metrics by reason."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import insert

from openpayer.bootstrap import Services
from openpayer.incidents.reasons import RiskReason
from openpayer.policy.tables import policy_state

from .conftest import STAFF_PASSWORD, console, csrf, mails_to, register, staff_person, submit


def developer(client: TestClient, services: Services, email: str) -> tuple[int, TestClient]:
    """A verified developer account signed in to the portal."""
    people = services.portal.people
    person = people.create(email, STAFF_PASSWORD)
    assert people.verify_email(people.verification_token(person)) is not None
    http = TestClient(client.app, base_url="http://testserver")
    page = http.get("/portal/signin")
    signed = http.post(
        "/portal/signin",
        data={"email": email, "password": STAFF_PASSWORD, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    return person.id, http


def at_risk(client: TestClient, reason: str) -> float:
    found = re.search(
        rf'openpayer_subscriptions_at_risk{{reason="{reason}"}} ([0-9.]+)', client.get("/metrics").text
    )
    assert found, "the gauge is missing"
    return float(found.group(1))


def test_a_flag_is_raised_once_mailed_once_shown_both_sides_and_cleared(
    client: TestClient, services: Services
) -> None:
    owner, portal = developer(client, services, "owner@example-app.com")
    registered = register(services, owner=owner)
    staff_person(services, "analyst@plan.example", "security_analyst")
    staff_person(services, "auditor@plan.example", "auditor")
    sink = services.incidents.risk  # what the detectors' monitor flags through (its RiskSink)
    before = at_risk(client, "malicious_activity")

    evidence = {
        "detector": "credential_stuffing",
        "event_ids": [11, 12, 13],
        "count": 412,
        "window_seconds": 300,
    }
    sink.flag("sandbox", registered.client_id, RiskReason.MALICIOUS_ACTIVITY, evidence)
    # The security monitor's shape: the detector's kind as the reason, its detection's evidence.
    monitor_evidence = {"detection_id": 7, "kind": "credential_stuffing", "event_ids": [14], "count": 500}
    sink.flag("sandbox", registered.client_id, "credential_stuffing", monitor_evidence)
    sink.flag("sandbox", "no-such-client", RiskReason.MALICIOUS_ACTIVITY, evidence)  # ignored
    [(subject, text)] = mails_to(services, "security@example-app.com")
    assert "at risk" in subject
    assert "malicious activity" in text
    assert "credential_stuffing" in text
    assert len(mails_to(services, "analyst@plan.example")) == 1
    assert mails_to(services, "auditor@plan.example") == []  # analysts only
    [flag] = services.incidents.risk.of_subscriptions([registered.subscription_id])[
        registered.subscription_id
    ]
    assert [e["count"] for e in flag.evidence] == [412, 500]
    assert at_risk(client, "malicious_activity") == before + 1

    application = portal.get(f"/portal/apps/{registered.application_id}")
    assert "At risk since" in application.text
    assert "malicious activity" in application.text
    assert "event_ids" not in application.text
    assert "412" not in application.text

    analyst = console(client.app, services, "analyst@plan.example")
    risk = analyst.get("/admin/risk")
    assert "credential_stuffing (2 reports)" in risk.text
    cleared = submit(
        analyst, "/admin/risk", f"/admin/risk/{flag.id}/clear", {"note": "false positive: a load test"}
    )
    assert cleared.status_code == 303
    done = services.incidents.risk.get(flag.id)
    assert done.cleared_at is not None
    assert done.clear_note == "false positive: a load test"
    assert services.portal.people.by_email("analyst@plan.example").id == done.cleared_by  # type: ignore[union-attr]
    assert "cleared on" in portal.get(f"/portal/apps/{registered.application_id}").text
    assert at_risk(client, "malicious_activity") == before

    # Cleared, it can be raised anew (and mailed anew).
    sink.flag("sandbox", registered.client_id, RiskReason.MALICIOUS_ACTIVITY, evidence)
    assert len(mails_to(services, "security@example-app.com")) == 2


def test_inactivity_is_the_policys_state_shown_not_copied(client: TestClient, services: Services) -> None:
    owner, portal = developer(client, services, "owner@example-app.com")
    registered = register(services, owner=owner)
    services.incidents.risk.flag(
        "sandbox", registered.client_id, RiskReason.INACTIVITY, {}
    )  # the policy's job
    assert (
        services.incidents.risk.of_subscriptions([registered.subscription_id])[registered.subscription_id]
        == []
    )
    with services.engine.begin() as conn:
        conn.execute(
            insert(policy_state).values(
                subscription_id=registered.subscription_id,
                state="first_notice",
                cycle=0,
                entered_at=services.clock.now(),
                entered_on="2026-12-02",
            )
        )
    assert (
        "inactivity (first notice of the inactivity policy"
        in portal.get(f"/portal/apps/{registered.application_id}").text
    )
    staff_person(services, "auditor@plan.example", "auditor")
    auditor = console(client.app, services, "auditor@plan.example")
    page = auditor.get("/admin/risk")
    assert "first notice" in page.text
    assert "Clear" not in page.text  # an auditor reads, changes nothing
    assert at_risk(client, "inactivity") == 1


def test_an_incident_is_opened_from_a_flag(client: TestClient, services: Services) -> None:
    registered = register(services)
    services.incidents.risk.flag(
        "sandbox", registered.client_id, "malicious_activity", {"detector": "client_secret_guessing"}
    )
    [flag] = services.incidents.risk.of_subscriptions([registered.subscription_id])[
        registered.subscription_id
    ]
    staff_person(services, "analyst@plan.example", "security_analyst")
    analyst = console(client.app, services, "analyst@plan.example")
    opened = submit(analyst, "/admin/risk", f"/admin/risk/{flag.id}/incident", {"severity": "critical"})
    assert opened.status_code == 303
    page = analyst.get(opened.headers["location"])
    assert "My Health Wallet (sandbox): malicious activity" in page.text
    assert f"At-risk flag {flag.id}: client_secret_guessing" in page.text


def test_the_security_monitor_flags_through_incident_response(services: Services) -> None:
    """The composition root binds the detectors' RiskSink to the at-risk register."""
    assert services.security.sink is services.incidents.risk
