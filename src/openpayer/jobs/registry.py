"""What can run: periodic jobs (every N seconds, aligned to the epoch) and one-off tasks, by name.

Other domains register here at composition time and never see the runner: a handler receives a
`JobContext` and returns a short summary for the run record, or raises. `PermanentError` stops the retries
(a relay's 550 "no such user" will not get better); any other exception is retried with backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class Clock(Protocol):
    """The one clock (seconds since the epoch), shared with the rest of the platform so tests move it."""

    def now(self) -> int: ...


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help: the run fails at once."""


@dataclass(frozen=True)
class JobContext:
    run_id: int
    job: str
    scheduled_for: int
    attempt: int
    max_attempts: int
    payload: dict[str, Any]
    now: int

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


Handler = Callable[[JobContext], str | None]


@dataclass(frozen=True)
class JobDefinition:
    name: str
    handler: Handler
    description: str
    every: int | None = None  # seconds between scheduled runs; None for one-off tasks
    offset: int = 0  # seconds after each aligned boundary (e.g. 3 * 3600 for 03:00 UTC daily)
    max_attempts: int = 3
    backoff: int = 30  # seconds before the second attempt; doubles each time, up to backoff_cap
    backoff_cap: int = 3600
    lease: int = 600  # seconds a host may hold a run before another host may take it over

    @property
    def periodic(self) -> bool:
        return self.every is not None

    def slot_at(self, now: int) -> int:
        """The latest scheduled time at or before `now`."""
        assert self.every is not None
        return ((now - self.offset) // self.every) * self.every + self.offset

    def next_slot_after(self, when: int) -> int:
        assert self.every is not None
        return self.slot_at(when) + self.every

    def delay_after(self, attempt: int) -> int:
        """Backoff before the attempt after `attempt` (1-based): backoff, 2x, 4x ... capped."""
        return int(min(self.backoff * 2 ** max(0, attempt - 1), self.backoff_cap))


@dataclass
class JobRegistry:
    _jobs: dict[str, JobDefinition] = field(default_factory=dict)

    def periodic(
        self,
        name: str,
        every: int,
        handler: Handler,
        *,
        description: str,
        offset: int = 0,
        max_attempts: int = 3,
        backoff: int = 30,
        lease: int = 600,
    ) -> JobDefinition:
        if every < 1:
            raise ValueError(f"job {name}: every must be at least one second")
        return self._add(
            JobDefinition(
                name,
                handler,
                description,
                every=every,
                offset=offset % every,
                max_attempts=max_attempts,
                backoff=backoff,
                lease=lease,
            )
        )

    def task(
        self,
        name: str,
        handler: Handler,
        *,
        description: str,
        max_attempts: int = 5,
        backoff: int = 30,
        backoff_cap: int = 3600,
        lease: int = 600,
    ) -> JobDefinition:
        return self._add(
            JobDefinition(
                name,
                handler,
                description,
                max_attempts=max_attempts,
                backoff=backoff,
                backoff_cap=backoff_cap,
                lease=lease,
            )
        )

    def _add(self, definition: JobDefinition) -> JobDefinition:
        if definition.name in self._jobs:
            raise ValueError(f"job {definition.name} is registered twice")
        if definition.max_attempts < 1:
            raise ValueError(f"job {definition.name}: max_attempts must be at least 1")
        self._jobs[definition.name] = definition
        return definition

    def get(self, name: str) -> JobDefinition | None:
        return self._jobs.get(name)

    def __getitem__(self, name: str) -> JobDefinition:
        return self._jobs[name]

    def __iter__(self) -> Iterator[JobDefinition]:
        return iter(sorted(self._jobs.values(), key=lambda d: d.name))

    def periodic_jobs(self) -> list[JobDefinition]:
        return [d for d in self if d.periodic]
