"""Scheduled and background work, on one host or many, claimed through the database.

`JobRegistry` is where domains declare periodic jobs and one-off tasks; `JobQueue.enqueue` queues a task
inside the caller's transaction; `JobRunner` is the loop that `openpayer worker` and `openpayer serve`
run. See the README's design notes for why this is not an external task queue.
"""

from openpayer.jobs.queue import JobQueue
from openpayer.jobs.registry import Clock, JobContext, JobDefinition, JobRegistry, PermanentError
from openpayer.jobs.runner import BackgroundRunner, JobRunner

__all__ = [
    "BackgroundRunner",
    "Clock",
    "JobContext",
    "JobDefinition",
    "JobQueue",
    "JobRegistry",
    "JobRunner",
    "PermanentError",
]
