"""The job runner against the test database: periodic slots, retries with backoff, permanent errors,
lost hosts, and two runners racing for the same work."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.jobs import JobContext, JobQueue, JobRegistry, JobRunner, PermanentError
from openpayer.jobs.tables import job_attempt, job_run

HOUR = 3600


def runs(engine: Engine, job: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(job_run).where(job_run.c.job == job).order_by(job_run.c.id)))


def attempts(engine: Engine, job: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(job_attempt).where(job_attempt.c.job == job).order_by(job_attempt.c.id)
        return list(conn.execute(query))


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_periodic_job_runs_once_per_slot_and_again_in_the_next(engine: Engine, clock: Clock) -> None:
    calls: list[JobContext] = []
    registry = JobRegistry()
    registry.periodic("test.hourly", HOUR, lambda c: calls.append(c) or "ok", description="test")
    runner = JobRunner(engine, registry, clock, host="host-a")

    assert runner.run_once() == 1
    assert runner.run_once() == 0  # same slot: nothing new
    clock.advance(HOUR)
    assert runner.run_once() == 1

    slots = [c.scheduled_for for c in calls]
    assert slots[1] - slots[0] == HOUR
    assert all(slot % HOUR == 0 for slot in slots)
    recorded = runs(engine, "test.hourly")
    assert [(r.status, r.attempt, r.host, r.outcome) for r in recorded] == [
        ("succeeded", 1, "host-a", "ok")
    ] * 2
    assert [r.scheduled_for for r in recorded] == slots


def test_a_host_back_after_a_long_outage_runs_the_latest_slot_once(engine: Engine, clock: Clock) -> None:
    calls: list[int] = []
    registry = JobRegistry()
    registry.periodic("test.daily", 86400, lambda c: calls.append(c.scheduled_for) and None, description="t")
    JobRunner(engine, registry, clock).run_once()
    clock.advance(3 * 86400 + 5)
    JobRunner(engine, registry, clock).run_once()
    assert len(calls) == 2
    assert calls[1] - calls[0] == 3 * 86400


def test_a_failing_task_is_retried_with_growing_backoff_then_succeeds(engine: Engine, clock: Clock) -> None:
    outcomes = [RuntimeError("relay down"), RuntimeError("still down"), None]
    registry = JobRegistry()

    def flaky(context: JobContext) -> str:
        error = outcomes.pop(0)
        if error:
            raise error
        return f"done on attempt {context.attempt}"

    registry.task("test.flaky", flaky, description="t", max_attempts=5, backoff=30)
    runner = JobRunner(engine, registry, clock, host="h")
    before = counter("openpayer_job_attempts_total", job="test.flaky", outcome="retry")
    with write_transaction(engine) as conn:
        JobQueue(registry, clock).enqueue(conn, "test.flaky", {"n": 1}, key="k")

    assert runner.run_due() == 1
    (run,) = runs(engine, "test.flaky")
    assert (run.status, run.attempt, run.error) == ("queued", 1, "RuntimeError: relay down")
    assert run.run_after == clock.now() + 30
    assert runner.run_due() == 0  # not due during the backoff
    clock.advance(30)
    assert runner.run_due() == 1
    (run,) = runs(engine, "test.flaky")
    assert run.run_after == clock.now() + 60  # doubled
    clock.advance(59)
    assert runner.run_due() == 0
    clock.advance(1)
    assert runner.run_due() == 1

    (run,) = runs(engine, "test.flaky")
    assert (run.status, run.attempt, run.outcome, run.error) == ("succeeded", 3, "done on attempt 3", None)
    assert [(a.attempt, a.outcome, a.error) for a in attempts(engine, "test.flaky")] == [
        (1, "retry", "RuntimeError: relay down"),
        (2, "retry", "RuntimeError: still down"),
        (3, "succeeded", None),
    ]
    assert counter("openpayer_job_attempts_total", job="test.flaky", outcome="retry") == before + 2


def test_a_task_fails_for_good_when_its_attempts_run_out_or_on_a_permanent_error(
    engine: Engine, clock: Clock
) -> None:
    registry = JobRegistry()

    def always(context: JobContext) -> None:
        raise RuntimeError("no")

    def permanent(context: JobContext) -> None:
        raise PermanentError("cannot ever work")

    registry.task("test.always", always, description="t", max_attempts=2, backoff=10)
    registry.task("test.permanent", permanent, description="t", max_attempts=5)
    runner = JobRunner(engine, registry, clock)
    failures = counter("openpayer_job_failures_total", job="test.always")
    with write_transaction(engine) as conn:
        JobQueue(registry, clock).enqueue(conn, "test.always")
        JobQueue(registry, clock).enqueue(conn, "test.permanent")
    runner.run_due()
    clock.advance(10)
    runner.run_due()
    clock.advance(3600)
    assert runner.run_due() == 0

    assert [(r.status, r.attempt) for r in runs(engine, "test.always")] == [("failed", 2)]
    assert [(r.status, r.attempt, r.error) for r in runs(engine, "test.permanent")] == [
        ("failed", 1, "PermanentError: cannot ever work")
    ]
    assert counter("openpayer_job_failures_total", job="test.always") == failures + 1


def test_enqueueing_is_idempotent_per_key_and_unknown_jobs_are_refused(engine: Engine, clock: Clock) -> None:
    registry = JobRegistry()
    registry.task("test.once", lambda c: None, description="t")
    queue = JobQueue(registry, clock)
    with write_transaction(engine) as conn:
        first = queue.enqueue(conn, "test.once", key="same")
        again = queue.enqueue(conn, "test.once", key="same")
        with pytest.raises(KeyError):
            queue.enqueue(conn, "test.unknown")
    assert first == again
    assert len(runs(engine, "test.once")) == 1


def test_a_run_whose_host_died_is_taken_over_after_its_lease(engine: Engine, clock: Clock) -> None:
    done: list[str] = []
    registry = JobRegistry()
    registry.task("test.leased", lambda c: done.append(c.payload["who"]) or None, description="t", lease=60)
    with write_transaction(engine) as conn:
        JobQueue(registry, clock).enqueue(conn, "test.leased", {"who": "x"})
    crashed = JobRunner(engine, registry, clock, host="crashed")
    survivor = JobRunner(engine, registry, clock, host="survivor")
    assert crashed.claim() is not None  # ... and its process dies before running it

    assert survivor.run_due() == 0  # still leased
    clock.advance(61)
    assert survivor.run_due() == 1

    assert done == ["x"]
    (run,) = runs(engine, "test.leased")
    assert (run.status, run.attempt, run.host) == ("succeeded", 2, "survivor")
    assert [(a.host, a.outcome) for a in attempts(engine, "test.leased")] == [
        ("crashed", "lost"),
        ("survivor", "succeeded"),
    ]


def test_two_runners_racing_run_each_scheduled_slot_and_task_once(engine: Engine, clock: Clock) -> None:
    executed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(context: JobContext) -> None:
        with lock:
            executed.append((context.job, str(context.payload.get("n", context.scheduled_for))))

    clock.advance(30 - clock.now() % 60)  # mid-minute: the threads and the assertion see one slot
    registry = JobRegistry()
    registry.periodic("test.tick", 60, record, description="t")
    registry.task("test.item", record, description="t")
    with write_transaction(engine) as conn:
        for n in range(20):
            JobQueue(registry, clock).enqueue(conn, "test.item", {"n": n})
    runners = [JobRunner(engine, registry, clock, host=f"h{i}") for i in range(2)]
    barrier = threading.Barrier(2)

    def work(runner: JobRunner) -> None:
        barrier.wait()
        runner.run_once()

    threads = [threading.Thread(target=work, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(executed) == sorted(
        [("test.tick", str(clock.now() // 60 * 60))] + [("test.item", str(n)) for n in range(20)]
    )
    assert all(a.attempt == 1 for a in attempts(engine, "test.item"))


def test_prune_removes_finished_runs_past_retention_and_keeps_pending_work(
    engine: Engine, clock: Clock
) -> None:
    from openpayer.jobs.prune import prune_runs

    registry = JobRegistry()
    registry.task("test.old", lambda c: "ok", description="t")
    queue = JobQueue(registry, clock)
    runner = JobRunner(engine, registry, clock)
    with write_transaction(engine) as conn:
        queue.enqueue(conn, "test.old", key="done-long-ago")
    runner.run_due()
    with write_transaction(engine) as conn:
        queue.enqueue(conn, "test.old", key="waiting", run_at=clock.now() + 90 * 86400)
    clock.advance(31 * 86400)
    with write_transaction(engine) as conn:
        queue.enqueue(conn, "test.old", key="done-recently")
    runner.run_due()

    assert prune_runs(engine, clock.now(), keep_days=30) == (
        "removed 1 runs and 1 attempts finished before the last 30 days"
    )
    assert sorted(r.run_key for r in runs(engine, "test.old")) == ["done-recently", "waiting"]
    assert [a.attempt for a in attempts(engine, "test.old")] == [1]


def test_a_job_running_longer_than_its_lease_keeps_it_and_is_not_taken_over(
    engine: Engine, clock: Clock
) -> None:
    registry = JobRegistry()
    other = JobRunner(engine, registry, clock, host="other")
    seen_by_other: list[object] = []

    def slow(context: JobContext) -> str:
        time.sleep(4.5)  # past its 3 s lease: only the renewals keep it
        seen_by_other.append(other.claim())
        return "slow but alone"

    registry.task("test.slow", slow, description="t", lease=3)
    with write_transaction(engine) as conn:
        JobQueue(registry, clock).enqueue(conn, "test.slow")
    assert JobRunner(engine, registry, clock, host="busy").run_due() == 1

    assert seen_by_other == [None]
    (run,) = runs(engine, "test.slow")
    assert (run.status, run.attempt, run.host, run.outcome) == ("succeeded", 1, "busy", "slow but alone")
