"""The runner: schedules periodic slots, claims due runs from the database, runs them, records the outcome.

Every host runs the same loop. Exactly-once per scheduled run across hosts comes from the database, not
from a leader: a slot becomes one `job_run` row (unique on job and run key), and a run is claimed by one
host in a transaction that locks its row (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so hosts
never wait for each other; SQLite's `BEGIN IMMEDIATE` serialises claims instead). The claim raises the
attempt count and sets a lease, renewed while the job runs; a host that dies mid-run stops renewing, and
once the lease lapses another host takes the run over as its next attempt (retried, not lost).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, and_, or_, select, update

from openpayer.db import read_connection, write_transaction
from openpayer.jobs import metrics
from openpayer.jobs.queue import JobQueue
from openpayer.jobs.registry import Clock, JobContext, JobDefinition, JobRegistry, PermanentError
from openpayer.jobs.tables import job_attempt, job_run

log = logging.getLogger("openpayer.jobs")

MAX_ERROR_CHARS = 2000


def default_host_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    run_id: int
    definition: JobDefinition
    scheduled_for: int
    attempt: int
    max_attempts: int
    payload: dict[str, Any]
    started_at: int


class JobRunner:
    def __init__(
        self,
        engine: Engine,
        registry: JobRegistry,
        clock: Clock,
        *,
        host: str | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.clock = clock
        self.queue = JobQueue(registry, clock)
        self.host = host or default_host_name()
        self._scheduled: dict[str, int] = {}  # the last slot this process made sure of, per periodic job

    # -- scheduling -------------------------------------------------------------------------------------

    def schedule_due(self) -> int:
        """Make sure each periodic job's current slot has its run; returns how many runs this host created.

        Only the latest slot is scheduled: a host that was down for three days runs a daily job once
        when it comes back, not three times.
        """
        now = self.clock.now()
        due = [(d, d.slot_at(now)) for d in self.registry.periodic_jobs()]
        due = [(d, slot) for d, slot in due if self._scheduled.get(d.name) != slot]
        if not due:
            return 0
        created = 0
        with write_transaction(self.engine) as conn:
            for definition, slot in due:
                created += self.queue.schedule_slot(conn, definition, slot)
        for definition, slot in due:
            self._scheduled[definition.name] = slot
        return created

    # -- claiming ---------------------------------------------------------------------------------------

    def _due(self, now: int) -> Any:
        return and_(
            job_run.c.job.in_([d.name for d in self.registry]),
            or_(
                and_(job_run.c.status == "queued", job_run.c.run_after <= now),
                and_(job_run.c.status == "running", job_run.c.lease_until < now),
            ),
        )

    def claim(self, run_id: int | None = None) -> Claim | None:
        """Take the next due run (or the given one, when due) for this host; None when there is none."""
        now = self.clock.now()
        condition = self._due(now) if run_id is None else and_(self._due(now), job_run.c.id == run_id)
        # A read first: an idle host must not take SQLite's write lock every poll.
        with read_connection(self.engine) as conn:
            if conn.execute(select(job_run.c.id).where(condition).limit(1)).first() is None:
                return None
        while True:
            with write_transaction(self.engine) as conn:
                query = (
                    select(job_run)
                    .where(condition)
                    .order_by(job_run.c.run_after, job_run.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                row = conn.execute(query).first()
                if row is None:
                    return None
                definition = self.registry[row.job]
                if row.status == "running":  # its host stopped renewing: that attempt is lost
                    conn.execute(
                        update(job_attempt)
                        .where(job_attempt.c.run_id == row.id, job_attempt.c.outcome == "running")
                        .values(outcome="lost", error="the host running it stopped before finishing")
                    )
                attempt = row.attempt + 1
                if attempt > row.max_attempts:
                    conn.execute(
                        update(job_run)
                        .where(job_run.c.id == row.id)
                        .values(status="failed", finished_at=now, error="lost on its last attempt")
                    )
                    metrics.JOB_FAILURES.labels(job=row.job).inc()
                    continue
                conn.execute(
                    update(job_run)
                    .where(job_run.c.id == row.id)
                    .values(
                        status="running",
                        attempt=attempt,
                        host=self.host,
                        lease_until=now + definition.lease,
                        started_at=now,
                    )
                )
                conn.execute(
                    job_attempt.insert().values(
                        run_id=row.id,
                        job=row.job,
                        scheduled_for=row.scheduled_for,
                        attempt=attempt,
                        host=self.host,
                        started_at=now,
                        outcome="running",
                    )
                )
                return Claim(
                    row.id,
                    definition,
                    row.scheduled_for,
                    attempt,
                    row.max_attempts,
                    orjson.loads(row.payload),
                    now,
                )

    # -- running ----------------------------------------------------------------------------------------

    def execute(self, claim: Claim) -> str:
        """Run a claimed attempt and record it; returns the run's status afterwards."""
        definition = claim.definition
        context = JobContext(
            run_id=claim.run_id,
            job=definition.name,
            scheduled_for=claim.scheduled_for,
            attempt=claim.attempt,
            max_attempts=claim.max_attempts,
            payload=claim.payload,
            now=claim.started_at,
        )
        started = time.monotonic()
        outcome: str | None = None
        error: str | None = None
        retry = False
        keeper = LeaseKeeper(self, claim)
        try:
            outcome = definition.handler(context)
        except PermanentError as exc:
            error = _describe(exc)
        except Exception as exc:
            error = _describe(exc)
            retry = claim.attempt < claim.max_attempts
            log.warning(
                "job %s (run %d) attempt %d failed: %s", definition.name, claim.run_id, claim.attempt, error
            )
        finally:
            keeper.stop()
        duration_ms = int((time.monotonic() - started) * 1000)
        now = self.clock.now()
        if error is None:
            status, attempt_outcome = "succeeded", "succeeded"
            run_values: dict[str, Any] = {
                "status": status,
                "finished_at": now,
                "outcome": outcome,
                "error": None,
            }
        elif retry:
            status, attempt_outcome = "queued", "retry"
            run_after = now + definition.delay_after(claim.attempt)
            run_values = {"status": status, "run_after": run_after, "lease_until": None, "error": error}
        else:
            status, attempt_outcome = "failed", "failed"
            run_values = {"status": status, "finished_at": now, "lease_until": None, "error": error}
        with write_transaction(self.engine) as conn:
            # Only while this host still holds the attempt: after a lease expiry another host owns the run.
            conn.execute(
                update(job_run)
                .where(
                    job_run.c.id == claim.run_id,
                    job_run.c.attempt == claim.attempt,
                    job_run.c.host == self.host,
                    job_run.c.status == "running",
                )
                .values(**run_values)
            )
            conn.execute(
                update(job_attempt)
                .where(job_attempt.c.run_id == claim.run_id, job_attempt.c.attempt == claim.attempt)
                .values(finished_at=now, duration_ms=duration_ms, outcome=attempt_outcome, error=error)
            )
        metrics.count_run(definition.name, attempt_outcome)
        if status == "failed":
            log.error(
                "job %s (run %d) failed for good after %d attempts: %s",
                definition.name,
                claim.run_id,
                claim.attempt,
                error,
            )
        else:
            log.info(
                "job %s (run %d) attempt %d: %s in %d ms",
                definition.name,
                claim.run_id,
                claim.attempt,
                attempt_outcome,
                duration_ms,
            )
        return status

    def run_due(self, limit: int | None = None) -> int:
        """Claim and run due runs one after another until none is left (or `limit`); returns how many."""
        done = 0
        while limit is None or done < limit:
            claim = self.claim()
            if claim is None:
                break
            self.execute(claim)
            done += 1
        return done

    def run_now(self, run_id: int) -> str | None:
        """Run one queued run at once if it is due and no other host holds it (operators' commands)."""
        claim = self.claim(run_id)
        return None if claim is None else self.execute(claim)

    def run_once(self) -> int:
        self.schedule_due()
        return self.run_due()

    def run_forever(self, stop: threading.Event, poll_seconds: float) -> None:
        log.info("job runner %s started: %s", self.host, ", ".join(d.name for d in self.registry))
        while not stop.is_set():
            try:
                self.schedule_due()
                while not stop.is_set() and self.run_due(limit=1):
                    pass
            except Exception:  # the database may be briefly away; the next poll tries again
                log.exception("job runner %s: polling failed", self.host)
            stop.wait(poll_seconds)
        log.info("job runner %s stopped", self.host)


