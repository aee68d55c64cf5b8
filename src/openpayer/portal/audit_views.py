"""The audit logs as staff read them (`audit:read`): the access audit (who — member, app —, whose data, what,
when, outcome; `security.audit_search`) and the trail of staff actions (`portal_staff_audit`), searched and
exported as CSV or JSON.

An export is itself a staff action, audited (`audit:export`, with the filters used): the access audit names
members and patients, so who took a copy of which part is on record.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from openpayer.db import write_transaction
from openpayer.portal.errors import Invalid
from openpayer.portal.interfaces import Clock
from openpayer.portal.staff import AuditEntry, Permission, StaffService, record_audit
from openpayer.security.audit_search import FIELDS, MAX_EXPORT, AuditQuery, AuditSearch

STAFF_FIELDS = (
    "id",
    "at",
    "actor_account_id",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "address",
)
FORMATS = ("csv", "json")


def day_bounds(since: str, until: str) -> tuple[int | None, int | None]:
    """Inclusive UTC days (YYYY-MM-DD) as [start, end) epoch seconds; either may be empty."""

    def parse(value: str, name: str) -> date | None:
        if not value.strip():
            return None
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise Invalid("dates are written YYYY-MM-DD", name) from exc

    start, end = parse(since, "from"), parse(until, "to")
    if start and end and end < start:
        raise Invalid("the end date is before the start date", "to")

    def epoch(day: date) -> int:
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())

    return (epoch(start) if start else None, epoch(end + timedelta(days=1)) if end else None)


def access_query(params: Mapping[str, str]) -> AuditQuery:
    """The access audit's filters from a search form (`env`, `event`, `client_id`, `member_id`, `patient_id`,
    `from`, `to` as UTC days, `before` for the next page); bad values are `Invalid`, not a 500."""
    since, until = day_bounds(params.get("from", ""), params.get("to", ""))

    def number(name: str) -> int | None:
        value = params.get(name, "").strip()
        if not value:
            return None
        if not value.isdigit() or len(value) > 18:
            raise Invalid(f"{name.replace('_', ' ')} is a number", name)
        return int(value)

    def text(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value[:64] or None

    return AuditQuery(
        env=text("env"),
        event=text("event"),
        client_id=text("client_id"),
        member_id=number("member_id"),
        patient_id=text("patient_id"),
        since=since * 1_000_000 if since is not None else None,
        until=until * 1_000_000 if until is not None else None,
        before_id=number("before"),
    )


class AuditViews:
    def __init__(self, engine: Engine, clock: Clock, staff: StaffService, access: AuditSearch) -> None:
        self.engine = engine
        self.clock = clock
        self.staff = staff
        self.access = access

    def access_events(self, actor: int, query: AuditQuery, limit: int = 100) -> list[dict[str, Any]]:
        self.staff.require(actor, Permission.AUDIT_READ)
        return self.access.search(query, limit)

    def staff_actions(self, actor: int, filters: Mapping[str, str], limit: int = 100) -> list[AuditEntry]:
        """The staff trail filtered by `action`, `target_type`, `target_id`, `actor` and `from`/`to` days."""
        self.staff.require(actor, Permission.AUDIT_READ)
        since, until = day_bounds(filters.get("from", ""), filters.get("to", ""))
        who = filters.get("actor", "").strip()
        if who and not who.isdigit():
            raise Invalid("the actor is an account number", "actor")
        return self.staff.audit_trail(
            actor,
            action=filters.get("action", "").strip() or None,
            target_type=filters.get("target_type", "").strip() or None,
            target_id=filters.get("target_id", "").strip() or None,
            actor_account_id=int(who) if who else None,
            since=since,
            until=until,
            limit=limit,
        )

    # ---- exports -----------------------------------------------------------------------------------
    def export_access(
        self, actor: int, query: AuditQuery, fmt: str, address: str | None = None
    ) -> Iterator[str]:
        """The matching access events (newest first, at most `MAX_EXPORT`) as CSV or JSON text chunks."""
        self._export_check(actor, fmt, "access", asdict(query), address)
        return _serialise(self.access.export(query), FIELDS, fmt)

    def export_staff(
        self, actor: int, filters: Mapping[str, str], fmt: str, address: str | None = None
    ) -> Iterator[str]:
        entries = self.staff_actions(actor, filters, limit=MAX_EXPORT)
        self._export_check(actor, fmt, "staff", dict(filters), address)
        rows = ({**asdict(e), "before": e.before, "after": e.after} for e in entries)
        return _serialise(rows, STAFF_FIELDS, fmt)

    def _export_check(
        self, actor: int, fmt: str, log: str, filters: Mapping[str, Any], address: str | None
    ) -> None:
        self.staff.require(actor, Permission.AUDIT_READ)
        if fmt not in FORMATS:
            raise Invalid("the format is csv or json", "format")
        with write_transaction(self.engine) as conn:
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action="audit:export",
                target_type="audit",
                target_id=log,
                after={"format": fmt, "filters": {k: v for k, v in filters.items() if v not in (None, "")}},
                address=address,
            )


def _serialise(rows: Iterable[Mapping[str, Any]], fields: tuple[str, ...], fmt: str) -> Iterator[str]:
    if fmt == "json":
        yield "["
        for index, row in enumerate(rows):
            yield ("," if index else "") + "\n" + json.dumps({k: row.get(k) for k in fields}, sort_keys=False)
        yield "\n]\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow(_cell(row.get(k)) for k in fields)
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> str:
    """CSV text of a value; a leading =, +, - or @ is quoted away so that a spreadsheet never runs it."""
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
