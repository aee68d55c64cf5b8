"""Sign-in throttling against password guessing, spraying and credential stuffing.

Two layers, both counting failures in a sliding window: per account (env, username) and per client IP.
When either is over its limit, sign-in is refused with the same generic message as a wrong password, so a
lockout does not reveal that the account exists.

The counts live in Redis when `OPENPAYER_REDIS_URL` is set, so that every host of a deployment sees the same
failures; otherwise (and whenever Redis stops answering) in this process, so a lone host or a Redis outage
still throttles rather than failing open or refusing every sign-in.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from openpayer.observability.metrics import SIGN_IN_FAILURES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    failures: int
    window: float  # seconds


ACCOUNT = Limit("signin:account", failures=5, window=900.0)
# Per IP needs the real client address: behind a proxy, set OPENPAYER_TRUSTED_PROXIES (web/proxies.py).
CLIENT_IP = Limit("signin:ip", failures=100, window=900.0)
_MAX_KEYS = 100_000


class FailureCounter(Protocol):
    """Failures per (limit, key) within the limit's window."""

    def count(self, limit: Limit, key: str, now: float) -> int: ...

    def add(self, limit: Limit, key: str, now: float) -> None: ...

    def reset(self, limit: Limit, key: str) -> None: ...


class MemoryCounter:
    """Per-process sliding windows; bounded so a flood of distinct keys cannot exhaust memory."""

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def count(self, limit: Limit, key: str, now: float) -> int:
        with self._lock:
            entries = self._failures.get((limit.name, key))
            if entries is None:
                return 0
            cutoff = now - limit.window
            while entries and entries[0] < cutoff:
                entries.popleft()
            return len(entries)

    def add(self, limit: Limit, key: str, now: float) -> None:
        with self._lock:
            if len(self._failures) > _MAX_KEYS:
                self._failures.clear()  # bounded memory under a flood; limits restart from zero
            self._failures.setdefault((limit.name, key), deque()).append(now)

    def reset(self, limit: Limit, key: str) -> None:
        with self._lock:
            self._failures.pop((limit.name, key), None)


class RedisCounter:
    """Sliding windows as Redis sorted sets (score = time), shared by every host.

    Keys hold a digest of the username or address, never the value itself. Any Redis error falls back to
    the in-process counter for that call, so an outage degrades to per-host throttling.
    """

    def __init__(self, client: Any, fallback: FailureCounter, prefix: str = "openpayer:") -> None:
        self._redis = client
        self._fallback = fallback
        self._prefix = prefix
        self._warned = False

    @classmethod
    def from_url(cls, url: str, fallback: FailureCounter) -> RedisCounter:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, fallback)

    def _key(self, limit: Limit, key: str) -> str:
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return f"{self._prefix}{limit.name}:{digest}"

    def _failed_over(self, exc: Exception) -> None:
        if not self._warned:
            log.warning(
                "Redis unavailable for sign-in throttling (%s); counting in process", type(exc).__name__
            )
            self._warned = True

    def count(self, limit: Limit, key: str, now: float) -> int:
        name = self._key(limit, key)
        try:
            pipe = self._redis.pipeline()
            pipe.zremrangebyscore(name, "-inf", now - limit.window)
            pipe.zcard(name)
            _, total = pipe.execute()
            return int(total)
        except Exception as exc:  # redis.RedisError, OSError: degrade, never fail the sign-in page
            self._failed_over(exc)
            return self._fallback.count(limit, key, now)

    def add(self, limit: Limit, key: str, now: float) -> None:
        name = self._key(limit, key)
        try:
            pipe = self._redis.pipeline()
            pipe.zadd(name, {f"{now:.6f}:{time.perf_counter_ns()}": now})
            pipe.expire(name, int(limit.window) + 1)
            pipe.execute()
        except Exception as exc:
            self._failed_over(exc)
            self._fallback.add(limit, key, now)

    def reset(self, limit: Limit, key: str) -> None:
        try:
            self._redis.delete(self._key(limit, key))
        except Exception as exc:
            self._failed_over(exc)
        self._fallback.reset(limit, key)


def make_counter(redis_url: str | None) -> FailureCounter:
    memory = MemoryCounter()
    return RedisCounter.from_url(redis_url, memory) if redis_url else memory


class SignInThrottle:
    def __init__(self, clock: object | None = None, counter: FailureCounter | None = None) -> None:
        self._counter = counter or MemoryCounter()
        self._now = getattr(clock, "now", time.time)
        self.counter = self._counter  # shared with the `RateLimit`s of account recovery

    @staticmethod
    def _account(env: str, username: str) -> str:
        return f"{env}:{username.lower()}"

    def allowed(self, env: str, username: str, ip: str) -> bool:
        now = self._now()
        return (
            self._counter.count(ACCOUNT, self._account(env, username), now) < ACCOUNT.failures
            and self._counter.count(CLIENT_IP, ip, now) < CLIENT_IP.failures
        )

    def failed(self, env: str, username: str, ip: str) -> None:
        SIGN_IN_FAILURES.labels(env).inc()
        now = self._now()
        self._counter.add(ACCOUNT, self._account(env, username), now)
        self._counter.add(CLIENT_IP, ip, now)

    def succeeded(self, env: str, username: str) -> None:
        self._counter.reset(ACCOUNT, self._account(env, username))


class RateLimit:
    """Every attempt counts (not only failures): per key (an account, an address) and per client address.

    For actions that send mail or cost work whether or not they succeed (password reset, a new verification
    link); the counts share the sign-in throttle's store (Redis when configured).
    """

    def __init__(
        self, counter: FailureCounter, clock: object | None, *, per_key: Limit, per_ip: Limit
    ) -> None:
        self._counter = counter
        self._now = getattr(clock, "now", time.time)
        self.per_key = per_key
        self.per_ip = per_ip

    def hit(self, key: str, ip: str) -> bool:
        """Count an attempt; True when it is within both limits (the attempt counts either way)."""
        now = self._now()
        allowed = (
            self._counter.count(self.per_key, key, now) < self.per_key.failures
            and self._counter.count(self.per_ip, ip, now) < self.per_ip.failures
        )
        self._counter.add(self.per_key, key, now)
        self._counter.add(self.per_ip, ip, now)
        return allowed
