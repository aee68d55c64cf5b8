"""The seams the portal depends on, as Protocols, so that tests and other domains can pass their own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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


class Seen(Protocol):
    """A client's last activity in one environment (epoch seconds; None: never)."""

    @property
    def last_authorized_at(self) -> int | None: ...

    @property
    def last_call_at(self) -> int | None: ...


class ActivityReader(Protocol):
    """The authorization server's record of each client's last SMART authorization and API call, keyed by
    (environment, client id): `oauth.activity.ActivityLog`, which the inactivity policy reads too."""

    def last_seen(self) -> Mapping[tuple[str, str], Seen]: ...


class CallCounter(Protocol):
    """How many FHIR requests of a client succeeded, from the access audit (`security.audit_search`)."""

    def successful_calls(self, env: str, client_id: str) -> int: ...


class Transfers(Protocol):
    """One (patient, app) pair's successful data requests in a period (`security.audit_search`)."""

    @property
    def patient_id(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def requests(self) -> int: ...

    @property
    def first_at(self) -> int: ...  # microseconds

    @property
    def last_at(self) -> int: ...


class AccessRecords(CallCounter, Protocol):
    """The access audit, read for the CMS usage report: (patient, app) pairs ordered by patient."""

    def transfers(self, env: str, since: int, until: int) -> Iterator[Transfers]: ...
