"""The security event stream: every sign-in attempt, client authentication, token reuse, introspection and
revocation, refused FHIR request, rate-limit hit and staff action, stored and queryable.

Why buffered: sign-ins and refused FHIR requests are hot paths, so `record` only appends to a list; `flush`
writes the batch in one transaction (the audit writer, `security/audit_writer.py`, runs it after requests
when due, at least every `AUDIT_MAX_AGE` seconds, and at shutdown; readers flush first). A failed write
keeps the events for the next one.

An account is stored as a keyed hash (HMAC-SHA-256 under a key derived from the deployment secret, named by
realm: member of an environment, developer, staff), so the stream can count failures per account without
holding a username; without the key the hashes cannot be tested against guessed names.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select

from openpayer.clock import Clock
from openpayer.security.buffer import RowBuffer
from openpayer.security.models import security_event

log = logging.getLogger("openpayer.security")

# The client address of the request being handled, for events recorded deep in a grant (token reuse).
# Set by the endpoint; copied into the worker thread by `run_blocking` (openpayer.web.threads).
request_address: ContextVar[str | None] = ContextVar("openpayer_security_address", default=None)


class EventKind(StrEnum):
    SIGNIN_MEMBER = "signin:member"
    SIGNIN_DEVELOPER = "signin:developer"
    SIGNIN_STAFF = "signin:staff"
    CLIENT_AUTH = "token:client-auth"
    CODE_REUSE = "token:code-reuse"
    REFRESH_REUSE = "token:refresh-reuse"
    INTROSPECT = "token:introspect"
    REVOKE = "token:revoke"
    FHIR_REFUSED = "fhir:refused"
    RATE_LIMITED = "rate-limit"


SIGNIN_KINDS = (EventKind.SIGNIN_MEMBER, EventKind.SIGNIN_DEVELOPER, EventKind.SIGNIN_STAFF)


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # wrong credentials, unknown account or client
    REFUSED = "refused"  # refused by policy (restriction, breached password under attack, reuse)
    THROTTLED = "throttled"  # answered 429


# `detail` values the detectors read.
BREACHED = "breached-password"
SECOND_FACTOR = "second-factor"
RECOVERY_CODE = "recovery-code"  # a developer or staff sign-in through a recovery code, or a wrong one


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: int  # microseconds
    env: str | None
    kind: str
    outcome: str
    address: str | None
    client_id: str | None
    account: str | None
    status: int | None
    detail: str | None


class AccountHasher:
    """HMAC-SHA-256 of (realm, normalised username) under a key derived from the deployment secret."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"openpayer/security/account", hashlib.sha256).digest()

    def __call__(self, realm: str, username: str) -> str:
        message = f"{realm}\x00{username.strip().lower()}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]


class SecurityEvents:
    def __init__(self, engine: Engine, clock: Clock, hasher: AccountHasher, *, enabled: bool = True) -> None:
        self.engine = engine
        self.clock = clock
        self.hasher = hasher
        self.enabled = enabled
        self.written = 0  # events this process has written
        self.signals = 0  # of them, those a detector can count (the monitor scans when this moves)
        self._buffer = RowBuffer(engine, security_event, log, on_written=self._written)

    def account(self, realm: str, username: str) -> str:
        return self.hasher(realm, username)

    def record(
        self,
        kind: EventKind,
        outcome: Outcome,
        *,
        env: str | None = None,
        address: str | None = None,
        client_id: str | None = None,
        account: str | None = None,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Buffer one event (`account`: a hash from `account()`, never a username)."""
        if not self.enabled:
            return
        entry: dict[str, Any] = {
            "at": self.clock.now_micros(),
            "env": env,
            "kind": str(kind),
            "outcome": str(outcome),
            "address": (address or request_address.get() or None),
            "client_id": client_id[:64] if client_id else None,
            "account": account,
            "status": status,
            "detail": detail[:128] if detail else None,
        }
        if entry["address"]:
            entry["address"] = entry["address"][:64]
        self._buffer.append(entry)

    def due(self) -> bool:
        return self._buffer.due()

    def flush(self) -> int:
        """Write the pending events; returns how many. On failure they are kept for the next flush."""
        return self._buffer.flush()

    def _written(self, batch: list[dict[str, Any]]) -> None:
        self.written += len(batch)
        self.signals += sum(1 for entry in batch if _signal(entry))

    def query(
        self,
        *,
        kinds: Sequence[str] = (),
        env: str | None = None,
        client_id: str | None = None,
        address: str | None = None,
        outcome: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """Events, newest first, after writing this process's pending ones (`since`/`until`: microseconds)."""
        self.flush()
        t = security_event
        query = select(t).order_by(t.c.id.desc()).limit(limit)
        if kinds:
            query = query.where(t.c.kind.in_([str(k) for k in kinds]))
        if env is not None:
            query = query.where(t.c.env == env)
        if client_id is not None:
            query = query.where(t.c.client_id == client_id)
        if address is not None:
            query = query.where(t.c.address == address)
        if outcome is not None:
            query = query.where(t.c.outcome == outcome)
        if since is not None:
            query = query.where(t.c.at >= since)
        if until is not None:
            query = query.where(t.c.at < until)
        with self.engine.connect() as conn:
            return [Event(**row._mapping) for row in conn.execute(query)]


def _signal(entry: dict[str, Any]) -> bool:
    """Whether a detector can count this event: every rule counts refusals and failures, and a successful
    sign-in only when it used a breached password. The successful client authentications of a busy token
    endpoint are not signals, so they cost no scan (a scan is ~10 queries)."""
    return entry["outcome"] != Outcome.SUCCESS or entry["detail"] == BREACHED
