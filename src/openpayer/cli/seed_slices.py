"""The synthetic plan's slices written as NDJSON for `openpayer seed`: in this process, or in a forked child.

The command loads the plan one slice of members at a time, each from a temporary folder of NDJSON files.
Writing a slice is pure Python on one core, and so is the command's own start-up (importing the loader, the
database and the FHIR engine, the migrations, the services). Forked before that start-up, a child writes the
first slice on another core meanwhile, so that the command finds it ready when it is ready to load.

The first child is forked before any thread or database connection exists (`openpayer.cli.seed` forks it
before it imports the rest); a later slice's, once the command has closed its pooled connections. A child
reports through a pipe one JSON array a line (`["progress", units done, resources so far]`, then `["done",
counts per type]` or `["error", message]`) and ends with `os._exit`: nothing of the parent (its connections,
exit hooks, the test runner it may run in) runs twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, NoReturn

import orjson

from openpayer.seed import (
    PlanContext,
    iter_directory,
    iter_formulary,
    iter_member,
    iter_plan_members,
    write_ndjson,
)
from openpayer.seed.common import Resource

SLICE_MEMBERS = 1_000  # members generated (then loaded) per temporary NDJSON folder: bounds the disk used

Units = Sequence[int | None]  # None: the payer, directory and formulary; k: the k-th member
Report = Callable[[int, int], None]  # (units done, resources written so far)


class GeneratingFailed(Exception):
    """The child could not write its slice (a full disk, say); the message says why."""


def plan_slices(members: int) -> list[list[int | None]]:
    """The plan's units, `SLICE_MEMBERS` a slice; the first slice also holds the directory and formulary."""
    size = SLICE_MEMBERS
    slices: list[list[int | None]] = []
    for start in range(0, max(members, 1), size):
        part: list[int | None] = list(range(start, min(start + size, members)))
        slices.append([None, *part] if start == 0 else part)
    return slices


def write_slice(ctx: PlanContext, units: Units, folder: Path, report: Report) -> dict[str, int]:
    """Write the resources of `units` into `folder` (one `<Type>.ndjson` each); the count per type."""
    wanted = {k for k in units if k is not None}

    def stream() -> Iterator[Resource]:
        done = count = 0
        if None in units:
            for resource in chain(iter_directory(ctx), iter_formulary(ctx)):
                count += 1
                yield resource
            done += 1
            report(done, count)
        if not wanted:
            return
        first, last = min(wanted), max(wanted)
        for index, member in enumerate(iter_plan_members(ctx)):
            if index > last:
                break
            if index < first:
                continue  # identities are drawn in order: pass over the members of earlier slices
            for resource in iter_member(ctx, member):
                count += 1
                yield resource
            done += 1
            if done % 10 == 0 or index == last:
                report(done, count)

    return write_ndjson(stream(), folder)


@dataclass
class Written:
    counts: dict[str, int]


class PendingSlice:
    """A slice to be written into `folder`: `wait` writes it here and now (`ChildSlice`: has it written)."""

    def __init__(self, ctx: PlanContext, units: Units, folder: Path) -> None:
        self.ctx, self.units, self.folder = ctx, units, folder

    def wait(self, report: Report) -> Written:
        try:
            return Written(write_slice(self.ctx, self.units, self.folder, report))
        except OSError as exc:
            raise GeneratingFailed(str(exc)) from exc

    def discard(self) -> None:
        """Remove the folder (the loader has read it, or it will not)."""
        shutil.rmtree(self.folder, ignore_errors=True)


class ChildSlice(PendingSlice):
    """The slice written by a forked child."""

    def __init__(self, ctx: PlanContext, units: Units, folder: Path) -> None:
        super().__init__(ctx, units, folder)
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            raise
        if pid == 0:
            os.close(read)
            _child(ctx, units, folder, write)
        os.close(write)
        self.pid = pid
        self.pipe = os.fdopen(read, "rb")
        self.status: int | None = None  # the child's exit status, once it has ended

    def wait(self, report: Report) -> Written:
        """The slice's counts once it is written."""
        error = ""
        try:
            for message in self._messages():
                if message[0] == "progress":
                    report(message[1], message[2])
                elif message[0] == "done":
                    self._reap()
                    return Written(message[1])
                else:
                    error = message[1]
        except BaseException:  # interrupted (Ctrl-C, a failed progress display): the child stops too
            self._stop()
            raise
        status = self._reap()
        raise GeneratingFailed(error or f"the plan's generator stopped before the end (exit status {status})")

    def _messages(self) -> Iterator[list[Any]]:
        for line in self.pipe:
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                return  # the child was stopped in the middle of a line

    def discard(self) -> None:
        self._stop()  # still writing when the command stops first
        super().discard()

    def _stop(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> int:
        if not self.pid:
            return 0
        self.pipe.close()
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        self.status = os.waitstatus_to_exitcode(status)  # -N: ended by signal N
        return self.status


def start_slice(ctx: PlanContext, units: Units, fork: bool) -> PendingSlice:
    """The slice's temporary folder, and a child writing it there when `fork` (else `wait` writes it in
    this process)."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="openpayer-seed-"))
    except OSError as exc:
        raise GeneratingFailed(str(exc)) from exc
    if not fork:
        return PendingSlice(ctx, units, folder)
    try:
        return ChildSlice(ctx, units, folder)
    except OSError as exc:  # no process or pipe left for the child
        shutil.rmtree(folder, ignore_errors=True)
        raise GeneratingFailed(f"cannot start the plan's generator: {exc}") from exc


def can_fork() -> bool:
    return hasattr(os, "fork")


def _child(ctx: PlanContext, units: Units, folder: Path, fd: int) -> NoReturn:
    status = 1
    try:
        with os.fdopen(fd, "wb") as pipe:

            def send(*message: object) -> None:
                pipe.write(orjson.dumps(message) + b"\n")
                pipe.flush()

            try:
                counts = write_slice(ctx, units, folder, lambda done, count: send("progress", done, count))
                send("done", counts)
                status = 0
            except Exception as exc:  # the parent reports it; no traceback from here
                send("error", str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
    finally:
        os._exit(status)
