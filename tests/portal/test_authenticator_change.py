"""Replacing the authenticator (TOTP) while signed in at `/portal/authenticator` and `/admin/authenticator`,
and turning it off where policy allows (developers outside production): the current password and a code
from the current authenticator first, the new key kept only once a code from it is confirmed, every other
session ended while this one goes on, and a notice mailed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpayer.app import Services
from openpayer.config import Settings
from openpayer.email.tables import email_message

from .conftest import ANSWERS, mails_to
from .pages import APP, ORG, PASSWORD, code, csrf, enrol_totp, post, staff_account
from .test_password_change import DEV, STAFF, developer, sign_in_status, signed_in

_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
_SEALED = re.compile(r'name="sealed" value="([^"]+)"')


def prove(
    client: TestClient,
    services: Services,
    secret: str,
    action: str = "replace",
    area: str = "/portal",
    **kw: str,
) -> Any:
    """Submit the password and a current code to `replace` or `remove`, as a browser would."""
    data = {"current_password": PASSWORD, "code": code(services, secret), **kw}
    return post(client, f"{area}/authenticator", f"{area}/authenticator/{action}", data)


def new_key(page: Any) -> tuple[str, str]:
    secret, sealed = _SECRET.search(page.text), _SEALED.search(page.text)
    assert secret
    assert sealed
    return secret.group(1), sealed.group(1)


def confirm(client: TestClient, page: Any, sealed: str, value: str, area: str = "/portal") -> Any:
    data = {"csrf_token": csrf(page.text), "sealed": sealed, "code": value}
    return client.post(f"{area}/authenticator/confirm", data=data, follow_redirects=False)


def causes(services: Services, to: str) -> list[str]:
    with services.engine.connect() as conn:
        query = select(email_message.c.cause).where(email_message.c.recipient == to)
        return list(conn.execute(query).scalars())


def mfa_status(
    client: TestClient, services: Services, email: str, password: str, secret: str, area: str
) -> int:
    fresh = TestClient(client.app)
    first = post(fresh, f"{area}/signin", f"{area}/signin", {"email": email, "password": password})
    assert first.headers["location"] == f"{area}/mfa"
    return int(post(fresh, f"{area}/mfa", f"{area}/mfa", {"code": code(services, secret)}).status_code)


def test_a_developer_replaces_the_authenticator_and_only_this_session_goes_on(
    client: TestClient, services: Services
) -> None:
    laptop, old = developer(client, services)
    assert 'href="/portal/authenticator"' in client.get("/portal/").text  # beside "Change password"
    form = client.get("/portal/authenticator")
    assert form.status_code == 200
    assert form.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert client.get("/portal/totp", follow_redirects=False).headers["location"] == "/portal/authenticator"

    shown = prove(client, services, old)
    assert shown.status_code == 200, shown.text
    secret, sealed = new_key(shown)
    assert secret != old
    assert f"otpauth://totp/OpenPayer:{DEV.replace('@', '%40')}?secret={secret}" in shown.text
    assert PASSWORD not in shown.text
    assert signed_in(laptop)  # nothing changed until the new key is confirmed

    done = confirm(client, shown, sealed, code(services, secret))
    assert done.status_code == 200, done.text
    assert "Authenticator replaced" in done.text
    assert secret not in done.text
    assert "Path=/portal" in done.headers["set-cookie"]
    assert signed_in(client)  # re-issued under the new generation, second factor kept
    assert not signed_in(laptop)
    assert mfa_status(client, services, DEV, PASSWORD, old, "/portal") == 401
    assert mfa_status(client, services, DEV, PASSWORD, secret, "/portal") == 303
    notice = mails_to(services, DEV)[-1]
    assert "was just replaced" in notice
    assert "http://testserver/portal/forgot" in notice
    assert secret not in notice
    assert old not in notice
    assert causes(services, DEV)[-1] == "account:totp-replace"
    again = confirm(client, shown, sealed, code(services, secret))  # the form is spent with the generation
    assert again.status_code == 422
    assert "start again" in again.text


@pytest.mark.parametrize("wrong", ["password", "code"])
def test_a_wrong_password_or_current_code_changes_nothing(
    client: TestClient, services: Services, wrong: str
) -> None:
    laptop, old = developer(client, services)
    mails = len(mails_to(services, DEV))
    bad = {"current_password": "not my password"} if wrong == "password" else {"code": "000000"}
    if wrong == "code" and code(services, old) == "000000":
        bad = {"code": "111111"}
    for action in ("replace", "remove"):
        refused = prove(client, services, old, action, **bad)
        assert refused.status_code == 401
        expected = "The current password is wrong." if wrong == "password" else "not right"
        assert expected in refused.text
        assert 'id="totp-secret"' not in refused.text
    assert signed_in(client)
    assert signed_in(laptop)
    assert len(mails_to(services, DEV)) == mails
    assert mfa_status(client, services, DEV, PASSWORD, old, "/portal") == 303


def test_attempts_are_throttled_like_a_sign_in(client: TestClient, services: Services) -> None:
    _, old = developer(client, services)
    for _ in range(10):
        assert prove(client, services, old, current_password="still not it").status_code == 401
    throttled = prove(client, services, old)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed" in throttled.text


def test_a_new_key_not_confirmed_leaves_the_old_one(client: TestClient, services: Services) -> None:
    laptop, old = developer(client, services)
    shown = prove(client, services, old)
    secret, sealed = new_key(shown)
    wrong = confirm(client, shown, sealed, code(services, old))  # a code of the old key, not the new one
    assert wrong.status_code == 422
    assert "That code is not right" in wrong.text
    assert secret in wrong.text  # the same new key, to try again
    forged = confirm(client, shown, sealed[:-4] + "AAAA", code(services, secret))
    assert forged.status_code == 422
    assert "start again" in forged.text
    assert signed_in(laptop)
    assert mfa_status(client, services, DEV, PASSWORD, old, "/portal") == 303
    assert mfa_status(client, services, DEV, PASSWORD, secret, "/portal") == 401
    assert "account:totp-replace" not in causes(services, DEV)


def test_a_staff_member_replaces_the_authenticator_but_cannot_turn_it_off(
    client: TestClient, services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = staff_account(settings, monkeypatch, STAFF, "support")
    post(client, "/admin/signin", "/admin/signin", {"email": STAFF, "password": temporary})
    old = enrol_totp(client, services, "/admin")
    desk = TestClient(client.app)
    post(desk, "/admin/signin", "/admin/signin", {"email": STAFF, "password": temporary})
    assert post(desk, "/admin/mfa", "/admin/mfa", {"code": code(services, old)}).status_code == 303
    assert 'href="/admin/authenticator"' in client.get("/admin/").text

    form = client.get("/admin/authenticator")
    assert "Review queue" in form.text  # the console's menu
    assert "/admin/authenticator/remove" not in form.text
    data = {"current_password": temporary, "code": code(services, old)}
    refused = post(client, "/admin/authenticator", "/admin/authenticator/remove", data)
    assert refused.status_code == 403
    assert "Staff accounts need two-step sign-in" in refused.text
    assert signed_in(desk, "/admin")

    shown = post(client, "/admin/authenticator", "/admin/authenticator/replace", data)
    assert shown.status_code == 200, shown.text
    secret, sealed = new_key(shown)
    assert 'action="/admin/authenticator/confirm"' in shown.text
    done = confirm(client, shown, sealed, code(services, secret), "/admin")
    assert done.status_code == 200, done.text
    assert "Path=/admin" in done.headers["set-cookie"]
    assert signed_in(client, "/admin")
    assert not signed_in(desk, "/admin")
    assert mfa_status(client, services, STAFF, temporary, old, "/admin") == 401
    assert mfa_status(client, services, STAFF, temporary, secret, "/admin") == 303
    assert "http://testserver/admin/forgot" in mails_to(services, STAFF)[-1]


def test_a_developer_outside_production_turns_two_step_sign_in_off(
    client: TestClient, services: Services
) -> None:
    laptop, old = developer(client, services)
    form = client.get("/portal/authenticator")
    assert 'action="/portal/authenticator/remove"' in form.text
    done = prove(client, services, old, "remove")
    assert done.status_code == 200, done.text
    assert "Two-step sign-in turned off" in done.text
    assert signed_in(client)
    assert not signed_in(laptop)
    assert sign_in_status(client, DEV, PASSWORD) == 303
    fresh = TestClient(client.app)
    signed = post(fresh, "/portal/signin", "/portal/signin", {"email": DEV, "password": PASSWORD})
    assert signed.headers["location"] == "/portal/"  # no second factor any more
    assert "turned off" in mails_to(services, DEV)[-1]
    assert causes(services, DEV)[-1] == "account:totp-remove"
    assert client.get("/portal/authenticator", follow_redirects=False).headers["location"] == "/portal/totp"


def test_a_developer_with_a_production_request_may_not_turn_it_off(
    client: TestClient, services: Services
) -> None:
    laptop, old = developer(client, services)
    created = post(client, "/portal/organizations/new", "/portal/organizations/new", ORG)
    org_url = created.headers["location"]
    assert post(client, f"{org_url}/apps/new", f"{org_url}/apps/new", APP).status_code == 200
    person = services.portal.people.by_email(DEV)
    assert person is not None
    application = services.portal.applications.of_organization(person.id, int(org_url.rsplit("/", 1)[1]))[0]
    # Before any production request, the developer may still turn it off.
    assert 'action="/portal/authenticator/remove"' in client.get("/portal/authenticator").text
    app_url = f"/portal/apps/{application.id}"
    assert post(client, f"{app_url}/questionnaire", f"{app_url}/questionnaire", ANSWERS).status_code == 303
    terms = client.get(f"{org_url}/terms")
    version = re.search(r'name="version" value="([^"]+)"', terms.text)
    assert version
    data = {"csrf_token": csrf(terms.text), "version": version.group(1), "agree": "yes"}
    assert client.post(f"{org_url}/terms", data=data, follow_redirects=False).status_code == 303
    assert post(client, app_url, f"{app_url}/production", {"note": "Ready."}).status_code == 303

    form = client.get("/portal/authenticator")
    assert "/portal/authenticator/remove" not in form.text
    assert "production request under review" in form.text
    refused = prove(client, services, old, "remove")
    assert refused.status_code == 403
    assert "Two-step sign-in stays on" in refused.text
    assert signed_in(laptop)
    assert mfa_status(client, services, DEV, PASSWORD, old, "/portal") == 303

    # Approved: the request is no longer under review, and the production access it granted keeps it on.
    services.portal.staff.create(None, account_id=9001, email="admin-totp@plan.example", role="admin")
    reviewer = {"account_id": 9002, "email": "appsec-totp@plan.example", "role": "appsec_reviewer"}
    services.portal.staff.create(9001, **reviewer)
    request_id = services.portal.reviews.for_application(person.id, application.id)[0].id
    services.portal.reviews.approve(9002, request_id, "Welcome.")
    services.clock.advance(31)  # a fresh code
    assert "/portal/authenticator/remove" not in client.get("/portal/authenticator").text
    assert prove(client, services, old, "remove").status_code == 403


def test_the_forms_need_their_csrf_token_and_a_session(client: TestClient, services: Services) -> None:
    laptop, old = developer(client, services)
    shown = prove(client, services, old)
    secret, sealed = new_key(shown)
    for path, data in (
        ("replace", {"current_password": PASSWORD, "code": code(services, old)}),
        ("remove", {"current_password": PASSWORD, "code": code(services, old)}),
        ("confirm", {"sealed": sealed, "code": code(services, secret)}),
    ):
        for token in ({}, {"csrf_token": "forged" * 8}):
            refused = client.post(
                f"/portal/authenticator/{path}", data={**data, **token}, follow_redirects=False
            )
            assert refused.status_code == 403
            assert "Please try again" in refused.text
    assert signed_in(laptop)
    assert mfa_status(client, services, DEV, PASSWORD, old, "/portal") == 303
    stranger = TestClient(client.app)
    assert (
        stranger.get("/portal/authenticator", follow_redirects=False).headers["location"] == "/portal/signin"
    )
    assert stranger.get("/admin/authenticator", follow_redirects=False).headers["location"] == "/admin/signin"
