"""Access audit: who (member), which app (client), whose data (patient), what, when, outcome.

Never the token, the query string or the resource body. An access to member data (`FHIR_ACCESS`) is written
`durable`: committed before the response that served it leaves (the SMART guard waits for it), so a crash or
`kill -9` never leaves a served request without its record (HIPAA audit controls, 45 CFR 164.312(b)); its
cost is measured in benchmarks/bench_auth.py (docs/performance.md). The authorization server's own events
(sign-in, consent, tokens) are buffered and written in batches (at most `_BATCH` events or `AUDIT_MAX_AGE`
seconds old).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, select

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.security.buffer import MAX_AGE, RowBuffer
from openpayer.security.models import audit_event

log = logging.getLogger("openpayer.audit")
AUDIT_MAX_AGE = MAX_AGE


class AuditEvent(StrEnum):
    FHIR_ACCESS = "fhir:access"
    LOGIN_SUCCESS = "auth:login:success"
    LOGIN_FAILURE = "auth:login:failure"
    MFA_FAILURE = "auth:mfa:failure"
    CONSENT_ALLOW = "auth:consent:allow"
    CONSENT_DENY = "auth:consent:deny"
    TOKEN_ISSUED = "auth:token:issued"  # noqa: S105 - event names, not secrets
    CODE_REUSE = "auth:code:reuse"
    REFRESH_REUSE = "auth:refresh:reuse"
    TOKEN_REVOKED = "auth:token:revoked"  # noqa: S105
    CONSENT_REVOKE = "auth:consent:revoke"  # the member disconnected an app (connected-apps page, gallery)


class AuditLog:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._buffer = RowBuffer(engine, audit_event, log)

    def record(
        self,
        env: str,
        event: AuditEvent,
        status: int,
        *,
        client_id: str | None = None,
        member_id: int | None = None,
        patient_id: str | None = None,
        interaction: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        durable: bool = False,
    ) -> None:
        """Buffer the event; with `durable`, write it now and return only once it is committed."""
        entry = {
            "at": self.clock.now_micros(),
            "env": env,
            "event": str(event),
            "client_id": client_id,
            "member_id": member_id,
            "patient_id": patient_id,
            "interaction": interaction,
            "resource_type": resource_type,
            "resource_id": resource_id[:64] if resource_id else None,
            "status": status,
        }
        if durable:
            with write_transaction(self.engine) as conn:
                if conn.dialect.name == "postgresql":
                    # Committed into PostgreSQL before the response, without waiting for the WAL flush
                    # (40 ms per request on a busy disk): our process dying loses nothing; only a crash of
                    # the database server itself could lose its last fraction of a second (as SQLite's
                    # synchronous=NORMAL, which the SQLite engine uses for every write).
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                conn.execute(audit_event.insert(), [entry])
            return
        self._buffer.append(entry)

    def due(self) -> bool:
        return self._buffer.due()

    def flush(self) -> None:
        self._buffer.flush()

    def last_access(self, env: str, member_id: int, patient_id: str) -> dict[str, int]:
        """When each app last read this member's data (seconds, by client id): the connected-apps page's
        "last used". Accesses are written durably, so nothing buffered is missing."""
        at = func.max(audit_event.c.at)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(audit_event.c.client_id, at)
                .where(
                    audit_event.c.patient_id == patient_id,
                    audit_event.c.env == env,
                    audit_event.c.member_id == member_id,
                    audit_event.c.event == str(AuditEvent.FHIR_ACCESS),
                )
                .group_by(audit_event.c.client_id)
            ).all()
        return {row[0]: int(row[1]) // 1_000_000 for row in rows if row[0] is not None}

    def events(self, env: str) -> list[dict[str, Any]]:
        self.flush()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(audit_event).where(audit_event.c.env == env).order_by(audit_event.c.id)
            )
            return [dict(row._mapping) for row in rows]
