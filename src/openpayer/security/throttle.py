"""Throttling failed sign-ins and client authentications so that an attacker cannot turn it against members.

Named limits, each a sliding window of failures (`Limits`, from `OPENPAYER_DETECT_*`):

- `signin:pair` (account, address): after `detect_brute_force_failures` (10, as Auth0) failures of one
  account from one address in the window, that address may not try that account until the window slides.
  The account stays open from every other address: someone typing a member's username wrong (or guessing
  it) never locks the member out (OWASP ASVS 5.0 6.3.1). A success from that address clears the pair.
- `signin:address`: failures from one address across accounts: the first `detect_address_failures` (25, as
  Elastic's rule) are free, then each further attempt waits a delay that doubles from 1 s up to
  `detect_max_delay`; `signin:address:day` blocks an address after `detect_address_daily` (100, Auth0's
  suspicious-IP throttling) failures in a day. Successes do not clear them.
- `token:address`: client-authentication failures at the token endpoint per address, with the same growing
  delays after `detect_token_address_failures` (10).

A throttled attempt is answered 429 with `Retry-After` and its credentials are not checked (so it costs no
argon2 work). Fail-open or closed: the counters never refuse on their own failure; when Redis is down they
count in process (per host), so throttling degrades rather than stopping or refusing everyone.

Counts live in Redis when `OPENPAYER_REDIS_URL` is set (sorted sets, keys are digests), shared by every host;
otherwise, and whenever Redis fails, in `MemoryCounter`: bounded, it forgets the least recently used keys
that are under their limit first and never a key over its limit while a colder one remains, so a flood of
fresh keys cannot reset the counts of the attackers being throttled.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    failures: int  # failures allowed in the window (for delays: the free ones)
    window: float  # seconds


@dataclass(frozen=True, slots=True)
class Limits:
    pair: Limit = Limit("signin:pair", 10, 900.0)
    address: Limit = Limit("signin:address", 25, 900.0)
    address_day: Limit = Limit("signin:address:day", 100, 86400.0)
    token_address: Limit = Limit("token:address", 10, 900.0)
    max_delay: float = 900.0

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(
            pair=Limit(
                "signin:pair", settings.detect_brute_force_failures, settings.detect_brute_force_window
            ),
            address=Limit("signin:address", settings.detect_address_failures, settings.detect_address_window),
            address_day=Limit("signin:address:day", settings.detect_address_daily, 86400.0),
            token_address=Limit(
                "token:address", settings.detect_token_address_failures, settings.detect_address_window
            ),
            max_delay=float(settings.detect_max_delay),
        )


@dataclass(frozen=True, slots=True)
class Window:
    """Failures of one key inside a limit's window: how many, the oldest and the newest (epoch seconds)."""

    count: int
    oldest: float | None = None
    newest: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # seconds (for `Retry-After`), when refused
    limit: str | None = None  # the limit that refused


ALLOWED = Decision(True)


class FailureCounter(Protocol):
    """Failures per (limit, key) within the limit's window."""

    def window(self, limit: Limit, key: str, now: float) -> Window: ...

    def add(self, limit: Limit, key: str, now: float) -> None: ...

    def reset(self, limit: Limit, key: str) -> None: ...


class _Entry:
    __slots__ = ("limit", "times")

    def __init__(self, limit: Limit, cap: int) -> None:
        self.limit = limit
        self.times: deque[float] = deque(maxlen=cap)

    def prune(self, now: float) -> int:
        cutoff = now - self.limit.window
        times = self.times
        while times and times[0] < cutoff:
            times.popleft()
        return len(times)


class MemoryCounter:
    """Per-process sliding windows in bounded memory.

    Keys under their limit ("cold") sit in one LRU and keys at or over it ("hot": the attackers being
    throttled) in another. Past `max_keys`, the least recently used cold key goes first; hot keys go only
    when no cold one is left and their windows have passed, and as a last resort (more than `max_keys`
    attackers over their limits at once) the least recently used hot key. Each key keeps at most
    `per_key` times, enough for any limit's count and delay.
    """

    def __init__(self, max_keys: int = 100_000, per_key: int = 256) -> None:
        self.max_keys = max_keys
        self.per_key = per_key
        self._cold: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._hot: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cold) + len(self._hot)

    def hot_keys(self) -> int:
        return len(self._hot)

    def window(self, limit: Limit, key: str, now: float) -> Window:
        with self._lock:
            entry = self._hot.get((limit.name, key)) or self._cold.get((limit.name, key))
            if entry is None:
                return Window(0)
            count = entry.prune(now)
            if not count:
                return Window(0)
            return Window(count, entry.times[0], entry.times[-1])

    def add(self, limit: Limit, key: str, now: float) -> None:
        name = (limit.name, key)
        with self._lock:
            entry = self._hot.get(name)
            if entry is not None:
                self._hot.move_to_end(name)
            else:
                entry = self._cold.pop(name, None) or _Entry(limit, self.per_key)
            entry.times.append(now)
            if entry.prune(now) >= limit.failures:
                self._hot[name] = entry
            else:
                self._hot.pop(name, None)
                self._cold[name] = entry
            while len(self._cold) + len(self._hot) > self.max_keys:
                self._evict(now)

    def _evict(self, now: float) -> None:
        if self._cold:
            self._cold.popitem(last=False)
            return
        for name in list(self._hot):  # only when every key is hot: drop the ones whose window passed
            entry = self._hot[name]
            if entry.prune(now) < entry.limit.failures:
                del self._hot[name]
                if entry.times:
                    self._cold[name] = entry
        if self._cold:
            self._cold.popitem(last=False)
        elif len(self._hot) > self.max_keys:
            self._hot.popitem(last=False)

    def reset(self, limit: Limit, key: str) -> None:
        with self._lock:
            self._cold.pop((limit.name, key), None)
            self._hot.pop((limit.name, key), None)


