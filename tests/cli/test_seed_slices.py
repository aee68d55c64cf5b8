"""The plan's slices written by a forked child (`openpayer.cli.seed_slices`), beside the same in process."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from openpayer.cli import seed_slices
from openpayer.cli.seed_slices import ChildSlice, start_slice
from openpayer.seed import PlanContext


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_child_writes_what_this_process_writes(scratch: Path) -> None:
    ctx = PlanContext(12, 5)
    units: list[int | None] = [None, *range(12)]
    here = start_slice(ctx, units, fork=False)
    child = start_slice(ctx, units, fork=True)
    assert isinstance(child, ChildSlice)
    reported: list[tuple[int, int]] = []
    ours = here.wait(lambda done, count: None)
    theirs = child.wait(lambda done, count: reported.append((done, count)))

    assert theirs.counts == ours.counts
    names = sorted(p.name for p in here.folder.iterdir())
    assert names == [f"{rtype}.ndjson" for rtype in sorted(ours.counts)]
    assert names == sorted(p.name for p in child.folder.iterdir())
    for name in names:
        assert (child.folder / name).read_bytes() == (here.folder / name).read_bytes(), name
    assert reported[-1] == (13, sum(ours.counts.values()))  # the directory and 12 members, every resource
    assert child.status == 0  # it has ended, and been reaped

    here.discard()
    child.discard()
    assert list(scratch.iterdir()) == []


def test_an_interrupted_wait_stops_the_child_and_discard_removes_its_folder(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stalls_at_the_first_member(resources: Iterable[dict[str, object]], folder: Path) -> dict[str, int]:
        for resource in resources:  # the directory is reported before the first member's Patient
            if resource["resourceType"] == "Patient":
                time.sleep(30)  # a child that is not stopped holds the command this long
        return {}

    monkeypatch.setattr(seed_slices, "write_ndjson", stalls_at_the_first_member)  # inherited by the child
    child = start_slice(PlanContext(2, 1), [None, 0, 1], fork=True)
    assert isinstance(child, ChildSlice)
    pid = child.pid

    def interrupted(done: int, count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        child.wait(interrupted)
    assert child.status == -signal.SIGKILL  # stopped, not waited for
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # and reaped: no process left behind
    child.discard()
    assert list(scratch.iterdir()) == []
