"""Throttling: per (account, address) and per address with growing delays, never per account alone; counted
in process (bounded, keeping the attackers), in Redis (shared by hosts), and in process when Redis fails."""

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
    Limit,
    Limits,
    MemoryCounter,
    RedisCounter,
    Throttle,
    delay_after,
    make_counter,
)

REDIS_URL = "redis://127.0.0.1:6379/5"
REDIRECT = "https://app.example.com/callback"
LIMITS = Limits()
REALM = "signin:member:sandbox"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now_float(self) -> float:
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


def exercise(throttle: Throttle, clock: FakeClock) -> None:
    """Brute force on one account from one address blocks that pair only."""
    for _ in range(LIMITS.pair.failures - 1):
        throttle.signin_failed(REALM, "Alice", "10.0.0.1")
    assert throttle.check_signin(REALM, "alice", "10.0.0.1").allowed
    throttle.signin_failed(REALM, "ALICE", "10.0.0.1")
    blocked = throttle.check_signin(REALM, "alice", "10.0.0.1")
    assert not blocked.allowed
    assert blocked.limit == "signin:pair"
    assert 0 < blocked.retry_after <= LIMITS.pair.window
    assert throttle.check_signin(REALM, "alice", "10.0.0.2").allowed  # the member signs in from elsewhere
    assert throttle.check_signin("signin:member:production", "alice", "10.0.0.1").allowed
    assert throttle.check_signin(REALM, "bob", "10.0.0.1").allowed
    clock.t += LIMITS.pair.window + 1
    assert throttle.check_signin(REALM, "alice", "10.0.0.1").allowed  # the window slid past the failures


def test_memory_counter_blocks_an_account_from_one_address_only() -> None:
    clock = FakeClock()
    exercise(Throttle(clock, MemoryCounter()), clock)


def test_failures_from_anyone_never_lock_the_account() -> None:
    """Someone else typing a member's username wrong from many addresses leaves the member's sign-in open."""
    clock = FakeClock()
    throttle = Throttle(clock, MemoryCounter())
    for n in range(500):
        throttle.signin_failed(REALM, "maria", f"198.51.{n // 250}.{n % 250}")
    assert throttle.check_signin(REALM, "maria", "203.0.113.7").allowed


def test_an_address_gets_growing_delays_past_its_free_failures() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, MemoryCounter())
    address = "10.9.9.9"
    for n in range(LIMITS.address.failures):
        throttle.signin_failed(REALM, f"user{n}", address)  # spraying: one try per account
    assert throttle.check_signin(REALM, "someone-else", address).allowed  # the free failures are used up
    waits = []
    for _ in range(4):
        throttle.signin_failed(REALM, "someone-else", address)
        decision = throttle.check_signin(REALM, "another", address)
        assert not decision.allowed
        assert decision.limit == "signin:address"
        waits.append(decision.retry_after)
        clock.t += decision.retry_after
        assert throttle.check_signin(REALM, "another", address).allowed
    assert waits == [1, 2, 4, 8]
    throttle.signin_succeeded(REALM, "user1", address)  # a success does not clear the address
    throttle.signin_failed(REALM, "x", address)
    assert not throttle.check_signin(REALM, "y", address).allowed
    assert throttle.check_signin(REALM, "someone-else", "10.0.0.1").allowed


def test_the_daily_limit_blocks_an_address() -> None:
    clock = FakeClock()
    limits = Limits(address=Limit("signin:address", 1000, 900.0))
    throttle = Throttle(clock, MemoryCounter(), limits)
    for n in range(LIMITS.address_day.failures):
        throttle.signin_failed(REALM, f"user{n}", "10.7.7.7")
        clock.t += 60
    decision = throttle.check_signin(REALM, "user", "10.7.7.7")
    assert not decision.allowed
    assert decision.limit == "signin:address:day"


def test_delays_double_up_to_the_maximum() -> None:
    assert [delay_after(n, 10, 900) for n in (9, 10, 11, 12, 13, 30)] == [0, 0, 1, 2, 4, 900]


def test_client_authentication_failures_are_delayed_per_address() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, MemoryCounter())
    for _ in range(LIMITS.token_address.failures + 1):
        throttle.client_failed("10.1.1.1")
    assert not throttle.check_client("10.1.1.1").allowed
    assert throttle.check_client("10.1.1.2").allowed