class RedisCounter:
    """Sliding windows as Redis sorted sets (score = time), shared by every host.

    Keys hold a digest of the account and address, never the values. Any Redis error falls back to the
    in-process counter for that call, so an outage degrades to per-host throttling.
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
            log.warning("Redis unavailable for throttling (%s); counting in process", type(exc).__name__)
            self._warned = True

    def window(self, limit: Limit, key: str, now: float) -> Window:
        name = self._key(limit, key)
        try:
            pipe = self._redis.pipeline()
            pipe.zremrangebyscore(name, "-inf", now - limit.window)
            pipe.zcard(name)
            pipe.zrange(name, 0, 0, withscores=True)
            pipe.zrange(name, -1, -1, withscores=True)
            _, total, first, last = pipe.execute()
        except Exception as exc:  # redis.RedisError, OSError: degrade, never fail the page
            self._failed_over(exc)
            return self._fallback.window(limit, key, now)
        if not total:
            return Window(0)
        return Window(int(total), float(first[0][1]), float(last[0][1]))

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


def make_counter(redis_url: str | None, max_keys: int = 100_000) -> FailureCounter:
    memory = MemoryCounter(max_keys)
    return RedisCounter.from_url(redis_url, memory) if redis_url else memory


def delay_after(failures: int, free: int, max_delay: float) -> float:
    """The wait before the next attempt after `failures` (1 s after the first over `free`, doubling)."""
    excess = failures - free
    if excess <= 0:
        return 0.0
    return min(max_delay, math.pow(2.0, min(excess - 1, 30)))


class Throttle:
    """Decides whether a sign-in or client authentication may be tried now, and counts its failures."""

    def __init__(
        self, clock: Any = None, counter: FailureCounter | None = None, limits: Limits | None = None
    ):
        self._counter = counter or MemoryCounter()
        now = getattr(clock, "now_float", None) or getattr(clock, "now", None)
        self._now: Callable[[], float] = now if callable(now) else time.time
        self.limits = limits or Limits()
        self.counter = self._counter  # shared with the `RateLimit`s of account recovery

    @staticmethod
    def _pair(realm: str, account: str, address: str) -> str:
        return f"{realm}\x00{account.strip().lower()}\x00{address}"

    def _blocked_until_slides(self, limit: Limit, key: str, now: float) -> Decision | None:
        window = self._counter.window(limit, key, now)
        if window.count >= limit.failures and window.oldest is not None:
            return Decision(False, max(1, math.ceil(window.oldest + limit.window - now)), limit.name)
        return None

    def _delayed(self, limit: Limit, key: str, now: float) -> Decision | None:
        window = self._counter.window(limit, key, now)
        wait = delay_after(window.count, limit.failures, self.limits.max_delay)
        if wait and window.newest is not None and now < window.newest + wait:
            return Decision(False, max(1, math.ceil(window.newest + wait - now)), limit.name)
        return None

    # ---- sign-in (members, developers, staff) ---------------------------------------------------------
    def check_signin(self, realm: str, account: str, address: str) -> Decision:
        now = self._now()
        limits = self.limits
        return (
            self._blocked_until_slides(limits.address_day, address, now)
            or self._delayed(limits.address, address, now)
            or self._blocked_until_slides(limits.pair, self._pair(realm, account, address), now)
            or ALLOWED
        )

    def signin_failed(self, realm: str, account: str, address: str) -> None:
        now = self._now()
        self._counter.add(self.limits.pair, self._pair(realm, account, address), now)
        self._counter.add(self.limits.address, address, now)
        self._counter.add(self.limits.address_day, address, now)

    def signin_succeeded(self, realm: str, account: str, address: str) -> None:
        """Clears the (account, address) pair only: a success elsewhere says nothing about this address."""
        self._counter.reset(self.limits.pair, self._pair(realm, account, address))

    # ---- client authentication at the token endpoint -------------------------------------------------
    def check_client(self, address: str) -> Decision:
        return self._delayed(self.limits.token_address, address, self._now()) or ALLOWED

    def client_failed(self, address: str) -> None:
        self._counter.add(self.limits.token_address, address, self._now())


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
            self._counter.window(self.per_key, key, now).count < self.per_key.failures
            and self._counter.window(self.per_ip, ip, now).count < self.per_ip.failures
        )
        self._counter.add(self.per_key, key, now)
        self._counter.add(self.per_ip, ip, now)
        return allowed
