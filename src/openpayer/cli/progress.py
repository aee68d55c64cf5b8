"""Progress display shared by the long-running commands (`load`, `seed`)."""

from __future__ import annotations

from rich.progress import ProgressColumn, Task
from rich.text import Text


class RateColumn(ProgressColumn):
    """Resources written (or found unchanged) so far, and per second; read from the task's `resources`."""

    def render(self, task: Task) -> Text:
        resources = int(task.fields.get("resources", 0))
        elapsed = task.elapsed or 0.0
        rate = resources / elapsed if elapsed > 0 else 0.0
        return Text(f"{resources:,} · {rate:,.0f} resources/s", style="progress.data.speed")
