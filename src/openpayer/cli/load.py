"""`openpayer load ENV PATH...`: load FHIR Bundles, resources and NDJSON (plain or .gz) into an environment.

Exit codes: 0 when every record was loaded (or was already there unchanged), 1 when any record was rejected
(each is listed with file, line and reason), 2 for a usage error (unknown environment, missing path).
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from openpayer.bootstrap import build_store
from openpayer.cli.progress import resource_progress
from openpayer.config import get_settings
from openpayer.fhir.loading import BATCH_SIZE, Loader, LoadReport
from openpayer.migrate import upgrade


class _Bar:
    """A Rich progress bar over input bytes, started on the first report (after the workers have started)."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = resource_progress(console, "[bold]loading")
        self.task_id: int | None = None

    def __call__(self, done: int, total: int, resources: int) -> None:
        if not self.enabled:
            return
        if self.task_id is None:
            self.progress.start()
            self.task_id = self.progress.add_task("load", total=max(total, 1), resources=0)
        self.progress.update(self.task_id, completed=min(done, total), resources=resources)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.task_id is not None:
            self.progress.stop()


def load(
    env: str = typer.Argument(..., help="Environment to load into (e.g. sandbox)."),
    paths: list[Path] = typer.Argument(..., help="Files or folders (.json, .ndjson, .json.gz, .ndjson.gz)."),
    workers: int = typer.Option(
        None, "--workers", "-w", min=0, help="Worker processes (default: CPU count; 0 = in this process)."
    ),
    batch_size: int = typer.Option(
        BATCH_SIZE, "--batch-size", min=1, help="Resources per write transaction."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no notes."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    migrate: bool = typer.Option(True, help="Apply pending migrations before loading."),
    profile_check: bool = typer.Option(
        False,
        "--profile-check",
        help="Also validate each resource against the implementation-guide profiles its meta.profile claims "
        "(CARIN BB, US Core, PDex, ...); a resource with profile errors is rejected.",
    ),
) -> None:
    """Load FHIR Bundles (batch, transaction, collection, searchset), resources and NDJSON files.

    Loading is idempotent: resources keep their ids (or get deterministic ones), and a resource whose
    content has not changed gets no new version. Every rejected record is reported with file, line and
    reason; a transaction Bundle with any rejected entry is not loaded at all. In a folder, bulk-data files
    of the types others point at (Organization.ndjson, Practitioner.ndjson, Patient.ndjson, ...) load first.
    """
    err = Console(stderr=True)
    settings = get_settings()
    if env not in settings.environments:
        known = ", ".join(settings.environments) or "none"
        err.print(f"[red]Unknown environment {env!r}.[/red] Configured environments: {known}.")
        raise typer.Exit(2)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        err.print(f"[red]No such file or folder:[/red] {', '.join(missing)}")
        raise typer.Exit(2)

    bar = _Bar(err, enabled=not quiet)
    services = None
    try:
        if migrate:
            upgrade(settings)
        services = build_store(settings)
        loader = Loader(
            services.engine,
            env,
            matcher=services.search,
            workers=workers,
            batch_size=batch_size,
            progress=bar,
            profile_check=profile_check,
        )
        report = loader.run(paths)
    except SQLAlchemyError as exc:
        bar.stop()
        err.print(f"[red]Database error:[/red] {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}")
        raise typer.Exit(1) from None
    finally:
        bar.stop()
        if services is not None:
            services.close()

    if as_json:
        typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_report(Console(), report, quiet)
    raise typer.Exit(1 if report.rejected else 0)


def _print_report(console: Console, report: LoadReport, quiet: bool) -> None:
    if not quiet:
        for note in report.skipped:
            console.print(f"[yellow]note:[/yellow] {_short(note)}", highlight=False)
    if report.rejected:
        table = Table(title=f"Rejected records ({len(report.rejected)})", title_justify="left", expand=False)
        table.add_column("File", overflow="fold")
        table.add_column("Line", no_wrap=True)
        table.add_column("Resource", overflow="fold")
        table.add_column("Reason", overflow="fold")
        for item in report.rejected:
            resource = "/".join(part for part in (item.resource_type, item.id) if part) or "-"
            reason = item.reason
            if len(item.issues) > 1:
                reason = f"invalid ({len(item.issues)} errors)" + "".join(
                    f"\n• {expression}: {text}" for expression, text in item.issues
                )
            table.add_row(_short(item.file), item.line, resource, reason)
        console.print(table, highlight=False)
    summary = (
        f"Loaded {report.written:,} resources (created {report.created:,}, updated {report.updated:,}), "
        f"{report.unchanged:,} unchanged, {len(report.rejected):,} rejected, from {report.files:,} files "
        f"in {report.seconds:.1f} s ({report.rate:,.0f} resources/s)."
    )
    console.print(summary, style="red" if report.rejected else "green", highlight=False)


def _short(path: str) -> str:
    """Paths relative to the working directory when under it: shorter in tables."""
    try:
        return (
            os.path.relpath(path)
            if os.path.isabs(path) and not os.path.relpath(path).startswith("..")
            else path
        )
    except ValueError:
        return path
