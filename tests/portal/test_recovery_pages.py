"""Account recovery over HTTP, with the mail the email service recorded: password reset by an e-mailed link
(single use, expiring, digest at rest, every session ended), a new verification link, the invitation that
comes back after signing in or up, session timeouts and "sign out everywhere"."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpayer.accounts.models import account_password_reset
from openpayer.app import Services
from openpayer.config import Settings

from .conftest import mails_to
from .pages import (
    ORG,
    PASSWORD,
    code,
    csrf,
    enrol_totp,
    link_in_last_mail,
    post,
    sign_up,
    staff_account,
)

NEW_PASSWORD = "a brand new passphrase for me"
DEV = "dev@example-app.com"


def signed_in(client: TestClient) -> bool:
    return "Signed in as" in client.get("/portal/").text


def sign_in(client: TestClient, email: str, password: str, area: str = "/portal") -> int:
    response = post(client, f"{area}/signin", f"{area}/signin", {"email": email, "password": password})
    return int(response.status_code)


def ask_reset(client: TestClient, email: str, area: str = "/portal") -> str:
    response = post(client, f"{area}/forgot", f"{area}/forgot", {"email": email})
    assert response.status_code == 200
    return str(response.text).replace(email, "ADDRESS")


def test_password_reset_by_an_emailed_link_ends_every_session(client: TestClient, services: Services) -> None:
    sign_up(client, services, DEV)
    laptop = TestClient(client.app)
    assert sign_in(laptop, DEV, PASSWORD) == 303
    assert signed_in(client)
    assert signed_in(laptop)

    stranger = TestClient(client.app)
    assert 'href="/portal/forgot"' in stranger.get("/portal/signin").text
    answer = ask_reset(stranger, DEV)
    assert answer == ask_reset(stranger, "nobody@example-app.com")  # nothing tells who has an account
    assert mails_to(services, "nobody@example-app.com") == []
    link = link_in_last_mail(services, DEV)
    token = parse_qs(urlsplit(link).query)["token"][0]
    with services.engine.connect() as conn:
        stored = conn.execute(select(account_password_reset)).one()
    assert token not in stored.token_digest  # only a digest at rest
    assert stored.expires_at - stored.created_at == 3600

    form = stranger.get(link)
    assert form.status_code == 200
    assert DEV in form.text
    weak = stranger.post(
        "/portal/reset", data={"csrf_token": csrf(form.text), "token": token, "password": "password123"}
    )
    assert weak.status_code == 422
    assert "common or breached" in weak.text  # the NIST rules of sign-up; the link still works
    done = stranger.post(
        "/portal/reset", data={"csrf_token": csrf(form.text), "token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 200
    assert "Password changed" in done.text
    assert "was just changed" in mails_to(services, DEV)[-1]

    assert not signed_in(client)  # every session of the account ended
    assert not signed_in(laptop)
    assert client.get("/portal/organizations/new", follow_redirects=False).status_code == 303
    again = stranger.get(link)
    assert again.status_code == 400  # single use
    assert "does not work" in again.text
    replay = stranger.post(
        "/portal/reset", data={"csrf_token": csrf(form.text), "token": token, "password": "another good one!"}
    )
    assert replay.status_code == 400
    assert sign_in(client, DEV, PASSWORD) == 401
    assert sign_in(client, DEV, NEW_PASSWORD) == 303
    assert signed_in(client)


def test_reset_links_expire_are_replaced_and_requests_are_throttled(
    client: TestClient, services: Services
) -> None:
    sign_up(client, services, DEV)
    ask_reset(client, DEV)
    first = link_in_last_mail(services, DEV)
    services.clock.advance(3601)
    assert client.get(first).status_code == 400  # older than an hour

    ask_reset(client, DEV)
    second = link_in_last_mail(services, DEV)
    ask_reset(client, DEV)
    third = link_in_last_mail(services, DEV)
    assert client.get(second).status_code == 400  # a new request replaces the unused link
    assert client.get(third).status_code == 200
    ask_reset(client, DEV)  # the third within the hour
    sent = len(mails_to(services, DEV))
    answer = ask_reset(client, DEV)  # the fourth within the hour: the same answer, no mail
    assert "If an account uses ADDRESS" in answer
    assert len(mails_to(services, DEV)) == sent
    assert client.get("/portal/reset?token=forged").status_code == 400


def test_staff_reset_at_the_console(
    client: TestClient, services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff_account(settings, monkeypatch, "support@plan.example", "support")
    ask_reset(client, "support@plan.example", "/admin")
    link = link_in_last_mail(services, "support@plan.example")
    assert link.startswith("/admin/reset?token=")
    form = client.get(link)
    token = parse_qs(urlsplit(link).query)["token"][0]
    done = client.post(
        "/admin/reset", data={"csrf_token": csrf(form.text), "token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 200
    signin = post(
        client, "/admin/signin", "/admin/signin", {"email": "support@plan.example", "password": NEW_PASSWORD}
    )
    assert signin.headers["location"] == "/admin/totp"  # the second factor is still required
    # A developer account is not staff: the console sends it nothing, and says the same.
    sign_up(TestClient(client.app), services, DEV)
    sent = len(mails_to(services, DEV))
    assert "If an account uses" in ask_reset(client, DEV, "/admin")
    assert len(mails_to(services, DEV)) == sent


def test_a_new_verification_link_for_an_unverified_account(client: TestClient, services: Services) -> None:
    post(client, "/portal/signup", "/portal/signup", {"email": DEV, "password": PASSWORD})
    refused = post(client, "/portal/signin", "/portal/signin", {"email": DEV, "password": PASSWORD})
    assert refused.status_code == 403
    assert 'href="/portal/verify/resend"' in refused.text

    def resend(email: str) -> str:
        response = post(client, "/portal/verify/resend", "/portal/verify/resend", {"email": email})
        assert response.status_code == 200
        return str(response.text).replace(email, "ADDRESS")

    assert resend(DEV) == resend("nobody@example-app.com")
    assert len(mails_to(services, DEV)) == 2  # the sign-up's link and a new one
    assert mails_to(services, "nobody@example-app.com") == []
    second = link_in_last_mail(services, DEV)  # (the same as the first within one second: both are valid)
    assert "verified" in client.get(second).text
    assert sign_in(client, DEV, PASSWORD) == 303
    sent = len(mails_to(services, DEV))
    resend(DEV)  # verified now: nothing more is sent
    assert len(mails_to(services, DEV)) == sent


def test_resending_is_throttled(client: TestClient, services: Services) -> None:
    post(client, "/portal/signup", "/portal/signup", {"email": DEV, "password": PASSWORD})
    for _ in range(4):
        post(client, "/portal/verify/resend", "/portal/verify/resend", {"email": DEV})
    assert len(mails_to(services, DEV)) == 1 + 3  # sign-up, then three within the hour


def invited(client: TestClient, services: Services, email: str) -> str:
    """An owner's organization invites `email`; returns the invitation's path."""
    owner = TestClient(client.app)
    sign_up(owner, services, "owner@example-app.com")
    org_url = post(owner, "/portal/organizations/new", "/portal/organizations/new", ORG).headers["location"]
    post(owner, org_url, f"{org_url}/invite", {"email": email, "role": "developer"})
    return link_in_last_mail(services, email)


def test_an_invitation_followed_signed_out_comes_back_after_sign_up(
    client: TestClient, services: Services
) -> None:
    invitation = invited(client, services, "new@example-app.com")
    away = client.get(invitation, follow_redirects=False)
    assert away.status_code == 303
    signin_url = away.headers["location"]
    assert signin_url == f"/portal/signin?next={invitation.replace('/', '%2F')}"
    page = client.get(signin_url)
    assert "to answer the invitation" in page.text
    signup_url = re.search(r'href="(/portal/signup\?next=[^"]+)"', page.text)
    assert signup_url
    signup_page = client.get(signup_url.group(1).replace("&amp;", "&"))
    created = client.post(
        "/portal/signup",
        data={
            "csrf_token": csrf(signup_page.text),
            "email": "new@example-app.com",
            "password": PASSWORD,
            "next": invitation,
        },
    )
    assert created.status_code == 200
    verified = client.get(link_in_last_mail(services, "new@example-app.com"))
    back = re.search(r'href="(/portal/signin\?next=[^"]+)"', verified.text)
    assert back
    signin_page = client.get(back.group(1))
    signed = client.post(
        "/portal/signin",
        data={
            "csrf_token": csrf(signin_page.text),
            "email": "new@example-app.com",
            "password": PASSWORD,
            "next": re.search(r'name="next" value="([^"]+)"', signin_page.text).group(1),  # type: ignore[union-attr]
        },
        follow_redirects=False,
    )
    assert signed.headers["location"] == invitation
    accepted = post(client, invitation, invitation, {})
    assert accepted.headers["location"].startswith("/portal/organizations/")


def test_the_way_back_passes_the_second_factor_and_stays_on_this_site(
    client: TestClient, services: Services
) -> None:
    invitation = invited(client, services, DEV)
    sign_up(client, services, DEV)
    secret = enrol_totp(client, services, "/portal")
    client.post("/portal/signout", data={"csrf_token": csrf(client.get("/portal/").text)})
    page = client.get(f"/portal/signin?next={invitation}")
    first = client.post(
        "/portal/signin",
        data={"csrf_token": csrf(page.text), "email": DEV, "password": PASSWORD, "next": invitation},
        follow_redirects=False,
    )
    mfa_url = first.headers["location"]
    assert mfa_url.startswith("/portal/mfa?next=")
    mfa_page = client.get(mfa_url)
    done = client.post(
        "/portal/mfa",
        data={"csrf_token": csrf(mfa_page.text), "code": code(services, secret), "next": invitation},
        follow_redirects=False,
    )
    assert done.headers["location"] == invitation

    for unsafe in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "/admin/", "javascript:x"):
        client.cookies.clear()
        page = client.get("/portal/signin")
        response = client.post(
            "/portal/signin",
            data={"csrf_token": csrf(page.text), "email": DEV, "password": PASSWORD, "next": unsafe},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/portal/mfa", unsafe
        mfa_page = client.get(f"/portal/mfa?next={unsafe}")
        assert "evil" not in mfa_page.text
        done = client.post(
            "/portal/mfa",
            data={"csrf_token": csrf(mfa_page.text), "code": code(services, secret), "next": unsafe},
            follow_redirects=False,
        )
        assert done.headers["location"] == "/portal/", unsafe
        services.clock.advance(31)  # a fresh code for the next round


def test_sessions_end_when_idle_and_at_their_absolute_limit(client: TestClient, services: Services) -> None:
    sign_up(client, services, DEV)
    services.clock.advance(29 * 60)
    assert signed_in(client)  # each page view renews the idle timer
    services.clock.advance(29 * 60)
    assert signed_in(client)
    services.clock.advance(31 * 60)
    assert not signed_in(client)  # 30 minutes without a page

    assert sign_in(client, DEV, PASSWORD) == 303
    for _ in range(12 * 60 // 25):
        services.clock.advance(25 * 60)
        assert signed_in(client)
    services.clock.advance(25 * 60)
    assert not signed_in(client)  # 12 hours after sign-in, whatever the activity


def test_sign_out_everywhere(client: TestClient, services: Services) -> None:
    sign_up(client, services, DEV)
    phone = TestClient(client.app)
    assert sign_in(phone, DEV, PASSWORD) == 303
    home = client.get("/portal/")
    assert 'action="/portal/signout-everywhere"' in home.text
    out = client.post(
        "/portal/signout-everywhere", data={"csrf_token": csrf(home.text)}, follow_redirects=False
    )
    assert out.headers["location"] == "/portal/signin"
    assert not signed_in(client)
    assert not signed_in(phone)
    assert sign_in(phone, DEV, PASSWORD) == 303
    assert signed_in(phone)
    # Signed out, the form is refused (it needs a session).
    refused = client.post(
        "/portal/signout-everywhere",
        data={"csrf_token": csrf(client.get("/portal/signin").text)},
        follow_redirects=False,
    )
    assert refused.headers["location"] == "/portal/signin"
    assert signed_in(phone)
