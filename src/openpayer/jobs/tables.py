"""Tables of the job runner: one row per run (the queue and its record) and one per attempt.

A run is identified by (job, run_key): a periodic job's run key is its scheduled slot, so however many
hosts schedule the same slot, the unique constraint keeps one run; a one-off job's key is given by the
caller (e.g. `message-42`) so enqueueing twice is harmless. Times are integer seconds since the epoch,
read from the platform's clock; an attempt's duration is measured apart, in milliseconds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from openpayer.db import metadata

BigId = BigInteger().with_variant(Integer(), "sqlite")

job_run = Table(
    "job_run",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job", String(100), nullable=False),
    Column("run_key", String(200), nullable=False),
    Column("payload", Text, nullable=False, default="{}"),  # JSON object given to the handler
    Column("scheduled_for", BigInteger, nullable=False),  # the slot (periodic) or the requested time
    Column("status", String(16), nullable=False),  # queued | running | succeeded | failed
    Column("attempt", Integer, nullable=False, default=0),  # attempts started so far
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", BigInteger, nullable=False),  # not claimed before (backoff after a failure)
    Column("lease_until", BigInteger, nullable=True),  # a running run whose host died is retaken after
    Column("host", String(200), nullable=True),  # the host of the latest attempt
    Column("started_at", BigInteger, nullable=True),  # latest attempt
    Column("finished_at", BigInteger, nullable=True),  # when it succeeded or failed for good
    Column("outcome", Text, nullable=True),  # the handler's summary on success
    Column("error", Text, nullable=True),  # the latest attempt's error
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("job", "run_key"),
    Index("ix_job_run_status_run_after", "status", "run_after"),
    Index("ix_job_run_job_scheduled_for", "job", "scheduled_for"),
)

job_attempt = Table(
    "job_attempt",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", BigInteger, nullable=False),
    Column("job", String(100), nullable=False),
    Column("scheduled_for", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("host", String(200), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),  # NULL while running (or when its host was lost)
    Column("duration_ms", Integer, nullable=True),
    Column("outcome", String(16), nullable=False),  # running | succeeded | retry | failed | lost
    Column("error", Text, nullable=True),
    UniqueConstraint("run_id", "attempt"),
    Index("ix_job_attempt_job_started_at", "job", "started_at"),
)
