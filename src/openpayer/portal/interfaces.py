"""The seams the portal depends on, as Protocols, so that tests and other domains can pass their own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection


class Clock(Protocol):
    """Seconds since the epoch; the authorization server's clock satisfies it (tests move it forward)."""

    def now(self) -> int: ...


class Sealer(Protocol):
    """Authenticated encryption of small secrets at rest (TOTP seeds); `aad` binds a blob to its use."""

    def seal(self, data: bytes, aad: bytes) -> bytes: ...

    def unseal(self, blob: bytes, aad: bytes) -> bytes: ...


class Mailer(Protocol):
    """Records a message in the caller's transaction and queues its delivery (the email domain's service)."""

    def send(
        self,
        conn: Connection,
        *,
        to: str,
        template: str,
        context: Mapping[str, Any],
        cause: str,
        idempotency_key: str | None = None,
    ) -> int: ...


class RiskView(Protocol):
    """What the portal shows an organization of its subscriptions' risk state: one readable line per flag
    or policy state (at risk, or cleared and when). `openpayer.incidents` implements it; the composition
    root sets `Portal.risk`."""

    def for_developers(self, subscription_ids: Sequence[int]) -> Mapping[int, Sequence[str]]: ...
