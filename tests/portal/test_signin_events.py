"""Every sign-in path (member, developer, staff) reports to the one hook, `SignInEvents.report_sign_in`, and
the developers' and staff's sign-in is throttled like the members'."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openpayer.accounts.events import SignInArea, SignInEvent, SignInOutcome
from openpayer.app import Services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world

from .pages import PASSWORD, post, sign_up, staff_account, staff_sign_in


@pytest.fixture
def events(services: Services) -> list[SignInEvent]:
    seen: list[SignInEvent] = []
    services.signin_events.listeners.append(seen.append)
    return seen


def outcomes(events: list[SignInEvent], area: SignInArea) -> list[tuple[str, SignInOutcome]]:
    return [(e.account, e.outcome) for e in events if e.area is area]


def test_members_developers_and_staff_report_to_one_hook(
    client: TestClient,
    services: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    events: list[SignInEvent],
) -> None:
    # A member, through the SMART sign-in page.
    two_member_world(services, "sandbox")
    client_id, _ = services.auth.clients.register(
        "sandbox", name="Wallet", redirect_uris=["https://app.example.com/cb"], public=True
    )
    smart = SmartApp(client, client_id, "https://app.example.com/cb")
    page = smart.authorize("launch/patient patient/*.rs")
    assert smart.sign_in(page.text, "member-a", "not the password").status_code == 401
    smart.code("launch/patient patient/*.rs", "member-a", TEST_PASSWORD)
    assert outcomes(events, SignInArea.MEMBER) == [
        ("member-a", SignInOutcome.WRONG_PASSWORD),
        ("member-a", SignInOutcome.SUCCEEDED),
    ]
    member = [e for e in events if e.area is SignInArea.MEMBER]
    assert member[0].env == "sandbox"
    assert member[0].account_id is None
    assert member[1].account_id is not None

    # A developer: a wrong password, then an unverified account, then a verified one.
    wrong = post(
        client, "/portal/signin", "/portal/signin", {"email": "Dev@Example-App.com", "password": "nope nope"}
    )
    assert wrong.status_code == 401
    sign_up(client, services, "dev@example-app.com")
    assert outcomes(events, SignInArea.PORTAL) == [
        ("dev@example-app.com", SignInOutcome.WRONG_PASSWORD),
        ("dev@example-app.com", SignInOutcome.SUCCEEDED),
    ]
    developer = [e for e in events if e.area is SignInArea.PORTAL]
    assert developer[-1].env is None
    assert developer[-1].address == "testclient"

    # A developer at the console: refused like a wrong password, reported as refused.
    not_staff = post(
        client, "/admin/signin", "/admin/signin", {"email": "dev@example-app.com", "password": PASSWORD}
    )
    assert not_staff.status_code == 401
    # A staff member completes sign-in by enrolling TOTP.
    password = staff_account(settings, monkeypatch, "appsec@plan.example", "appsec_reviewer")
    staff_sign_in(TestClient(client.app), services, "appsec@plan.example", password)
    assert outcomes(events, SignInArea.ADMIN) == [
        ("dev@example-app.com", SignInOutcome.REFUSED),
        ("appsec@plan.example", SignInOutcome.SUCCEEDED),
    ]


def test_a_listener_that_fails_does_not_break_sign_in(client: TestClient, services: Services) -> None:
    def broken(event: SignInEvent) -> None:
        raise RuntimeError("monitor down")

    services.signin_events.listeners.append(broken)
    sign_up(client, services, "dev@example-app.com")  # asserts the sign-in redirect


def test_developer_sign_in_is_throttled_without_revealing_it(
    client: TestClient, services: Services, events: list[SignInEvent]
) -> None:
    """Ten failures of one account from one address block that pair (429 with `Retry-After`) and the
    right password is not checked; the block says nothing about whether the account exists."""
    sign_up(client, services, "dev@example-app.com")
    for _ in range(10):
        wrong = post(
            client, "/portal/signin", "/portal/signin", {"email": "dev@example-app.com", "password": "x" * 9}
        )
        assert wrong.status_code == 401
    right = post(
        client, "/portal/signin", "/portal/signin", {"email": "dev@example-app.com", "password": PASSWORD}
    )
    assert right.status_code == 429
    assert int(right.headers["retry-after"]) > 0
    assert right.text.count("Too many failed sign-in attempts") == 1
    assert outcomes(events, SignInArea.PORTAL)[-1] == ("dev@example-app.com", SignInOutcome.THROTTLED)
    recorded = services.security.events.query(kinds=["signin:developer"])
    assert [e.outcome for e in recorded][:2] == ["failure", "failure"]
    assert all(e.account and "dev" not in e.account for e in recorded)
    services.clock.advance(901)  # the window passes
    again = post(
        client, "/portal/signin", "/portal/signin", {"email": "dev@example-app.com", "password": PASSWORD}
    )
    assert again.status_code == 303
