"""Forgetting old run records: finished runs and their attempts older than the retention period.

Runs still queued or running are never removed, whatever their age: they are work, not history. The
messages of `email_message` are not touched here (they are the record of what was sent to whom).
"""

from __future__ import annotations

from sqlalchemy import Engine, and_, delete, select

from openpayer.db import write_transaction
from openpayer.jobs.tables import job_attempt, job_run


def prune_runs(engine: Engine, now: int, keep_days: int) -> str:
    cutoff = now - keep_days * 86400
    finished = and_(job_run.c.status.in_(("succeeded", "failed")), job_run.c.finished_at < cutoff)
    with write_transaction(engine) as conn:
        attempts = conn.execute(
            delete(job_attempt).where(job_attempt.c.run_id.in_(select(job_run.c.id).where(finished)))
        ).rowcount
        runs = conn.execute(delete(job_run).where(finished)).rowcount
    return f"removed {runs} runs and {attempts} attempts finished before the last {keep_days} days"
