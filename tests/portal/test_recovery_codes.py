"""Recovery codes of two-step sign-in over HTTP, at `/portal/` and `/admin/`: a set shown once when the
authenticator is set up or replaced (only keyed digests kept), each code signing in once in place of the TOTP
code, wrong ones throttled on the sign-in's counters, a new set (current password and code) ending the old
one, the count left on the "Two-step sign-in" page, and a notice mailed for a new set and for each code
used."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openpayer.accounts.events import SignInArea, SignInEvent, SignInOutcome
from openpayer.accounts.models import account_recovery_code
from openpayer.app import Services
from openpayer.config import Settings
from openpayer.email.tables import email_message
from openpayer.security.events import EventKind

from .conftest import mails_to
from .pages import PASSWORD, code, enrol_totp_with_codes, post, recovery_codes, sign_up, staff_account
from .test_authenticator_change import causes, confirm, new_key, prove
from .test_password_change import DEV, STAFF, signed_in


@pytest.fixture
def events(services: Services) -> list[SignInEvent]:
    seen: list[SignInEvent] = []
    services.signin_events.listeners.append(seen.append)
    return seen


def developer_with_codes(client: TestClient, services: Services) -> tuple[str, list[str]]:
    """A developer signed in on `client` who has just turned two-step sign-in on: (secret, codes)."""
    sign_up(client, services, DEV)
    return enrol_totp_with_codes(client, services, "/portal")


def half_signed_in(client: TestClient, email: str, password: str, area: str = "/portal") -> TestClient:
    """A new browser past the password, at the second step."""
    fresh = TestClient(client.app)
    first = post(fresh, f"{area}/signin", f"{area}/signin", {"email": email, "password": password})
    assert first.headers["location"] == f"{area}/mfa"
    return fresh


def with_recovery_code(browser: TestClient, value: str, area: str = "/portal") -> Any:
    """The mfa page's second form, as a browser submits it."""
    return post(browser, f"{area}/mfa", f"{area}/mfa", {"recovery_code": value})


def stored(services: Services) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(select(account_recovery_code)).all())


def left_on_page(client: TestClient, area: str = "/portal") -> str:
    page = client.get(f"{area}/authenticator")
    assert page.status_code == 200
    start = page.text.index('id="recovery-codes-left">')
    return page.text[start : page.text.index("</p>", start)]


def test_the_codes_are_shown_once_and_each_signs_in_once(
    client: TestClient, services: Services, events: list[SignInEvent]
) -> None:
    _, codes = developer_with_codes(client, services)
    assert len(set(codes)) == 10
    assert signed_in(client)  # enrolment goes on signed in, second factor passed
    page = client.get("/portal/authenticator")
    assert "10 unused recovery codes left." in left_on_page(client)
    assert not recovery_codes(page.text)
    assert all(c not in page.text for c in codes)  # never shown again

    phone = half_signed_in(client, DEV, PASSWORD)
    typed = codes[3].upper().replace("-", " ")  # case, spaces and hyphens do not matter
    done = with_recovery_code(phone, typed)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/portal/"
    assert signed_in(phone)
    notice = mails_to(services, DEV)[-1]
    assert "A recovery code was just used" in notice
    assert "Unused recovery codes left: 9." in notice
    assert "http://testserver/portal/authenticator" in notice
    assert all(c not in notice for c in codes)
    assert causes(services, DEV)[-1] == "account:recovery-code-used"
    assert "9 unused recovery codes left." in left_on_page(client)

    again = half_signed_in(client, DEV, PASSWORD)
    refused = with_recovery_code(again, codes[3])
    assert refused.status_code == 401
    assert "That recovery code is not right, or it was used already." in refused.text
    assert not signed_in(again)
    assert causes(services, DEV)[-1] == "account:recovery-code-used"  # no second notice
    assert "9 unused recovery codes left." in left_on_page(client)

    portal = [e.outcome for e in events if e.area is SignInArea.PORTAL]
    assert portal[-2:] == [SignInOutcome.SUCCEEDED, SignInOutcome.WRONG_SECOND_FACTOR]
    recorded = services.security.events.query(kinds=[EventKind.SIGNIN_DEVELOPER])
    assert [(e.outcome, e.detail) for e in recorded[:2]] == [
        ("failure", "recovery-code"),
        ("success", "recovery-code"),
    ]


