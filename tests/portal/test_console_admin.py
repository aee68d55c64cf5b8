"""Staff management and the terms of service in the console over HTTP: `staff:manage` and `terms:publish`
both ways, the temporary password shown once, a disabled account locked out, every change audited, and a new
version of the terms asking organizations to accept again."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from openpayer.app import Services
from openpayer.portal.errors import Conflict

from .conftest import ANSWERS
from .console_world import ROLES, csrf, developer_world, sign_in_staff, staff_client, submit


@pytest.mark.parametrize(
    ("permission", "page", "post", "data"),
    [
        ("staff:manage", "/admin/staff", "/admin/staff", {"email": "x@plan.example", "role": "support"}),
        ("terms:publish", "/admin/terms", "/admin/terms", {"version": "2099-01", "text": "New terms."}),
    ],
)
def test_admin_only_permissions_both_ways(
    client: TestClient, services: Services, permission: str, page: str, post: str, data: dict[str, str]
) -> None:
    for role in ROLES:
        if role == "admin":
            continue
        http = staff_client(client.app, services, role)
        assert http.get(page).status_code == 403
        queue = http.get("/admin/")
        refused = http.post(post, data={**data, "csrf_token": csrf(queue.text)})
        assert refused.status_code == 403, role
        assert permission in refused.text
    admin = staff_client(client.app, services, "admin")
    done = submit(admin, page, post, **data)
    assert done.status_code in (200, 303)
    if permission == "staff:manage":
        assert services.portal.staff.get(services.portal.people.by_email("x@plan.example").id) is not None  # type: ignore[union-attr]
    else:
        assert services.portal.terms.current().version == "2099-01"


def test_admins_create_change_and_disable_staff(client: TestClient, services: Services) -> None:
    admin = staff_client(client.app, services, "admin")
    created = submit(admin, "/admin/staff", "/admin/staff", email="New.Analyst@plan.example", role="support")
    assert created.status_code == 200
    password = re.search(r'id="temporary-password" class="secret">([^<]+)<', created.text)
    assert password
    assert password.group(1) not in admin.get("/admin/staff").text  # shown once

    newcomer = sign_in_staff(client.app, services, "new.analyst@plan.example", password.group(1))
    assert "Production requests awaiting review" in newcomer.get("/admin/").text
    account = services.portal.people.by_email("new.analyst@plan.example")
    assert account is not None
    assert account.has_totp

    assert submit(admin, "/admin/staff", f"/admin/staff/{account.id}/role", role="auditor").status_code == 303
    assert newcomer.get("/admin/audit").status_code == 200  # auditors read the audit log
    assert (
        submit(admin, "/admin/staff", f"/admin/staff/{account.id}/status", status="disabled").status_code
        == 303
    )
    assert newcomer.get("/admin/", follow_redirects=False).headers["location"] == "/admin/signin"

    me = services.portal.people.by_email("admin@plan.example")
    assert me is not None
    refused = submit(admin, "/admin/staff", f"/admin/staff/{me.id}/status", status="disabled")
    assert refused.status_code == 403  # never one's own account
    again = submit(admin, "/admin/staff", "/admin/staff", email="new.analyst@plan.example", role="support")
    assert again.status_code == 409
    bad = submit(admin, "/admin/staff", "/admin/staff", email="someone@plan.example", role="overlord")
    assert bad.status_code == 422
    assert services.portal.people.by_email("someone@plan.example") is None  # nothing half-created

    trail = services.portal.staff.audit_trail(me.id, target_id=str(account.id))
    assert [(e.action, e.actor_account_id) for e in trail] == [
        ("staff:status", me.id),
        ("staff:role", me.id),
        ("staff:create", me.id),
    ]
    assert trail[0].before == {"status": "active"}
    assert trail[0].after == {"status": "disabled"}


def test_a_new_version_of_the_terms_asks_for_acceptance_again(client: TestClient, services: Services) -> None:
    world = developer_world(services)
    portal = services.portal
    portal.questionnaire.answer(world.account_id, world.application.id, ANSWERS)
    portal.terms.accept(world.account_id, world.organization_id, portal.terms.current().version)
    assert portal.terms.acceptance_of_current(world.organization_id) is not None

    admin = staff_client(client.app, services, "admin")
    page = admin.get("/admin/terms")
    assert portal.terms.current().version in page.text
    published = submit(admin, "/admin/terms", "/admin/terms", version="2027-01", text="# Terms\n\nBe good.")
    assert published.status_code == 303
    assert "The new terms are published" in admin.get(published.headers["location"]).text
    assert portal.terms.current().version == "2027-01"
    assert portal.terms.acceptance_of_current(world.organization_id) is None
    with pytest.raises(Conflict, match="terms"):
        portal.reviews.submit(world.account_id, world.application.id)
    duplicate = submit(admin, "/admin/terms", "/admin/terms", version="2027-01", text="Other.")
    assert duplicate.status_code == 422
    me = portal.people.by_email("admin@plan.example")
    assert me is not None
    [entry] = portal.staff.audit_trail(me.id, action="terms:publish")
    assert entry.after is not None
    assert entry.after["version"] == "2027-01"
