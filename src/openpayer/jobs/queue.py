"""Putting work on the queue, inside the caller's transaction.

A domain that records something and wants background work done about it (a message to deliver, a notice
to send) enqueues in the same transaction: either both are committed or neither, so work is never lost
between a commit and a crash. Enqueueing is idempotent on (job, run_key).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from openpayer.jobs.registry import Clock, JobDefinition, JobRegistry
from openpayer.jobs.tables import job_run


def insert_ignoring_duplicates(conn: Connection, table: Table, values: Mapping[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on either database; True when the row was inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return conn.execute(statement).rowcount == 1


class JobQueue:
    def __init__(self, registry: JobRegistry, clock: Clock) -> None:
        self.registry = registry
        self.clock = clock

    def enqueue(
        self,
        conn: Connection,
        job: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        run_at: int | None = None,
    ) -> int:
        """Queue one run of a registered job, once per `key`; returns the run's id (the first one's, when
        that key was queued before)."""
        definition = self.registry.get(job)
        if definition is None:
            raise KeyError(f"no job named {job!r} is registered")
        now = self.clock.now()
        when = now if run_at is None else run_at
        key = key or uuid.uuid4().hex
        self._insert(conn, definition, key, when, payload or {}, now)
        query = select(job_run.c.id).where(job_run.c.job == job, job_run.c.run_key == key)
        return int(conn.execute(query).scalar_one())

    def schedule_slot(self, conn: Connection, definition: JobDefinition, slot: int) -> bool:
        """The run of a periodic job for one slot; every host may call this, one run results."""
        return self._insert(conn, definition, f"@{slot}", slot, {}, self.clock.now())

    @staticmethod
    def _insert(
        conn: Connection,
        definition: JobDefinition,
        key: str,
        when: int,
        payload: Mapping[str, Any],
        now: int,
    ) -> bool:
        return insert_ignoring_duplicates(
            conn,
            job_run,
            {
                "job": definition.name,
                "run_key": key,
                "payload": orjson.dumps(dict(payload)).decode(),
                "scheduled_for": when,
                "status": "queued",
                "attempt": 0,
                "max_attempts": definition.max_attempts,
                "run_after": when,
                "created_at": now,
            },
        )