def test_a_recovery_code_keeps_the_place_to_go_back_to(client: TestClient, services: Services) -> None:
    _, codes = developer_with_codes(client, services)
    phone = TestClient(client.app)
    data = {"email": DEV, "password": PASSWORD, "next": "/portal/organizations/new"}
    first = post(phone, "/portal/signin", "/portal/signin", data)
    assert first.headers["location"] == "/portal/mfa?next=%2Fportal%2Forganizations%2Fnew"
    form = phone.get(first.headers["location"])
    assert 'name="recovery_code"' in form.text
    done = post(
        phone,
        first.headers["location"],
        "/portal/mfa",
        {"recovery_code": codes[0], "next": "/portal/organizations/new"},
    )
    assert done.headers["location"] == "/portal/organizations/new"


def test_the_codes_are_stored_as_keyed_digests_only(client: TestClient, services: Services) -> None:
    _, codes = developer_with_codes(client, services)
    rows = stored(services)
    assert len(rows) == 10
    person = services.portal.people.by_email(DEV)
    assert person is not None
    digests = {row.code_digest for row in rows}
    for value in codes:
        plain = value.replace("-", "")
        assert all(plain not in str(tuple(row)) and value not in str(tuple(row)) for row in rows)
        assert services.portal.people.recovery_codes.digest(person.id, value) in digests
    with services.engine.connect() as conn:
        mails = " ".join(conn.execute(select(email_message.c.mime)).scalars())
    assert all(c not in mails and c.replace("-", "") not in mails for c in codes)


def test_a_new_set_ends_the_old_one(client: TestClient, services: Services) -> None:
    secret, old = developer_with_codes(client, services)
    laptop = half_signed_in(client, DEV, PASSWORD)
    assert with_recovery_code(laptop, old[0]).status_code == 303
    assert "9 unused recovery codes left." in left_on_page(client)
    mails = len(mails_to(services, DEV))

    wrong = prove(client, services, secret, "recovery-codes", current_password="not my password")
    assert wrong.status_code == 401
    assert "The current password is wrong." in wrong.text
    assert not recovery_codes(wrong.text)
    assert len(mails_to(services, DEV)) == mails
    assert "9 unused recovery codes left." in left_on_page(client)

    page = prove(client, services, secret, "recovery-codes")
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert "New recovery codes" in page.text
    new = recovery_codes(page.text)
    assert len(new) == 10
    assert not set(new) & set(old)
    assert "10 unused recovery codes left." in left_on_page(client)
    assert causes(services, DEV)[-1] == "account:recovery-codes"
    notice = mails_to(services, DEV)[-1]
    assert "The earlier recovery codes no longer work." in notice
    assert all(c not in notice for c in new + old)
    assert signed_in(laptop)  # a new set ends no session

    assert with_recovery_code(half_signed_in(client, DEV, PASSWORD), old[1]).status_code == 401
    assert with_recovery_code(half_signed_in(client, DEV, PASSWORD), new[1]).status_code == 303


def test_a_new_authenticator_brings_new_codes_and_turning_it_off_ends_them(
    client: TestClient, services: Services
) -> None:
    old_secret, old = developer_with_codes(client, services)
    shown = prove(client, services, old_secret)
    secret, sealed = new_key(shown)
    done = confirm(client, shown, sealed, code(services, secret))
    assert done.status_code == 200, done.text
    assert "Authenticator replaced" in done.text
    new = recovery_codes(done.text)
    assert len(new) == 10
    assert not set(new) & set(old)
    assert "old recovery codes no longer work" in mails_to(services, DEV)[-1]
    assert with_recovery_code(half_signed_in(client, DEV, PASSWORD), old[0]).status_code == 401
    assert with_recovery_code(half_signed_in(client, DEV, PASSWORD), new[0]).status_code == 303

    services.clock.advance(31)  # a fresh code from the new authenticator
    off = prove(client, services, secret, "remove")
    assert off.status_code == 200, off.text
    assert "the recovery codes no longer work" in off.text
    assert stored(services) == []


