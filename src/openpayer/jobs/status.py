"""What `openpayer jobs list` shows: each job's schedule, last and next run, queue, and recent failures."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from openpayer.db import read_connection
from openpayer.jobs.registry import Clock, JobRegistry
from openpayer.jobs.tables import job_attempt, job_run

FAILURE_OUTCOMES = ("retry", "failed", "lost")


@dataclass(frozen=True)
class LastRun:
    scheduled_for: int
    status: str
    finished_at: int | None
    host: str | None
    attempt: int


@dataclass(frozen=True)
class JobStatus:
    name: str
    description: str
    every: int | None
    last: LastRun | None
    next_run: int | None  # None: a one-off task with nothing queued
    queued: int
    failures_24h: int


@dataclass(frozen=True)
class Failure:
    job: str
    run_id: int
    scheduled_for: int
    attempt: int
    host: str
    started_at: int
    outcome: str
    error: str | None


def job_statuses(engine: Engine, registry: JobRegistry, clock: Clock) -> list[JobStatus]:
    now = clock.now()
    statuses = []
    with read_connection(engine) as conn:
        for definition in registry:
            last_row = conn.execute(
                select(job_run)
                .where(
                    job_run.c.job == definition.name, job_run.c.status.in_(("succeeded", "failed", "running"))
                )
                .order_by(job_run.c.started_at.desc(), job_run.c.id.desc())
                .limit(1)
            ).first()
            queued, first_due = conn.execute(
                select(func.count(), func.min(job_run.c.run_after)).where(
                    job_run.c.job == definition.name, job_run.c.status == "queued"
                )
            ).one()
            failures = conn.execute(
                select(func.count()).where(
                    job_attempt.c.job == definition.name,
                    job_attempt.c.outcome.in_(FAILURE_OUTCOMES),
                    job_attempt.c.started_at >= now - 86400,
                )
            ).scalar_one()
            next_run = first_due
            if definition.periodic:
                upcoming = definition.next_slot_after(now)
                next_run = upcoming if first_due is None else min(first_due, upcoming)
            last = None
            if last_row is not None:
                last = LastRun(
                    last_row.scheduled_for,
                    last_row.status,
                    last_row.finished_at,
                    last_row.host,
                    last_row.attempt,
                )
            statuses.append(
                JobStatus(
                    definition.name,
                    definition.description,
                    definition.every,
                    last,
                    next_run,
                    queued,
                    failures,
                )
            )
    return statuses


def recent_failures(engine: Engine, limit: int = 10) -> list[Failure]:
    with read_connection(engine) as conn:
        rows = conn.execute(
            select(job_attempt)
            .where(job_attempt.c.outcome.in_(FAILURE_OUTCOMES))
            .order_by(job_attempt.c.started_at.desc(), job_attempt.c.id.desc())
            .limit(limit)
        ).all()
    return [
        Failure(r.job, r.run_id, r.scheduled_for, r.attempt, r.host, r.started_at, r.outcome, r.error)
        for r in rows
    ]
