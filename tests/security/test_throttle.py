"""Sign-in throttling: counted in process, in Redis (shared by hosts), and the fallback when Redis fails."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from openpayer.app import create_app
from openpayer.bootstrap import build_services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, two_member_world
from openpayer.security.throttle import (
    ACCOUNT,
    CLIENT_IP,
    MemoryCounter,
    RedisCounter,
    SignInThrottle,
    make_counter,
)

REDIS_URL = "redis://127.0.0.1:6379/15"
REDIRECT = "https://app.example.com/callback"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t


def redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False
    return True


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    if not redis_available():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    import redis

    prefix = f"openpayer-test-{secrets.token_hex(4)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def exercise(throttle: SignInThrottle, clock: FakeClock) -> None:
    for _ in range(ACCOUNT.failures - 1):
        throttle.failed("sandbox", "Alice", "10.0.0.1")
    assert throttle.allowed("sandbox", "alice", "10.0.0.1")
    throttle.failed("sandbox", "ALICE", "10.0.0.1")
    assert not throttle.allowed("sandbox", "alice", "10.0.0.2")  # the account is locked from anywhere
    assert throttle.allowed("production", "alice", "10.0.0.2")  # environments are separate
    assert throttle.allowed("sandbox", "bob", "10.0.0.1")
    clock.t += ACCOUNT.window + 1
    assert throttle.allowed("sandbox", "alice", "10.0.0.1")  # the window slid past the failures


def test_memory_counter_locks_an_account_within_the_window() -> None:
    clock = FakeClock()
    exercise(SignInThrottle(clock, MemoryCounter()), clock)


def test_success_clears_the_account_but_not_the_address() -> None:
    clock = FakeClock()
    throttle = SignInThrottle(clock, MemoryCounter())
    for n in range(CLIENT_IP.failures):
        throttle.failed("sandbox", f"user{n}", "10.9.9.9")  # spraying: one try per account
    throttle.succeeded("sandbox", "user1")
    assert not throttle.allowed("sandbox", "someone-else", "10.9.9.9")
    assert throttle.allowed("sandbox", "someone-else", "10.0.0.1")


def test_redis_counter_is_shared_between_hosts(redis_prefix: str) -> None:
    import redis

    clock = FakeClock()
    host_a = SignInThrottle(
        clock, RedisCounter(redis.Redis.from_url(REDIS_URL), MemoryCounter(), redis_prefix)
    )
    host_b = SignInThrottle(
        clock, RedisCounter(redis.Redis.from_url(REDIS_URL), MemoryCounter(), redis_prefix)
    )
    for _ in range(ACCOUNT.failures):
        host_a.failed("sandbox", "carol", "10.0.0.3")
    assert not host_b.allowed("sandbox", "carol", "10.0.0.4")
    host_b.succeeded("sandbox", "carol")
    assert host_a.allowed("sandbox", "carol", "10.0.0.4")
    exercise(host_a, clock)


def test_redis_keys_hold_no_username(redis_prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    throttle = SignInThrottle(FakeClock(), RedisCounter(client, MemoryCounter(), redis_prefix))
    throttle.failed("sandbox", "dave.secret@example.com", "10.0.0.5")
    keys = [k.decode() for k in client.scan_iter(f"{redis_prefix}*")]
    assert len(keys) == 2
    assert not any("dave" in k or "10.0.0.5" in k for k in keys)


def test_an_unreachable_redis_falls_back_to_counting_in_process() -> None:
    clock = FakeClock()
    counter = make_counter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert isinstance(counter, RedisCounter)
    exercise(SignInThrottle(clock, counter), clock)


def test_without_a_redis_url_the_counter_is_in_process() -> None:
    assert isinstance(make_counter(None), MemoryCounter)


def test_a_lockout_on_one_host_holds_on_another(settings: Settings, redis_prefix: str) -> None:
    """Two app instances (two hosts) sharing Redis: failures on one lock the account on the other."""
    del redis_prefix  # only the availability check; the app uses the default key prefix
    import redis

    shared = settings.model_copy(update={"redis_url": REDIS_URL, "auth_enforce": True})
    host_a, host_b = build_services(shared), build_services(shared)
    try:
        two_member_world(host_a, "sandbox")
        client_id, _ = host_a.auth.clients.register(
            "sandbox", name="Wallet", redirect_uris=[REDIRECT], public=True
        )
        username = "member-a"
        with (
            TestClient(create_app(shared, services=host_a)) as http_a,
            TestClient(create_app(shared, services=host_b)) as http_b,
        ):
            app_a, app_b = SmartApp(http_a, client_id, REDIRECT), SmartApp(http_b, client_id, REDIRECT)
            for _ in range(ACCOUNT.failures):
                page = app_a.authorize("launch/patient patient/*.read")
                refused = app_a.sign_in(page.text, username, "wrong password")
                assert refused.status_code in (200, 401)
                assert 'name="decision"' not in refused.text
            page = app_b.authorize("launch/patient patient/*.read")
            locked = app_b.sign_in(page.text, username, TEST_PASSWORD)
            assert 'name="decision"' not in locked.text  # right password, but the account is throttled
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter("openpayer:signin:*"):
            client.delete(key)
        host_a.engine.dispose()
        host_b.engine.dispose()