class LeaseKeeper:
    """Renews a running attempt's lease every third of it, so that a job running longer than its lease is
    not taken over by another host while this one is still at it; a host that dies stops renewing."""

    def __init__(self, runner: JobRunner, claim: Claim) -> None:
        self.runner = runner
        self.claim = claim
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="openpayer-job-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        lease = self.claim.definition.lease
        while not self._stop.wait(max(0.5, lease / 3)):
            try:
                with write_transaction(self.runner.engine) as conn:
                    conn.execute(
                        update(job_run)
                        .where(
                            job_run.c.id == self.claim.run_id,
                            job_run.c.attempt == self.claim.attempt,
                            job_run.c.host == self.runner.host,
                            job_run.c.status == "running",
                        )
                        .values(lease_until=self.runner.clock.now() + lease)
                    )
            except Exception:  # the next renewal tries again; the lease is three renewals long
                log.warning(
                    "job %s (run %d): renewing its lease failed",
                    self.claim.definition.name,
                    self.claim.run_id,
                )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class BackgroundRunner:
    """The runner on a daemon thread, for `openpayer serve`."""

    def __init__(self, runner: JobRunner, poll_seconds: float) -> None:
        self.runner = runner
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="openpayer-jobs", daemon=True)

    def _run(self) -> None:
        self.runner.run_forever(self._stop, self.poll_seconds)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:MAX_ERROR_CHARS]
