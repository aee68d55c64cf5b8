"""Prometheus counters of the job runner, on prometheus_client's default registry (served by /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

JOB_ATTEMPTS = Counter(
    "openpayer_job_attempts",
    "Job attempts by job and outcome (succeeded, retry, failed).",
    ["job", "outcome"],
)
JOB_FAILURES = Counter(
    "openpayer_job_failures",
    "Job runs that failed for good (retries exhausted or a permanent error), by job.",
    ["job"],
)


def count_run(job: str, outcome: str) -> None:
    JOB_ATTEMPTS.labels(job=job, outcome=outcome).inc()
    if outcome == "failed":
        JOB_FAILURES.labels(job=job).inc()