def test_wrong_codes_are_throttled_with_the_totp_codes(
    client: TestClient, services: Services, events: list[SignInEvent]
) -> None:
    secret, codes = developer_with_codes(client, services)
    phone = half_signed_in(client, DEV, PASSWORD)
    wrong_totp = "000000" if code(services, secret) != "000000" else "111111"
    for _ in range(5):  # the sign-in's limit is 10 failures per account and address: TOTP and recovery alike
        assert post(phone, "/portal/mfa", "/portal/mfa", {"code": wrong_totp}).status_code == 401
    for _ in range(5):
        assert with_recovery_code(phone, "abcde-fghjk").status_code == 401
    throttled = with_recovery_code(phone, codes[0])  # even the right code waits, and is not spent
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed" in throttled.text
    assert not signed_in(phone)
    assert "10 unused recovery codes left." in left_on_page(client)
    assert post(phone, "/portal/mfa", "/portal/mfa", {"code": code(services, secret)}).status_code == 429
    portal = [e.outcome for e in events if e.area is SignInArea.PORTAL]
    assert portal[-12:] == [SignInOutcome.WRONG_SECOND_FACTOR] * 10 + [SignInOutcome.THROTTLED] * 2


def test_wrong_recovery_codes_alone_meet_the_same_limit(client: TestClient, services: Services) -> None:
    _, codes = developer_with_codes(client, services)
    phone = half_signed_in(client, DEV, PASSWORD)
    for _ in range(10):
        assert with_recovery_code(phone, "abcde-fghjk").status_code == 401
    assert with_recovery_code(phone, codes[0]).status_code == 429


def test_two_requests_racing_with_one_code_sign_in_once(client: TestClient, services: Services) -> None:
    _, codes = developer_with_codes(client, services)
    person = services.portal.people.by_email(DEV)
    assert person is not None
    recovery = services.portal.people.recovery_codes
    for value in codes[:3]:
        barrier = threading.Barrier(2)
        results: list[int | None] = []

        def spend(value: str = value, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            results.append(recovery.use(person.id, value))

        threads = [threading.Thread(target=spend) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 2
        assert results.count(None) == 1  # exactly one of the two spent it
    assert recovery.remaining(person.id) == 7


def test_a_staff_member_has_recovery_codes_too(
    client: TestClient, services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = staff_account(settings, monkeypatch, STAFF, "support")
    post(client, "/admin/signin", "/admin/signin", {"email": STAFF, "password": temporary})
    secret, codes = enrol_totp_with_codes(client, services, "/admin")
    assert signed_in(client, "/admin")  # enrolment completed the sign-in
    assert "10 unused recovery codes left." in left_on_page(client, "/admin")

    desk = half_signed_in(client, STAFF, temporary, "/admin")
    done = with_recovery_code(desk, codes[0], "/admin")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/admin/"
    assert signed_in(desk, "/admin")
    assert "Unused recovery codes left: 9." in mails_to(services, STAFF)[-1]
    assert "http://testserver/admin/authenticator" in mails_to(services, STAFF)[-1]
    again = half_signed_in(client, STAFF, temporary, "/admin")
    assert with_recovery_code(again, codes[0], "/admin").status_code == 401
    assert not signed_in(again, "/admin")

    data = {"current_password": temporary, "code": code(services, secret)}
    page = post(client, "/admin/authenticator", "/admin/authenticator/recovery-codes", data)
    assert page.status_code == 200, page.text
    assert "Review queue" in page.text  # the console's menu
    new = recovery_codes(page.text)
    assert len(new) == 10
    assert causes(services, STAFF)[-1] == "account:recovery-codes"
    assert (
        with_recovery_code(half_signed_in(client, STAFF, temporary, "/admin"), codes[1], "/admin").status_code
        == 401
    )
    assert (
        with_recovery_code(half_signed_in(client, STAFF, temporary, "/admin"), new[1], "/admin").status_code
        == 303
    )


def test_a_code_is_no_way_past_the_password_or_into_another_account(
    client: TestClient, services: Services
) -> None:
    _, codes = developer_with_codes(client, services)
    stranger = TestClient(client.app)
    refused = post(stranger, "/portal/signin", "/portal/mfa", {"recovery_code": codes[0]})
    assert refused.status_code == 303
    assert refused.headers["location"] == "/portal/signin"
    other = "other@example-app.com"
    sign_up(TestClient(client.app), services, other)
    person = services.portal.people.by_email(other)
    assert person is not None
    assert services.portal.people.recovery_codes.use(person.id, codes[0]) is None
    assert "10 unused recovery codes left." in left_on_page(client)
