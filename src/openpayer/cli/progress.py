"""Progress display shared by the long-running commands (`load`, `seed`)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
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
