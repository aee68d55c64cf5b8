"""Reading the access audit log: the staff console's search and export, and what the CMS usage report counts.

The security domain owns `audit_event`; other domains read it only through this service. Every read first
writes this process's buffered events (`AuditLog.flush`), so a search never misses what was just recorded.
Filters go into the SQL (never onto results), so a page limit cannot hide a match; pages are keyed by `id`
(newest first), not offsets, so a busy log does not shift them. Times are the log's microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, func, select

from openpayer.security.audit import AuditEvent, AuditLog
from openpayer.security.models import audit_event

MAX_PAGE = 500
MAX_EXPORT = 100_000  # an export is one download; narrower filters for more
FIELDS = (
    "id",
    "at",
    "env",
    "event",
    "client_id",
    "member_id",
    "patient_id",
    "interaction",
    "resource_type",
    "resource_id",
    "status",
)
# Interactions that return a patient's data when they succeed. Not `$validate` (stores and reads nothing),
# not `refused` (a request the guard turned away), not `$member-match` (backend tokens, no patient chose it).
TRANSFER_INTERACTIONS = (
    "read",
    "vread",
    "search-type",
    "search-system",
    "search-compartment",
    "history-instance",
    "history-type",
    "history-system",
    "everything",
)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to find; every field is optional. `since`/`until` are microseconds, `until` exclusive."""

    env: str | None = None
    event: str | None = None
    client_id: str | None = None
    member_id: int | None = None
    patient_id: str | None = None
    since: int | None = None
    until: int | None = None
    before_id: int | None = None  # the next page: events older than this id


@dataclass(frozen=True, slots=True)
class PatientTransfers:
    """One (patient, app) pair's successful data transfers in a period: how many, the first and the last."""

    patient_id: str
    client_id: str
    requests: int
    first_at: int
    last_at: int


class AuditSearch:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self.engine = engine
        self.audit = audit

    def search(self, query: AuditQuery, limit: int = 100) -> list[dict[str, Any]]:
        """Matching events, newest first, at most `limit` (up to `MAX_PAGE`)."""
        statement = self._filtered(query).limit(max(1, min(limit, MAX_PAGE)))
        self.audit.flush()
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(statement)]

    def export(self, query: AuditQuery) -> Iterator[dict[str, Any]]:
        """Matching events, newest first, at most `MAX_EXPORT`, streamed from one query."""
        statement = self._filtered(query).limit(MAX_EXPORT)
        self.audit.flush()
        with self.engine.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=1000).execute(statement):
                yield dict(row._mapping)

    def successful_calls(self, env: str, client_id: str) -> int:
        """How many FHIR requests of this client were answered with success (2xx)."""
        self.audit.flush()
        t = audit_event
        statement = select(func.count()).where(
            t.c.env == env,
            t.c.event == str(AuditEvent.FHIR_ACCESS),
            t.c.client_id == client_id,
            t.c.status >= 200,
            t.c.status < 300,
        )
        with self.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())

    def transfers(self, env: str, since: int, until: int) -> Iterator[PatientTransfers]:
        """Per (patient, app): the successful FHIR data requests made with a token a member authorized for
        that patient (member and patient both on record), from `since` to `until` (microseconds, exclusive).
        Backend (system) tokens carry no patient, and the public `/metadata` is no access: neither counts."""
        self.audit.flush()
        t = audit_event
        statement = (
            select(
                t.c.patient_id,
                t.c.client_id,
                func.count().label("requests"),
                func.min(t.c.at).label("first_at"),
                func.max(t.c.at).label("last_at"),
            )
            .where(
                t.c.env == env,
                t.c.at >= since,
                t.c.at < until,
                t.c.event == str(AuditEvent.FHIR_ACCESS),
                t.c.status >= 200,
                t.c.status < 300,
                t.c.patient_id.is_not(None),
                t.c.member_id.is_not(None),
                t.c.client_id.is_not(None),
                t.c.interaction.in_(TRANSFER_INTERACTIONS),
            )
            .group_by(t.c.patient_id, t.c.client_id)
            .order_by(t.c.patient_id, t.c.client_id)
        )
        with self.engine.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=1000).execute(statement):
                yield PatientTransfers(
                    row.patient_id, row.client_id, int(row.requests), int(row.first_at), int(row.last_at)
                )

    @staticmethod
    def _filtered(query: AuditQuery) -> Select[Any]:
        t = audit_event
        statement = select(*(t.c[name] for name in FIELDS)).order_by(t.c.id.desc())
        conditions = [
            (query.env, lambda v: t.c.env == v),
            (query.event, lambda v: t.c.event == v),
            (query.client_id, lambda v: t.c.client_id == v),
            (query.member_id, lambda v: t.c.member_id == v),
            (query.patient_id, lambda v: t.c.patient_id == v),
            (query.since, lambda v: t.c.at >= v),
            (query.until, lambda v: t.c.at < v),
            (query.before_id, lambda v: t.c.id < v),
        ]
        for value, condition in conditions:
            if value is not None and value != "":
                statement = statement.where(condition(value))
        return statement


def event_names() -> list[str]:
    return [str(event) for event in AuditEvent]
