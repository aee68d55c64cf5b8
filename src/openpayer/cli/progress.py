"""Progress display shared by the long-running commands (`load`, `seed`)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text


class RateColumn(ProgressColumn):
    """Resources written (or found unchanged) so far, and per second; read from the task's `resources`."""

    def render(self, task: Task) -> Text:
        resources = int(task.fields.get("resources", 0))
        elapsed = task.elapsed or 0.0
        rate = resources / elapsed if elapsed > 0 else 0.0
        return Text(f"{resources:,} · {rate:,.0f} resources/s", style="progress.data.speed")


def resource_progress(console: Console, label: str) -> Progress:
    """Label, bar, percentage, resources and rate, elapsed time."""
    return Progress(
        TextColumn(label),
        BarColumn(bar_width=24),
        TextColumn("{task.percentage:>3.0f}%"),
        RateColumn(),
        TimeElapsedColumn(),
        console=console,
    )


class PlanProgress:
    """`openpayer seed`'s bar over the whole plan, slice after slice: each slice is generated (the first
    tenth of its share of the bar), then loaded. The payer, directory and formulary weigh as much as one
    member."""

    def __init__(self, console: Console, members: int, enabled: bool, load: bool = True) -> None:
        self.enabled = enabled
        self.load = load  # False: --ndjson, generating is all there is (and counts the resources)
        self.share = 0.1 if load else 1.0
        self.progress = resource_progress(console, "[bold]{task.description:<10}")
        self.total = members + 1
        self.task_id: TaskID | None = None
        self.loaded = 0  # resources loaded by earlier slices
        self.base = 0  # units (members, and the directory) of earlier slices
        self.size = 0  # units of this slice

    def start_slice(self, size: int) -> None:
        self.size = size

    def end_slice(self, resources: int) -> None:
        self.base += self.size
        self.loaded += resources
        self.size = 0

    def generated(self, units: int, resources: int) -> None:
        shown = self.loaded if self.load else resources
        self._show("generating", self.base + self.share * units, shown)

    def loading(self, fraction: float, resources: int) -> None:
        share = self.share + (1 - self.share) * min(fraction, 1.0)
        self._show("loading", self.base + share * self.size, self.loaded + resources)

    def _show(self, phase: str, completed: float, resources: int) -> None:
        if not self.enabled:
            return
        if self.task_id is None:
            self.progress.start()
            self.task_id = self.progress.add_task(phase, total=self.total, resources=0)
        completed = min(completed, self.total - 1e-6)  # done only when stopped: keeps the clock running
        self.progress.update(self.task_id, description=phase, completed=completed, resources=resources)

    def stop(self) -> None:
        if self.task_id is not None:
            self.progress.update(self.task_id, completed=self.total)
            self.progress.stop()
            self.task_id = None
