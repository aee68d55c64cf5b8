"""`openpayer jobs`: see the schedule, the last and next runs and recent failures; run a job now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from openpayer.cli.context import command_services
from openpayer.db import write_transaction
from openpayer.jobs.status import job_statuses, recent_failures
from openpayer.jobs.tables import job_run

app = typer.Typer(help="Scheduled and background jobs.", no_args_is_help=True)


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _every(seconds: int | None) -> str:
    if seconds is None:
        return "on demand"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{unit}"
    return f"every {seconds}s"


@app.command("list")
def list_jobs(
    failures: Annotated[int, typer.Option(help="How many recent failed attempts to show.")] = 10,
) -> None:
    """Every registered job: schedule, last run, next run, queue and failures in the last 24 hours."""
    console = Console()  # per command: the width follows COLUMNS at the time it runs
    with command_services() as services:
        statuses = job_statuses(services.engine, services.background.registry, services.clock)
        failed = recent_failures(services.engine, failures)
    table = Table(title="Jobs", title_justify="left")
    for column in ("job", "schedule", "last run", "outcome", "host", "next run", "queued", "failures 24h"):
        table.add_column(column)
    for status in statuses:
        last = status.last
        table.add_row(
            status.name,
            _every(status.every),
            _when(last.scheduled_for) if last else "never",
            f"{last.status} (attempt {last.attempt})" if last else "-",
            (last.host or "-") if last else "-",
            _when(status.next_run),
            str(status.queued),
            str(status.failures_24h),
        )
    console.print(table)
    if not failed:
        console.print("No failed attempts recorded.")
        return
    errors = Table(title="Recent failures", title_justify="left")
    for column in ("when", "job", "run", "attempt", "outcome", "host", "error"):
        errors.add_column(column)
    for failure in failed:
        errors.add_row(
            _when(failure.started_at),
            failure.job,
            str(failure.run_id),
            str(failure.attempt),
            failure.outcome,
            failure.host,
            failure.error or "",
        )
    console.print(errors)


@app.command("run")
def run_job(name: Annotated[str, typer.Argument(help="A periodic job's name, e.g. oauth.cleanup.")]) -> None:
    """Run a periodic job now, in this process, as an extra run recorded like the scheduled ones."""
    console = Console()  # per command: the width follows COLUMNS at the time it runs
    with command_services() as services:
        background, engine = services.background, services.engine
        definition = background.registry.get(name)
        if definition is None or not definition.periodic:
            names = ", ".join(d.name for d in background.registry.periodic_jobs())
            console.print(f"[red]No periodic job named {name!r}[/red]; periodic jobs: {names}")
            raise typer.Exit(2)
        now = services.clock.now()
        with write_transaction(engine) as conn:
            run_id = background.queue.enqueue(conn, name, key=f"manual-{now}")
        status = background.runner.run_now(run_id)
        with engine.connect() as conn:
            row = conn.execute(select(job_run).where(job_run.c.id == run_id)).one()
    if status is None:
        console.print(f"Run {run_id} was queued; a worker took it first.")
        return
    console.print(f"{name}: {row.status}: {row.outcome or row.error or ''}", highlight=False)
    if row.status != "succeeded":
        raise typer.Exit(1)
