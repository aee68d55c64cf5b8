"""`openpayer seed ENV --members N`: generate the synthetic health plan and load it into an environment.

The plan comes from `openpayer.seed.generate_plan` (deterministic for `--members`, `--seed`,
`--start-date`). It is written as NDJSON into a temporary folder, one slice of members at a time, and each
slice is loaded with the same `Loader` as `openpayer load` (same validation, ids and search index), so
seeding twice with the same arguments finds every resource unchanged and writes no new version.

- `--ndjson DIR` writes the NDJSON files (one `<Type>.ndjson` per resource type) and loads nothing.
- `--if-empty` does nothing when the environment already holds resources (what `make run` uses).
- The published test logins (`openpayer.members.sandbox`) are created in `sandbox` after loading; never in
  `production`. Seeding `production` is refused unless `--allow-production` is given, and even then no
  login is created there.
- With loader workers (the default), each slice is written by a forked child process, and the first one is
  forked before this module imports the loader, the database and the FHIR engine (`openpayer.cli.seeding`):
  it generates on another core while the command starts up (`openpayer.cli.seed_slices`). `--workers 0`
  does everything in this process.

Exit codes: 0 done (or skipped), 1 when a record was rejected, the database failed or the plan could not be
written, 2 for a usage error.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import orjson
import typer
from rich.console import Console

from openpayer.cli.progress import PlanProgress
from openpayer.cli.seed_slices import (
    GeneratingFailed,
    can_fork,
    plan_slices,
    start_slice,
    write_slice,
)
from openpayer.config import get_settings
from openpayer.seed import DEFAULT_START, PlanContext

PRODUCTION = "production"


def _members_callback(value: int) -> int:
    if value < 0:
        raise typer.BadParameter("must be 0 or more")
    return value


def seed(
    env: str = typer.Argument(..., help="Environment to seed (e.g. sandbox)."),
    members: int = typer.Option(
        200, "--members", "-n", callback=_members_callback, help="Members to generate (0: directory only)."
    ),
    seed_value: int = typer.Option(1, "--seed", "-s", help="Random seed: same seed, same plan."),
    start_date: dt.datetime = typer.Option(
        dt.datetime.combine(DEFAULT_START, dt.time()),
        "--start-date",
        formats=["%Y-%m-%d"],
        show_default=DEFAULT_START.isoformat(),
        help="First day of the plan year.",
    ),
    ndjson: Path | None = typer.Option(
        None, "--ndjson", help="Write <Type>.ndjson files into this folder and load nothing."
    ),
    if_empty: bool = typer.Option(
        False, "--if-empty", help="Do nothing when the environment already holds resources."
    ),
    allow_production: bool = typer.Option(
        False, "--allow-production", help="Allow loading synthetic data into production (no logins)."
    ),
    test_logins: bool | None = typer.Option(
        None,
        "--test-logins/--no-test-logins",
        help="Create the published test member logins (default: only in sandbox; never in production).",
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        "-w",
        min=0,
        help="Loader worker processes (default: CPU count; 0 = all in this process).",
    ),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        min=1,
        show_default="the loader's, 1000",
        help="Resources per write transaction.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    migrate: bool = typer.Option(True, help="Apply pending migrations before loading."),
) -> None:
    """Generate a deterministic synthetic health plan and load it (or write it as NDJSON).

    Same --members, --seed and --start-date: same ids and content; seeding again changes nothing.

    In sandbox the published test member logins are created (see the README).

    Production is refused without --allow-production, and never gets the test logins.
    """
    err = Console(stderr=True)
    settings = get_settings()
    if env not in settings.environments:
        known = ", ".join(settings.environments) or "none"
        err.print(f"[red]Unknown environment {env!r}.[/red] Configured environments: {known}.")
        raise typer.Exit(2)
    logins = env == "sandbox" if test_logins is None else test_logins
    if env == PRODUCTION and ndjson is None:
        if logins:
            err.print("[red]The published test logins are never created in production.[/red]")
            raise typer.Exit(2)
        if not allow_production:
            err.print(
                "[red]Refusing to load synthetic data into production.[/red] "
                "Pass --allow-production if you really mean it (no test login is created there)."
            )
            raise typer.Exit(2)
    if ndjson is not None and ndjson.exists() and not ndjson.is_dir():
        err.print(f"[red]Not a folder:[/red] {ndjson}")
        raise typer.Exit(2)

    progress = PlanProgress(err, members, enabled=not quiet and not as_json, load=ndjson is None)
    started = time.perf_counter()
    ctx = PlanContext(members, seed_value, start_date.date())
    if ndjson is not None:
        _write_only(ctx, ndjson, progress, env, as_json, started)

    fork = workers != 0 and can_fork()
    slices = plan_slices(members)
    try:
        first = start_slice(ctx, slices[0], fork)
    except GeneratingFailed as exc:
        err.print(f"[red]Cannot write the plan into a temporary folder:[/red] {exc}")
        raise typer.Exit(1) from None

    # imported while the first slice is generated: the loader, the database, the FHIR engine
    from openpayer.cli.seeding import SeedRun

    SeedRun(settings, env, ctx, progress, started, workers, batch_size, fork).run(
        slices, first, if_empty, logins, migrate, as_json
    )


def _write_only(
    ctx: PlanContext, folder: Path, progress: PlanProgress, env: str, as_json: bool, started: float
) -> None:
    """--ndjson: the whole plan into `folder`, in this process; nothing is loaded."""
    try:
        counts = write_slice(ctx, [None, *range(ctx.members)], folder, progress.generated)
    except OSError as exc:
        progress.stop()
        Console(stderr=True).print(f"[red]Cannot write {folder}:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        progress.stop()
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    if as_json:
        summary = {"env": env, "members": ctx.members, "seed": ctx.seed, "ndjson": str(folder),
                   "counts": counts, "resources": total, "seconds": round(seconds, 3)}  # fmt: skip
        typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        Console().print(
            f"Wrote {total:,} resources for {ctx.members:,} members into {folder} ({len(counts)} files) "
            f"in {seconds:.1f} s; nothing was loaded.",
            style="green",
            highlight=False,
        )
    raise typer.Exit(0)