def test_a_flood_of_fresh_keys_does_not_reset_the_attackers() -> None:
    """Past its bound, the in-process counter forgets cold keys first and keeps counting hot ones."""
    clock = FakeClock()
    counter = MemoryCounter(max_keys=1000)
    throttle = Throttle(clock, counter)
    for _ in range(LIMITS.pair.failures):
        throttle.signin_failed(REALM, "victim", "10.6.6.6")
    for n in range(20_000):  # every attempt a new account and address: 60,000 keys
        throttle.signin_failed(REALM, f"flood{n}", f"10.{n // 65536}.{(n // 256) % 256}.{n % 256}")
    assert len(counter) <= 1000
    assert not throttle.check_signin(REALM, "victim", "10.6.6.6").allowed


def test_redis_counter_is_shared_between_hosts(redis_prefix: str) -> None:
    import redis

    clock = FakeClock()
    host_a = Throttle(clock, RedisCounter(redis.Redis.from_url(REDIS_URL), MemoryCounter(), redis_prefix))
    host_b = Throttle(clock, RedisCounter(redis.Redis.from_url(REDIS_URL), MemoryCounter(), redis_prefix))
    for _ in range(LIMITS.pair.failures):
        host_a.signin_failed(REALM, "carol", "10.0.0.3")
    assert not host_b.check_signin(REALM, "carol", "10.0.0.3").allowed
    host_b.signin_succeeded(REALM, "carol", "10.0.0.3")
    assert host_a.check_signin(REALM, "carol", "10.0.0.3").allowed
    exercise(host_a, clock)


def test_redis_keys_hold_no_username_or_address(redis_prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    throttle = Throttle(FakeClock(), RedisCounter(client, MemoryCounter(), redis_prefix))
    throttle.signin_failed(REALM, "dave.secret@example.com", "10.0.0.5")
    keys = [k.decode() for k in client.scan_iter(f"{redis_prefix}*")]
    assert len(keys) == 3
    assert not any("dave" in k or "10.0.0.5" in k for k in keys)


def test_an_unreachable_redis_falls_back_to_counting_in_process() -> None:
    clock = FakeClock()
    counter = make_counter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert isinstance(counter, RedisCounter)
    exercise(Throttle(clock, counter), clock)


def test_without_a_redis_url_the_counter_is_in_process() -> None:
    assert isinstance(make_counter(None), MemoryCounter)


def test_a_block_on_one_host_holds_on_another(settings: Settings, redis_prefix: str) -> None:
    """Two app instances (two hosts) sharing Redis: failures on one block that address on the other, with a
    429 and `Retry-After`; the member still signs in from another address."""
    del redis_prefix  # only the availability check; the app uses the default key prefix
    import redis

    shared = settings.model_copy(
        update={"redis_url": REDIS_URL, "auth_enforce": True, "trusted_proxies": ["10.0.0.0/8"]}
    )
    host_a, host_b = build_services(shared), build_services(shared)
    try:
        two_member_world(host_a, "sandbox")
        client_id, _ = host_a.auth.clients.register(
            "sandbox", name="Wallet", redirect_uris=[REDIRECT], public=True
        )
        username = "member-a"
        with (
            TestClient(create_app(shared, services=host_a), client=("10.0.0.9", 1)) as http_a,
            TestClient(create_app(shared, services=host_b), client=("10.0.0.9", 1)) as http_b,
        ):
            app_a, app_b = SmartApp(http_a, client_id, REDIRECT), SmartApp(http_b, client_id, REDIRECT)
            attacker = {"X-Forwarded-For": "203.0.113.66"}
            http_a.headers.update(attacker)
            http_b.headers.update(attacker)
            for _ in range(LIMITS.pair.failures):
                page = app_a.authorize("launch/patient patient/*.read")
                refused = app_a.sign_in(page.text, username, "wrong password")
                assert refused.status_code == 401
            page = app_b.authorize("launch/patient patient/*.read")
            blocked = app_b.sign_in(page.text, username, TEST_PASSWORD)
            assert blocked.status_code == 429
            assert int(blocked.headers["retry-after"]) > 0
            assert "Too many failed sign-in attempts" in blocked.text
            assert 'name="decision"' not in blocked.text
            http_b.headers.update({"X-Forwarded-For": "198.51.100.20"})  # the member, at home
            page = app_b.authorize("launch/patient patient/*.read")
            assert 'name="decision"' in app_b.sign_in(page.text, username, TEST_PASSWORD).text
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter("openpayer:signin:*"):
            client.delete(key)
        host_a.engine.dispose()
        host_b.engine.dispose()
