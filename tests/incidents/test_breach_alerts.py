"""The breach-alert webhook over HTTP: valid, duplicate, unsigned, badly signed, malformed, replayed and
unmatched alerts; every delivery kept; a match flags the organization's subscriptions, opens an incident
and mails the invite once; an unmatched alert waits for staff to match it in the console."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from openpayer.bootstrap import Services
from openpayer.incidents.breach import sign
from openpayer.incidents.tables import breach_alert, breach_delivery, risk_flag

from .conftest import WEBHOOK_SECRET, Registered, console, mails_to, register, staff_person, submit

URL = "/security/alerts"


def alert(alert_id: str = "rr-2026-0001", domain: str = "example-app.com", **extra: Any) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "source": "riskrecon",
        "organization": {"name": "Example Health Apps", "domain": domain},
        "severity": "high",
        "summary": "Exposed database with customer records",
        "detected_at": "2026-11-30T14:02:00Z",
        "collaboration_invite_url": "https://riskrecon.example/invite/abc123",
        **extra,
    }


def deliver(
    client: TestClient, body: bytes, *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET
) -> Any:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Timestamp": stamp,
        "X-Signature": sign(secret, stamp, body),
    }
    return client.post(URL, content=body, headers=headers)


def deliveries(services: Services) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(select(breach_delivery).order_by(breach_delivery.c.id)).all())


def flags(services: Services) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(select(risk_flag).order_by(risk_flag.c.id)).all())


def test_a_valid_alert_is_matched_by_domain_flags_mails_the_invite_and_opens_an_incident(
    client: TestClient, services: Services, registered: Registered
) -> None:
    analyst = staff_person(services, "analyst@plan.example", "security_analyst")
    body = json.dumps(alert(domain="WWW.Example-App.com")).encode()
    response = deliver(client, body)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "alert_id": "rr-2026-0001", "matched": True}

    [delivery] = deliveries(services)
    assert bytes(delivery.body) == body
    assert delivery.outcome == "accepted"
    [flag] = flags(services)
    assert (flag.subscription_id, flag.reason, flag.cleared_at) == (
        registered.subscription_id,
        "breach_alert",
        None,
    )
    [(subject, text)] = mails_to(services, "security@example-app.com")
    assert "collaborate" in subject
    assert "https://riskrecon.example/invite/abc123" in text
    assert "Exposed database" in text
    assert len(mails_to(services, "analyst@plan.example")) == 1

    with services.engine.connect() as conn:
        stored = conn.execute(select(breach_alert)).one()
    assert stored.status == "matched"
    assert stored.organization_id == registered.organization_id
    assert stored.matched_by is None  # by domain
    incident = services.incidents.incidents.get(analyst, stored.incident_id)
    assert incident.subscriptions == (registered.subscription_id,)
    assert incident.severity == "high"
    assert incident.source == "breach:rr-2026-0001"

    # The same alert id again (a retry, or a replay within the window) changes nothing.
    again = deliver(client, body)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert len(flags(services)) == 1
    assert len(mails_to(services, "security@example-app.com")) == 1
    assert [d.outcome for d in deliveries(services)] == ["accepted", "duplicate"]
    assert len(services.incidents.incidents.all(analyst)) == 1


def test_unsigned_badly_signed_replayed_and_malformed_alerts_are_refused_and_kept(
    client: TestClient, services: Services, registered: Registered
) -> None:
    body = json.dumps(alert()).encode()
    unsigned = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert unsigned.json()["error"] == "unauthenticated"
    assert "X-Signature" in unsigned.json()["detail"]

    wrong_secret = deliver(client, body, secret="not-the-secret")
    assert wrong_secret.status_code == 401
    assert "signature" in wrong_secret.json()["detail"]

    replayed = deliver(client, body, timestamp=int(time.time()) - 3600)  # signed, but an hour old
    assert replayed.status_code == 401
    assert "replay" in replayed.json()["detail"]

    not_json = deliver(client, b"{not json")
    assert not_json.status_code == 422
    assert not_json.json() == {
        "error": "malformed",
        "detail": "the body is not JSON",
        "delivery": not_json.json()["delivery"],
    }
    incomplete = deliver(
        client,
        json.dumps(
            {"alert_id": "x", "organization": {"name": "A"}, "severity": "bad", "summary": "s"}
        ).encode(),
    )
    assert incomplete.status_code == 422
    detail = incomplete.json()["detail"]
    for named in ("organization.domain", "severity", "collaboration_invite_url"):
        assert named in detail
    http_invite = deliver(client, json.dumps(alert(collaboration_invite_url="http://x.example/i")).encode())
    assert http_invite.status_code == 422

    kept = deliveries(services)
    assert [d.outcome for d in kept] == ["rejected"] * 6
    assert bytes(kept[0].body) == body  # stored as received, before anything was checked
    assert kept[0].detail.startswith("unauthenticated")
    assert flags(services) == []
    assert mails_to(services, "security@example-app.com") == []
    with services.engine.connect() as conn:
        assert conn.execute(select(breach_alert)).first() is None

    # Staff review the refused deliveries in the console.
    staff_person(services, "analyst@plan.example", "security_analyst")
    analyst = console(client.app, services, "analyst@plan.example")
    page = analyst.get("/admin/breach-alerts")
    assert page.status_code == 200
    assert "Refused deliveries" in page.text
    assert "the signature does not match" in page.text


def test_an_unmatched_alert_waits_for_staff_who_match_it_in_the_console(
    client: TestClient, services: Services, registered: Registered
) -> None:
    response = deliver(client, json.dumps(alert("rr-77", domain="example-apps.io")).encode())
    assert response.status_code == 202
    assert response.json()["matched"] is False
    assert flags(services) == []
    assert mails_to(services, "security@example-app.com") == []

    staff_person(services, "analyst@plan.example", "security_analyst")
    analyst = console(client.app, services, "analyst@plan.example")
    queue = analyst.get("/admin/breach-alerts")
    assert "rr-77" in queue.text
    with services.engine.connect() as conn:
        pk = conn.execute(select(breach_alert.c.id).where(breach_alert.c.alert_id == "rr-77")).scalar_one()
    detail = analyst.get(f"/admin/breach-alerts/{pk}")
    assert "Example Health Apps, Inc." in detail.text  # a look-alike organization is offered
    matched = submit(
        analyst,
        f"/admin/breach-alerts/{pk}",
        f"/admin/breach-alerts/{pk}/match",
        {"organization_id": str(registered.organization_id)},
    )
    assert matched.status_code == 303
    assert "matched" in analyst.get(f"/admin/breach-alerts/{pk}").text
    assert [f.subscription_id for f in flags(services)] == [registered.subscription_id]
    assert len(mails_to(services, "security@example-app.com")) == 1
    assert "rr-77" not in analyst.get("/admin/breach-alerts").text.split("Recent")[0]

    again = submit(
        analyst,
        "/admin/breach-alerts",
        f"/admin/breach-alerts/{pk}/match",
        {"organization_id": str(registered.organization_id)},
    )
    assert again.status_code == 409  # matched once
    assert len(mails_to(services, "security@example-app.com")) == 1


def test_two_organizations_on_one_domain_wait_for_staff(client: TestClient, services: Services) -> None:
    register(services, "shared.example", owner=1001)
    register(services, "shared.example", owner=1002)
    response = deliver(client, json.dumps(alert("rr-9", domain="shared.example")).encode())
    assert response.json()["matched"] is False
    assert flags(services) == []


def test_without_a_secret_the_webhook_refuses_and_still_keeps_the_delivery(
    client: TestClient, services: Services
) -> None:
    services.incidents.breach.secret = None
    response = deliver(client, json.dumps(alert()).encode())
    assert response.status_code == 503
    assert deliveries(services)[0].outcome == "rejected"


def test_an_oversized_body_is_refused(client: TestClient, services: Services) -> None:
    response = deliver(client, b"x" * (70 * 1024))
    assert response.status_code == 413
    assert len(bytes(deliveries(services)[0].body)) == 64 * 1024
