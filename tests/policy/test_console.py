"""The policy's console pages (`/admin/policy`): every subscription, what comes next, pause and response,
each permission checked both ways over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.policy.conftest import DEVELOPER, PASSWORD, World
from tests.portal.pages import csrf, staff_account, staff_sign_in

from openpayer.config import Settings
from openpayer.portal.models import portal_staff_audit


def staff(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch, email: str, role: str
) -> TestClient:
    password = staff_account(settings, monkeypatch, email, role)
    browser = TestClient(world.http.app, base_url="http://testserver")
    staff_sign_in(browser, world.services, email, password)
    return browser


def form(browser: TestClient, page_url: str, action: str, data: dict[str, str]) -> object:
    page = browser.get(page_url)
    return browser.post(action, data={**data, "csrf_token": csrf(page.text)}, follow_redirects=False)


def test_staff_see_every_subscription_and_what_comes_next(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = world.services.portal.monitoring.create(
        world.accounts[DEVELOPER],
        world.services.portal.applications.subscription_by_id(world.sandbox).application_id,
        "sandbox",
    )
    auditor = staff(world, settings, monkeypatch, "auditor@plan.example", "auditor")
    day60 = world.day0 + timedelta(days=60)
    overview = auditor.get("/admin/policy")
    assert overview.status_code == 200
    assert overview.text.count("My Health Wallet (") >= 2
    assert f"first notice to the developer on {day60}" in overview.text
    assert f"monitoring: {monitor.account.username}" in overview.text
    assert "No notice or removal is due in the next 30 days." in overview.text
    world.at(40)  # sessions lapse when the clock jumps: a new sign-in for each day
    auditor = staff(world, settings, monkeypatch, "auditor2@plan.example", "auditor")
    upcoming = auditor.get("/admin/policy").text
    assert "Coming up by" in upcoming
    assert upcoming.index(str(day60)) < upcoming.index("Every subscription")
    world.sweep(60)
    auditor = staff(world, settings, monkeypatch, "auditor3@plan.example", "auditor")
    detail = auditor.get(f"/admin/policy/{world.sandbox}")
    assert detail.status_code == 200
    assert "first notice" in detail.text
    assert f"second notice to the developer on {world.day0 + timedelta(days=74)}" in detail.text
    assert "sweep" in detail.text  # the history names who made each step
    assert auditor.get("/admin/policy/999999").status_code == 404


def test_pause_and_response_need_policy_manage_and_are_audited(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    auditor = staff(world, settings, monkeypatch, "auditor@plan.example", "auditor")
    page = f"/admin/policy/{world.sandbox}"
    assert "Pause" not in auditor.get(page).text
    until = (world.day0 + timedelta(days=200)).isoformat()
    refused = form(auditor, page, f"{page}/pause", {"until": until, "reason": "seasonal"})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert "policy:manage" in refused.text  # type: ignore[attr-defined]
    refused = form(auditor, page, f"{page}/respond", {"note": "phoned"})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert world.state(world.sandbox) == "active"

    support = staff(world, settings, monkeypatch, "support@plan.example", "support")
    assert "Pause" in support.get(page).text
    past = form(support, page, f"{page}/pause", {"until": world.day0.isoformat(), "reason": "seasonal"})
    assert past.status_code == 422  # type: ignore[attr-defined]
    assert "the pause must end after today" in past.text  # type: ignore[attr-defined]
    garbage = form(support, page, f"{page}/pause", {"until": "soon", "reason": "seasonal"})
    assert garbage.status_code == 422  # type: ignore[attr-defined]
    paused = form(support, page, f"{page}/pause", {"until": until, "reason": "open enrollment only"})
    assert paused.status_code == 303  # type: ignore[attr-defined]
    assert world.state(world.sandbox) == "paused"
    assert f"the pause ends on {until}" in support.get(page).text
    assert world.services.policy.transitions(world.sandbox)[-1]["actor"] == "staff:support@plan.example"

    world.sweep(60)  # production (not paused) gets its first notice
    support = staff(world, settings, monkeypatch, "support2@plan.example", "support")
    production = f"/admin/policy/{world.production}"
    answered = form(support, production, f"{production}/respond", {"note": "phoned: still in use"})
    assert answered.status_code == 303  # type: ignore[attr-defined]
    assert world.state(world.production) == "active"
    no_csrf = support.post(f"{production}/respond", data={"note": "x"})
    assert no_csrf.status_code == 403
    with world.services.engine.connect() as conn:
        actions = conn.execute(select(portal_staff_audit.c.action, portal_staff_audit.c.target_id)).all()
    assert ("policy:pause", str(world.sandbox)) in actions
    assert ("policy:respond", str(world.production)) in actions
    assert ("policy:pause", str(world.production)) not in actions  # refused actions change nothing

    anonymous = TestClient(world.http.app, base_url="http://testserver")
    assert anonymous.get("/admin/policy", follow_redirects=False).headers["location"] == "/admin/signin"
    developer = anonymous.post(
        "/admin/signin",
        data={
            "email": DEVELOPER,
            "password": PASSWORD,
            "csrf_token": csrf(anonymous.get("/admin/signin").text),
        },
    )
    assert developer.status_code == 401  # a developer is not staff
