"""A suspension bites on every host within a second: a token in use on a second server process (its own
caches, the same database) is refused within one second of the suspension, with and without Redis; new
authorizations get a page that says the app is suspended; a restore brings the app back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.live import free_port

from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.oauth.connections import disconnect
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp

from .conftest import REDIRECT, Registered, console, staff_person, submit

REDIS_TEST_URL = "redis://127.0.0.1:6379/6"


def redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=0.5).ping()
    except Exception:
        return False
    return True


@pytest.fixture
def second_server(settings: Settings) -> Iterator[Callable[[dict[str, str]], str]]:
    """`start(extra_env)`: a real `uvicorn openpayer.asgi:app` process on the same database; its base URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(extra: dict[str, str]) -> str:
        port = free_port()
        env = {
            **os.environ,
            "OPENPAYER_HOME": str(settings.home),
            "OPENPAYER_DATABASE_URL": settings.resolved_database_url,
            "OPENPAYER_SECRET_KEY": "test-secret",
            "OPENPAYER_AUTH_ENFORCE": "true",
            "OPENPAYER_JOBS_IN_SERVE": "false",
            **extra,
        }
        command = [sys.executable, "-m", "uvicorn", "openpayer.asgi:app", "--host", "127.0.0.1"]
        process = subprocess.Popen(
            [*command, "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, "the second server exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return f"http://127.0.0.1:{port}"
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("the second server did not start")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=60)


def first_refusal_within(url: str, headers: dict[str, str], deadline: float) -> bool:
    """Ask until the answer is 401; whether a request sent before `deadline` got it."""
    with httpx.Client(timeout=5) as http:
        while True:
            sent = time.monotonic()
            if http.get(url, headers=headers).status_code == 401:
                return sent <= deadline
            if sent > deadline:
                return False
            time.sleep(0.02)


@pytest.mark.parametrize("with_redis", [False, True], ids=["polling", "redis"])
def test_a_token_in_use_on_another_host_stops_within_a_second_of_suspension(
    client: TestClient,
    services: Services,
    world: dict[str, str],
    registered: Registered,
    staff: dict[str, int],
    second_server: Callable[[dict[str, str]], str],
    with_redis: bool,
) -> None:
    if with_redis and not redis_available():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    base = second_server({"OPENPAYER_REDIS_URL": REDIS_TEST_URL} if with_redis else {})
    app = SmartApp(client, registered.client_id, REDIRECT)
    tokens = app.launch("launch/patient patient/*.rs offline_access", "member-a", TEST_PASSWORD)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    url = f"{base}/sandbox/fhir/Patient/{world['a']}"
    for _ in range(3):  # in use: the second host has the token's check cached
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200

    # Suspended by an analyst in the console of this host (an incident's action), over HTTP.
    staff_person(services, "responder@plan.example", "security_analyst")
    analyst = console(client.app, services, "responder@plan.example")
    incident = services.incidents.incidents.create(
        None, title="Stuffing", severity="high", subscriptions=[registered.subscription_id]
    )
    page = f"/admin/incidents/{incident.id}"
    form = {"action": "suspend", "subscription_id": str(registered.subscription_id), "reason": "stuffing"}
    assert submit(analyst, page, f"{page}/act", form).status_code == 303
    assert first_refusal_within(url, headers, time.monotonic() + 1.0)

    refreshed = httpx.post(
        f"{base}/sandbox/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": registered.client_id,
        },
        timeout=10,
    )
    assert refreshed.status_code in (400, 401)
    assert refreshed.json()["error"] in ("invalid_grant", "invalid_client")
    page = SmartApp(httpx.Client(base_url=base), registered.client_id, REDIRECT, origin=base).authorize(
        "launch/patient patient/*.rs"
    )
    assert page.status_code == 403
    assert "This app is suspended" in page.text

    services.portal.applications.set_status(
        staff["analyst"], registered.subscription_id, "active", reason="contained"
    )
    deadline = time.monotonic() + 1.0
    with httpx.Client(timeout=5) as http:
        while http.get(url, headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "the restored app's token did not work again within 1 s"
            time.sleep(0.02)


def test_the_suspended_page_is_shown_on_this_host_too(
    client: TestClient, services: Services, registered: Registered, staff: dict[str, int]
) -> None:
    services.portal.applications.set_status(
        staff["admin"], registered.subscription_id, "suspended", reason="breach at the developer"
    )
    page = SmartApp(client, registered.client_id, REDIRECT).authorize("launch/patient patient/*.rs")
    assert page.status_code == 403
    assert "This app is suspended by the health plan" in page.text


@pytest.mark.parametrize("how", ["member disconnects the app", "the app revokes its token"])
def test_a_revoked_token_in_use_on_another_host_stops_within_a_second(
    client: TestClient,
    services: Services,
    world: dict[str, str],
    registered: Registered,
    second_server: Callable[[dict[str, str]], str],
    how: str,
) -> None:
    """Without Redis (the database counter alone): the second host had the token's check cached."""

    base = second_server({})
    app = SmartApp(client, registered.client_id, REDIRECT)
    tokens = app.launch("launch/patient patient/*.rs", "member-a", TEST_PASSWORD)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    url = f"{base}/sandbox/fhir/Patient/{world['a']}"
    for _ in range(3):
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200
    if how == "member disconnects the app":
        member = services.auth.members.authenticate("sandbox", "member-a", TEST_PASSWORD)
        assert member is not None
        assert disconnect(services.auth, "sandbox", member, registered.client_id)
    else:
        revoked = client.post(
            "/sandbox/auth/revoke", data={"token": tokens["access_token"], "client_id": registered.client_id}
        )
        assert revoked.status_code == 200
    assert first_refusal_within(url, headers, time.monotonic() + 1.0)
