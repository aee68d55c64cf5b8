"""Sign-in throttling against password guessing, spraying and credential stuffing.

Two layers, both counting failures in a sliding window: per account (env, username) and per client IP.
When either is over its limit, sign-in is refused with the same generic message as a wrong password, so a
lockout does not reveal that the account exists. In-process counters: each server process throttles on its
own (a shared store is a later issue); fail-closed within a process, nothing to fail across processes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    failures: int
    window: float  # seconds


ACCOUNT = Limit("signin:account", failures=5, window=900.0)
# Per IP needs the real client address: behind a proxy, run uvicorn with --proxy-headers.
CLIENT_IP = Limit("signin:ip", failures=100, window=900.0)
_MAX_KEYS = 100_000


class SignInThrottle:
    def __init__(self, clock: object | None = None) -> None:
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self._now = getattr(clock, "now", time.time)

    def _recent(self, limit: Limit, key: str) -> deque[float]:
        entries = self._failures.get((limit.name, key))
        if entries is None:
            return deque()
        cutoff = self._now() - limit.window
        while entries and entries[0] < cutoff:
            entries.popleft()
        return entries

    def allowed(self, env: str, username: str, ip: str) -> bool:
        with self._lock:
            return (
                len(self._recent(ACCOUNT, f"{env}:{username.lower()}")) < ACCOUNT.failures
                and len(self._recent(CLIENT_IP, ip)) < CLIENT_IP.failures
            )

    def failed(self, env: str, username: str, ip: str) -> None:
        with self._lock:
            if len(self._failures) > _MAX_KEYS:
                self._failures.clear()  # bounded memory under a flood; limits restart from zero
            now = self._now()
            for limit, key in ((ACCOUNT, f"{env}:{username.lower()}"), (CLIENT_IP, ip)):
                self._failures.setdefault((limit.name, key), deque()).append(now)

    def succeeded(self, env: str, username: str) -> None:
        with self._lock:
            self._failures.pop((ACCOUNT.name, f"{env}:{username.lower()}"), None)
