"""Changing the password while signed in, over HTTP, at `/portal/password` and `/admin/password`: the current
password is checked and throttled like a sign-in, the new one passes the reset's rules, every other session
ends while this one goes on (its second factor kept), and a notice is mailed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpayer.accounts.events import SignInArea, SignInEvent, SignInOutcome
from openpayer.app import Services
from openpayer.config import Settings
from openpayer.email.tables import email_message

from .conftest import mails_to
from .pages import PASSWORD, code, csrf, enrol_totp, post, sign_up, staff_account

NEW = "a brand new passphrase for me"
DEV = "dev@example-app.com"
STAFF = "support@plan.example"


@pytest.fixture
def events(services: Services) -> list[SignInEvent]:
    seen: list[SignInEvent] = []
    services.signin_events.listeners.append(seen.append)
    return seen


def change(
    client: TestClient, current: str, new: str, again: str | None = None, area: str = "/portal"
) -> Any:
    """Submit the change form as a browser would (its CSRF token from the page)."""
    data = {
        "current_password": current,
        "new_password": new,
        "confirm_password": new if again is None else again,
    }
    return post(client, f"{area}/password", f"{area}/password", data)


def signed_in(client: TestClient, area: str = "/portal") -> bool:
    response = client.get(f"{area}/", follow_redirects=False)
    return response.status_code == 200 and "Signed in as" in response.text


def sign_in_status(client: TestClient, email: str, password: str, area: str = "/portal") -> int:
    fresh = TestClient(client.app)
    response = post(fresh, f"{area}/signin", f"{area}/signin", {"email": email, "password": password})
    return int(response.status_code)


def second_session(client: TestClient, email: str, password: str) -> TestClient:
    other = TestClient(client.app)
    response = post(other, "/portal/signin", "/portal/signin", {"email": email, "password": password})
    assert response.status_code == 303
    return other


def developer(client: TestClient, services: Services) -> tuple[TestClient, str]:
    """A developer signed in on `client` with two-step sign-in on, and a second signed-in session."""
    sign_up(client, services, DEV)
    secret = enrol_totp(client, services, "/portal")
    laptop = TestClient(client.app)
    first = post(laptop, "/portal/signin", "/portal/signin", {"email": DEV, "password": PASSWORD})
    assert first.headers["location"] == "/portal/mfa"
    done = post(laptop, "/portal/mfa", "/portal/mfa", {"code": code(services, secret)})
    assert done.status_code == 303
    assert signed_in(client)
    assert signed_in(laptop)
    return laptop, secret


def test_a_developer_changes_the_password_and_only_this_session_goes_on(
    client: TestClient, services: Services
) -> None:
    laptop, _ = developer(client, services)
    home = client.get("/portal/")
    assert 'href="/portal/password"' in home.text  # beside "Sign out everywhere"
    form = client.get("/portal/password")
    assert form.status_code == 200
    assert form.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert 'autocomplete="current-password"' in form.text
    before = client.cookies.get("op_portal")

    done = change(client, PASSWORD, NEW)
    assert done.status_code == 200, done.text
    assert "Password changed" in done.text
    assert PASSWORD not in done.text
    assert NEW not in done.text
    cookie = done.headers["set-cookie"]
    assert "op_portal=" in cookie
    assert "HttpOnly" in cookie
    assert "Path=/portal" in cookie
    assert "samesite=lax" in cookie.lower()

    assert signed_in(client)  # re-issued under the new generation, second factor kept
    assert client.get("/portal/organizations/new", follow_redirects=False).status_code == 200
    assert not signed_in(laptop)  # every other session ended
    assert before
    stale = TestClient(client.app).get("/portal/", headers={"cookie": f"op_portal={before}"})
    assert "Signed in as" not in stale.text  # nor this browser's cookie from before the change

    assert sign_in_status(client, DEV, PASSWORD) == 401
    assert sign_in_status(client, DEV, NEW) == 303  # on to the second factor
    notice = mails_to(services, DEV)[-1]
    assert "was just changed by someone signed in" in notice
    assert "http://testserver/portal/forgot" in notice
    assert PASSWORD not in notice
    assert NEW not in notice
    with services.engine.connect() as conn:
        causes = list(
            conn.execute(select(email_message.c.cause).where(email_message.c.recipient == DEV)).scalars()
        )
    assert causes[-1] == "account:password-change"


def test_a_wrong_current_password_changes_nothing_and_is_throttled_like_a_sign_in(
    client: TestClient, services: Services, events: list[SignInEvent]
) -> None:
    sign_up(client, services, DEV)
    laptop = second_session(client, DEV, PASSWORD)
    mails = len(mails_to(services, DEV))

    wrong = change(client, "not my password", NEW)
    assert wrong.status_code == 401
    assert '<p class="error" role="alert">The current password is wrong.</p>' in wrong.text
    assert NEW not in wrong.text
    assert signed_in(client)
    assert signed_in(laptop)  # nothing changed: no session ended
    assert len(mails_to(services, DEV)) == mails
    failures = [
        e for e in events if e.area is SignInArea.PORTAL and e.outcome is SignInOutcome.WRONG_PASSWORD
    ]
    assert [(e.account, e.account_id is not None) for e in failures] == [(DEV, True)]

    for _ in range(9):  # ten failures of one account from one address block the pair, as at sign-in
        assert change(client, "still not it", NEW).status_code == 401
    throttled = change(client, PASSWORD, NEW)  # even the right password is not checked now
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed" in throttled.text
    signin = post(client, "/portal/signin", "/portal/signin", {"email": DEV, "password": PASSWORD})
    assert signin.status_code == 429  # the counters are the sign-in's
    assert events[-1].outcome is SignInOutcome.THROTTLED

    services.clock.advance(16 * 60)  # the window slides; the password is still the old one
    assert sign_in_status(client, DEV, NEW) == 401
    assert sign_in_status(client, DEV, PASSWORD) == 303


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("password123", "common or breached"),
        ("short", "Use at least 8 characters"),
        (DEV, "Do not use your e-mail address"),
        ("openpayer2024", "Do not use your e-mail address or the service"),
    ],
)
def test_the_new_password_follows_the_reset_rules(
    client: TestClient, services: Services, new: str, message: str
) -> None:
    sign_up(client, services, DEV)
    laptop = second_session(client, DEV, PASSWORD)
    refused = change(client, PASSWORD, new)
    assert refused.status_code == 422
    assert message in refused.text
    assert signed_in(client)
    assert signed_in(laptop)
    assert sign_in_status(client, DEV, PASSWORD) == 303


def test_a_confirmation_that_differs_changes_nothing(client: TestClient, services: Services) -> None:
    sign_up(client, services, DEV)
    laptop = second_session(client, DEV, PASSWORD)
    refused = change(client, PASSWORD, NEW, NEW + "!")
    assert refused.status_code == 422
    assert "The new password and its confirmation differ." in refused.text
    assert signed_in(laptop)
    assert sign_in_status(client, DEV, NEW) == 401
    assert sign_in_status(client, DEV, PASSWORD) == 303


def test_the_form_needs_its_csrf_token_and_a_session(client: TestClient, services: Services) -> None:
    sign_up(client, services, DEV)
    data = {"current_password": PASSWORD, "new_password": NEW, "confirm_password": NEW}
    for token in ({}, {"csrf_token": "forged" * 8}):
        refused = client.post("/portal/password", data={**data, **token}, follow_redirects=False)
        assert refused.status_code == 403
        assert "Please try again" in refused.text
    assert sign_in_status(client, DEV, PASSWORD) == 303

    stranger = TestClient(client.app)
    assert stranger.get("/portal/password", follow_redirects=False).headers["location"] == "/portal/signin"
    token = csrf(stranger.get("/portal/signin").text)
    away = stranger.post("/portal/password", data={**data, "csrf_token": token}, follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/portal/signin"
    assert sign_in_status(client, DEV, PASSWORD) == 303
    assert stranger.get("/admin/password", follow_redirects=False).headers["location"] == "/admin/signin"


def test_a_staff_member_changes_the_password_at_the_console(
    client: TestClient, services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = staff_account(settings, monkeypatch, STAFF, "support")
    first = post(client, "/admin/signin", "/admin/signin", {"email": STAFF, "password": temporary})
    assert first.headers["location"] == "/admin/totp"
    secret = enrol_totp(client, services, "/admin")
    desk = TestClient(client.app)
    post(desk, "/admin/signin", "/admin/signin", {"email": STAFF, "password": temporary})
    assert post(desk, "/admin/mfa", "/admin/mfa", {"code": code(services, secret)}).status_code == 303
    assert signed_in(desk, "/admin")

    form = client.get("/admin/password")
    assert form.status_code == 200
    assert 'action="/admin/password"' in form.text
    assert "Review queue" in form.text  # the console's menu
    assert 'href="/admin/password"' in client.get("/admin/").text
    wrong = change(client, "not my password", NEW, area="/admin")
    assert wrong.status_code == 401
    assert "The current password is wrong." in wrong.text
    weak = change(client, temporary, "password123", area="/admin")
    assert weak.status_code == 422
    assert "common or breached" in weak.text

    done = change(client, temporary, NEW, area="/admin")
    assert done.status_code == 200, done.text
    assert "Password changed" in done.text
    assert "Path=/admin" in done.headers["set-cookie"]
    assert signed_in(client, "/admin")  # the second factor passed in this session still counts
    assert not signed_in(desk, "/admin")
    assert sign_in_status(client, STAFF, temporary, "/admin") == 401
    fresh = TestClient(client.app)
    again = post(fresh, "/admin/signin", "/admin/signin", {"email": STAFF, "password": NEW})
    assert again.headers["location"] == "/admin/mfa"  # the second factor is still required
    notice = mails_to(services, STAFF)[-1]
    assert "was just changed by someone signed in" in notice
    assert "http://testserver/admin/forgot" in notice
